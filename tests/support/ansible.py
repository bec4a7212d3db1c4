"""Converging the deployment from a test, results read through the rampart.mqtt.results callback."""

from __future__ import annotations

import json
import os
import shlex
import uuid
from pathlib import Path

from rampart import results

from . import ANSIBLE_PLAYBOOK, INVENTORIES, PLAYBOOKS, REPO, ansible_env

# The shipped schedule that keeps the CRLs fresh (roles/pki/README.md, "Keeping the CRL fresh").
CRL_REFRESH_UNITS = REPO / "examples" / "systemd"

# The lab's converge for what tests/behaviour changes (validation, certificates and the brokers).
DEFAULT_CONVERGE = [str(ANSIBLE_PLAYBOOK), "-i", str(INVENTORIES / "lab"), str(PLAYBOOKS / "site.yml"),
                    "--tags", "broker"]


def converge_command() -> list[str]:
    """RAMPART_CONVERGE (a JSON list: the command that converges the deployment), else the lab's default."""
    raw = os.environ.get("RAMPART_CONVERGE")
    return json.loads(raw) if raw else list(DEFAULT_CONVERGE)


def run(cmd: list[str], extra_vars: dict | None = None, scratch: Path | None = None, *args: str,
        timeout: float = 900) -> results.PlaybookResult:
    """Run ``cmd`` plus ``-e @extra_vars`` (written into ``scratch``) plus ``args``, from the repo root."""
    cmd = list(cmd)
    if extra_vars is not None:
        if scratch is None:
            raise ValueError("extra_vars need a scratch directory")
        path = scratch / f"extra-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(extra_vars))
        cmd += ["-e", f"@{path}"]
    return results.run([*cmd, *args], env=ansible_env(), cwd=REPO, timeout=timeout)


def converge(extra_vars: dict | None, tmp_path: Path, *args: str, tags: str | None = None) -> results.PlaybookResult:
    """Run the deployment's converge command (plus args, e.g. --check); rc, output, changed, statuses(task).
    ``tags`` replaces the command's own --tags (the brokers' by default), e.g. "certificates,logs"."""
    cmd = converge_command()
    if tags is not None:
        if "--tags" in cmd:
            del cmd[cmd.index("--tags"):cmd.index("--tags") + 2]
        cmd += ["--tags", tags]
    return run(cmd, extra_vars, tmp_path, *args)


def unit_setting(unit: Path, key: str) -> str:
    """The value of ``key`` in a systemd unit file (the one line that sets it)."""
    [value] = [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]
    return value


def scheduled_crl_command() -> list[str]:
    """The shipped CRL refresh (examples/systemd/rampart-crl-refresh.service), on the deployment under test: its
    ExecStart's ansible-playbook arguments, with the converge command's ansible-playbook, inventory and playbook in
    place of the unit's ${RAMPART_INVENTORY} and playbooks/site.yml (Molecule's converge.yml imports site.yml)."""
    argv = shlex.split(unit_setting(CRL_REFRESH_UNITS / "rampart-crl-refresh.service", "ExecStart"))
    converge_cmd = converge_command()
    inventory = converge_cmd[converge_cmd.index("-i") + 1]
    playbook = next(a for i, a in enumerate(converge_cmd) if a.endswith(".yml") and converge_cmd[i - 1] != "-i")
    swap = {"${RAMPART_INVENTORY}": inventory, "playbooks/site.yml": playbook}
    return [converge_cmd[0], *(swap.get(a, a) for a in argv[1:])]
