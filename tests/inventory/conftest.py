"""Helpers for the inventory tests: run the real playbooks against a throw-away copy of an inventory.

Nothing here starts a container or opens a connection on purpose. Every host of a copied inventory is
pinned to 127.0.0.1:9 (discard; nothing listens there), so a play that did reach a host fails with
UNREACHABLE, which the tests look for, and no packet leaves the loopback interface.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"

_PLAY_RE = re.compile(r"^PLAY \[(?P<name>.*)\]( \*+)?$", re.M)
_TASK_RE = re.compile(r"^TASK \[(?P<name>.*)\]( \*+)?$")
_FAILURE_RE = re.compile(r"^(fatal|failed): \[")
# The display prints the raw message once, unwrapped, between "[ERROR]: Task failed:" and "Origin:".
_ERROR_RE = re.compile(r"^\[ERROR\]: Task failed: (?P<msg>.*?)\nOrigin: ", re.M | re.S)


@dataclass(frozen=True)
class PlaybookRun:
    """The result of one ansible-playbook run: exit code and the combined stdout and stderr."""

    rc: int
    output: str

    @property
    def plays(self) -> list[str]:
        """Names of the plays that started, in order."""
        return [m["name"] for m in _PLAY_RE.finditer(self.output)]

    @property
    def failed_task(self) -> tuple[str, str] | None:
        """(play, task) of the first failed task, or None when nothing failed."""
        play = task = ""
        for line in self.output.splitlines():
            if m := _PLAY_RE.match(line):
                play = m["name"]
            elif m := _TASK_RE.match(line):
                task = m["name"]
            elif _FAILURE_RE.match(line):
                return play, task
        return None

    @property
    def error_messages(self) -> list[str]:
        """The raw text of every '[ERROR]: Task failed: ...' block."""
        return [m["msg"] for m in _ERROR_RE.finditer(self.output)]

    @property
    def contacted_a_host(self) -> bool:
        """True when a fact-gathering task ran or any host was reported unreachable."""
        return (
            "TASK [Gathering Facts]" in self.output
            or "UNREACHABLE" in self.output
            or any(int(n) for n in re.findall(r"\bunreachable=(\d+)", self.output))
        )


@dataclass(frozen=True)
class InventoryCopy:
    """A copy of an inventory whose hosts point at 127.0.0.1:9, with pki_dir in a scratch path."""

    path: Path
    pki_dir: Path

    def load(self, relative: str):
        return yaml.safe_load((self.path / relative).read_text())

    def dump(self, relative: str, data) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("---\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _pin_hosts(node: dict, pki_dir: Path) -> None:
    """Point every host below an inventory group at the discard port on loopback (host vars win over group_vars)."""
    for name, host_vars in list((node.get("hosts") or {}).items()):
        host_vars = dict(host_vars or {})
        host_vars.update(ansible_host="127.0.0.1", ansible_port=9, pki_dir=str(pki_dir))
        node["hosts"][name] = host_vars
    for child in (node.get("children") or {}).values():
        if child:
            _pin_hosts(child, pki_dir)


@pytest.fixture
def inventory_copy(tmp_path: Path) -> Callable[[str], InventoryCopy]:
    """Copy inventories/<name> into this test's own tmp_path (parallel-safe) and pin its hosts to loopback."""

    def make(name: str) -> InventoryCopy:
        path = tmp_path / "inventory"
        shutil.copytree(REPO / "inventories" / name, path)
        pki_dir = tmp_path / "pki"
        hosts = yaml.safe_load((path / "hosts.yml").read_text())
        for group in hosts.values():
            _pin_hosts(group, pki_dir)
        copy = InventoryCopy(path, pki_dir)
        copy.dump("hosts.yml", hosts)
        return copy

    return make


@pytest.fixture
def run_playbook(tmp_path: Path) -> Callable[..., PlaybookRun]:
    """Run .venv/bin/ansible-playbook from the repo root with the repo's ansible.cfg."""

    def run(playbook: str, inventory: Path, *args: str) -> PlaybookRun:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            # Each run keeps its scratch files to itself, so xdist workers never share them.
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        }
        proc = subprocess.run(
            [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), f"playbooks/{playbook}", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=180,
            check=False,
        )
        return PlaybookRun(proc.returncode, proc.stdout)

    return run
