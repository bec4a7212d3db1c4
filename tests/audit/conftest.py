"""The audit (scripts/audit) against the converged lab: its outputs, and what each break of the lab makes it say.

Runs in the lab step of scripts/test, after the read-only behavioural tests. Each audit is the real command
(.venv/bin/rampart-audit, what scripts/audit runs) with every output format; results are read from its JSON
report (never from the screen). The lab's hosts are reached with docker exec (containers named in .lab/lab.json).
"""

from __future__ import annotations

import json
import subprocess
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from rampart.audit import report
from tests.support import INVENTORIES, REPO, VENV_BIN, ansible_env
from tests.support import ansible as converge_support

DATA = REPO / "tests" / "unit" / "data" / "audit"
OUR_SCHEMA = Path(report.__file__).parent / "schemas" / "report-v1.schema.json"


@dataclass
class Audit:
    rc: int
    output: str
    doc: dict | None
    files: dict[str, Path]

    @property
    def findings(self) -> list[dict]:
        return (self.doc or {}).get("findings", [])

    @property
    def failing(self) -> set[tuple[str, str]]:
        """(check, host) of every finding that is not a pass."""
        return {(f["check"], f["host"]) for f in self.findings if f["status"] != "pass"}

    def validate(self) -> None:
        """Each report file against its schema: ours, SARIF 2.1.0, JUnit (Jenkins' XSD)."""
        jsonschema.Draft202012Validator(json.loads(OUR_SCHEMA.read_text())).validate(self.doc)
        sarif = json.loads((DATA / "sarif-2.1.0.json").read_text())
        jsonschema.Draft202012Validator(sarif).validate(json.loads(self.files["sarif"].read_text()))
        xmlschema.XMLSchema(DATA / "junit.xsd").validate(self.files["junit"].read_bytes())
        cases = sum(1 for _ in ET.parse(self.files["junit"]).getroot().iter("testcase"))
        assert cases == len(self.findings), "JUnit must hold one test case per check and host"


def run_audit(tmp_path: Path, *args: str) -> Audit:
    stem = tmp_path / f"audit-{uuid.uuid4().hex[:6]}"
    files = {fmt: stem.with_suffix(f".{fmt}") for fmt in ("json", "junit", "sarif")}
    cmd = [str(VENV_BIN / "rampart-audit"), "--format", "text", *(f"--format={k}={v}" for k, v in files.items()),
           *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), cwd=REPO, timeout=900,
                          check=False)
    doc = json.loads(files["json"].read_text()) if files["json"].exists() else None
    return Audit(proc.returncode, proc.stdout + proc.stderr, doc, files)


def converge_lab(tmp_path: Path, tags: str, extra_vars: dict | None = None) -> None:
    """site.yml on the lab with only the tags a break touched (and extra vars, when given)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORIES / "lab"), str(REPO / "playbooks" / "site.yml"),
           "--tags", tags]
    run = converge_support.run(cmd, extra_vars, tmp_path)
    assert run.rc == 0, run.output[-3000:]


@pytest.fixture
def audit(tmp_path):
    return lambda *args: run_audit(tmp_path, *args)
