"""Helpers for the inventory tests: run the real playbooks against a throw-away copy of an inventory.

Nothing here starts a container or opens a connection on purpose. Every host of a copied inventory is
pinned to 127.0.0.1:9 (discard; nothing listens there), so a play that did reach a host fails with
UNREACHABLE, which the tests look for, and no packet leaves the loopback interface. The address a host's
logs leave from (logs_source_address) stays the inventory's ansible_host.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rampart import results
from tests.support import ANSIBLE_PLAYBOOK, INVENTORIES, REPO, ansible_env


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: exit code, the combined stdout and stderr, and what the results callback recorded."""

    result: results.PlaybookResult

    @property
    def rc(self) -> int:
        return self.result.rc

    @property
    def output(self) -> str:
        return self.result.output

    @property
    def plays(self) -> list[str]:
        """Names of the plays that started, in order."""
        return self.result.plays

    @property
    def failed_task(self) -> tuple[str, str] | None:
        """(play, "role : task") of the first failed task, or None when nothing failed."""
        first = next(iter(self.result.failures), None)
        return None if first is None else (first.play or "", first.name)

    @property
    def error_messages(self) -> list[str]:
        """The message of every failed task (and of its failed loop items)."""
        return [m for task in self.result.failures for m in task.messages]

    @property
    def contacted_a_host(self) -> bool:
        """True when facts were gathered from a host or any host was reported unreachable."""
        return self.result.contacted_a_host


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
        # The address a sender's logs leave from stays the one the inventory gave (the collector needs one per sender).
        if "ansible_host" in host_vars:
            host_vars.setdefault("logs_source_address", host_vars["ansible_host"])
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
        shutil.copytree(INVENTORIES / name, path)
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
        # Each run keeps its scratch files to itself, so xdist workers never share them.
        env = ansible_env(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
        cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), f"playbooks/{playbook}", *args]
        return PlaybookRun(results.run(cmd, env=env, cwd=REPO, timeout=180))

    return run
