"""Behavioural tests on real Debian kernels (issue 12), run from the control node against the VM lab.

What to test comes from .vmlab/vmlab.json (``RAMPART_VMLAB`` names another), which ``scripts/vmlab up`` writes:
each guest's SSH port on 127.0.0.1, the bridges that are the wires, and the guests' folders (serial console).
Guests are reached over SSH only, as real servers are. This machine is the outsider: it sits on the trunk bridge
untagged (its own kernel has no 802.1Q module, so it cannot tag), and captures frames on that bridge.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VMLAB = Path(os.environ.get("RAMPART_VMLAB", ROOT / ".vmlab" / "vmlab.json"))
if not VMLAB.exists():
    pytest.exit(f"{VMLAB} does not exist: run scripts/vmlab up first (or set RAMPART_VMLAB)", returncode=2)
DESC = json.loads(VMLAB.read_text())
GUESTS = {g["name"]: g for g in DESC["guests"]}
# The inventory is a folder (the full topology) or a file in it (a smaller one): its group_vars are beside it.
INVENTORY_DIR = Path(DESC["inventory"]) if Path(DESC["inventory"]).is_dir() else Path(DESC["inventory"]).parent


class Guest:
    """One VM, reached over SSH through its forwarded port."""

    def __init__(self, entry: dict):
        self.name = entry["name"]
        self.entry = entry

    def ssh_argv(self, command: str) -> list[str]:
        return ["ssh", "-i", DESC["ssh_key"], "-p", str(self.entry["ssh_port"]),
                "-o", f"UserKnownHostsFile={DESC['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@127.0.0.1", command]

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.ssh_argv(command), capture_output=True, text=True, timeout=timeout)

    def sh(self, command: str, timeout: float = 120) -> str:
        res = self.run(command, timeout)
        assert res.returncode == 0, f"{self.name}: {command!r} failed ({res.returncode}): {res.stderr}{res.stdout}"
        return res.stdout

    def answers(self) -> bool:
        try:
            return self.run("true", timeout=15).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def converge(*extra: str):
    """playbooks/vmlab.yml against the VM lab with ``extra`` arguments (read through the results callback)."""
    from rampart import results

    cmd = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", DESC["inventory"],
           str(ROOT / "playbooks" / "vmlab.yml"), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return results.run(cmd, env=env, cwd=ROOT, timeout=1200)


@pytest.fixture(scope="session")
def desc() -> dict:
    return DESC


@pytest.fixture(scope="session")
def broker12() -> Guest:
    return Guest(GUESTS["vmbroker12"])


@pytest.fixture(scope="session")
def broker13() -> Guest:
    return Guest(GUESTS["vmbroker13"])


@pytest.fixture(scope="session")
def client() -> Guest:
    """vmclient: the VPN peer and log collector of the full topology. A test that needs it is marked vm_client,
    which the brokers topology deselects (scripts/vmlab --topology brokers test)."""
    if "vmclient" not in GUESTS:
        pytest.fail(f"this VM lab ({DESC['inventory']}) has no vmclient: run this test against the full topology, "
                    "or deselect it with -m 'not vm_client'")
    return Guest(GUESTS["vmclient"])
