"""The CI examples (examples/ci) are valid GitHub Actions and GitLab CI files, and call scripts/audit correctly."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from rampart.audit import cli
from tests.support import REPO, VENV_BIN

EXAMPLES = {"github-actions.yml": "vendor.github-workflows", "gitlab-ci.yml": "vendor.gitlab-ci"}


def validate(path: Path, schema: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("name", "schema"), EXAMPLES.items())
def test_example_validates_against_the_ci_schema(name, schema):
    res = validate(REPO / "examples" / "ci" / name, schema)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(("name", "schema"), EXAMPLES.items())
def test_the_schema_check_catches_a_broken_file(name, schema, tmp_path):
    """Control: the same validation refuses the example with a misspelt key."""
    broken = tmp_path / name
    text = (REPO / "examples" / "ci" / name).read_text()
    broken.write_text(text.replace("runs-on:", "runs_on:").replace("stage: audit", "stage: [audit, {x: 1}]"))
    assert validate(broken, schema).returncode != 0


def strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [s for child in children for s in strings(child)]


def audit_commands(name: str) -> list[list[str]]:
    """Every scripts/audit command line of an example, as argv (shell line continuations joined)."""
    doc = yaml.safe_load((REPO / "examples" / "ci" / name).read_text())
    lines = [line for text in strings(doc) for line in text.replace("\\\n", " ").splitlines()]
    return [shlex.split(line.strip().replace('"$pw"', "pw").replace('"$RAMPART_VAULT_PASSWORD_FILE"', "pw"))[1:]
            for line in lines if line.strip().startswith("scripts/audit ")]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_calls_the_audit_with_arguments_it_takes(name):
    commands = audit_commands(name)
    assert commands, f"{name} does not run scripts/audit"
    for argv in commands:
        args = cli.parser().parse_args(argv)
        pairs = cli.outputs(args.format)
        assert {fmt for fmt, _ in pairs} == {"text", "json", "junit", "sarif"}
        assert args.inventory == ["inventories/production"] and args.vault_password_file == ["pw"]
