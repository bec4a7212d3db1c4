"""Read the deployment for the audit: playbooks/audit.yml (read-only), results read through the callback.

``start(ctx, drift)`` starts the audit's one run (with the drift check, site.yml in check mode follows the
reading: playbooks/audit_drift.yml). As soon as every host is read, ``collect(ctx, running)`` returns the
description (the .lab/lab.json schema, with the clients' passwords, kept in the audit's private temporary
directory), each host's facts (playbooks/files/audit_facts.py) and each host's declared profile. A run that
cannot read a host raises AuditError (exit 2) with the cause and the fix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rampart import results

from .model import AuditError, Context

DEFAULT_PROFILE = "enhanced"
VAULT_ERRORS = ("Decryption failed", "no vault secrets were found", "Attempting to decrypt but no vault secrets")


@dataclass
class Collected:
    description: dict
    facts: dict[str, dict]
    profiles: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    hostvars: dict[str, dict] = field(default_factory=dict)


def ansible_env(ctx: Context) -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    cfg = ctx.project / "ansible.cfg"
    if cfg.exists():
        env.setdefault("ANSIBLE_CONFIG", str(cfg))
    return env


def playbook_cmd(ctx: Context, playbook: str, *extra: str) -> list[str]:
    """ansible-playbook with the context's inventories, limit and vault arguments."""
    cmd = [_tool(ctx, "ansible-playbook")]
    for inventory in ctx.inventories:
        cmd += ["-i", inventory]
    if ctx.limit:
        cmd += ["--limit", ctx.limit]
    return [*cmd, *ctx.ansible_args, str(ctx.project / "playbooks" / playbook), *extra]


def _tool(ctx: Context, name: str) -> str:
    beside = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / name
    local = ctx.project / ".venv" / "bin" / name
    return str(local if local.exists() else beside if beside.exists() else name)


def explain(run: results.PlaybookResult, what: str) -> AuditError:
    """The one-line cause and fix of a run that could not read the deployment."""
    unreachable = sorted({t.host for t in run.tasks if t.status == "unreachable"})
    if unreachable:
        return AuditError(f"{what}: host(s) {', '.join(unreachable)} unreachable; check the address and the SSH "
                          "credentials in the inventory (or leave the host out with --limit)")
    if any(marker in run.output for marker in VAULT_ERRORS):
        return vault_error(what)
    failed = next(iter(run.failures), None)
    if failed is not None:
        message = (failed.messages or ["(no message)"])[0].strip().splitlines()[0]
        return AuditError(f"{what}: {failed.host}: {failed.name}: {message}")
    error = re.search(r"^ERROR! (.+)$", run.output, re.MULTILINE)
    return AuditError(f"{what}: {error.group(1) if error else f'ansible-playbook exited {run.rc}'}")


def start(ctx: Context, drift: bool) -> results.Running:
    """The audit's one ansible-playbook run: playbooks/audit_drift.yml with --check --diff (the hosts read, then
    site.yml in check mode) when the drift check is wanted, playbooks/audit.yml alone when it is not."""
    extra = ["-e", f"rampart_audit_dir={ctx.workdir}"]
    playbook = "audit_drift.yml" if drift else "audit.yml"
    cmd = playbook_cmd(ctx, playbook, *extra, *(["--check", "--diff"] if drift else []))
    return results.start(cmd, env=ansible_env(ctx), cwd=ctx.project)


def collect(ctx: Context, running: results.Running, timeout: float = 900) -> Collected:
    """What the run read, as soon as it says every host is read (hosts.json); the run goes on. A run that
    ends first, or could not read a host, is stopped and explained (AuditError). ansible-inventory reads the
    inventory meanwhile; its own failure is reported only when the run's is not."""
    workdir = ctx.workdir
    with _Inventory(ctx) as reading:
        read, deadline = workdir / "hosts.json", time.monotonic() + timeout
        while not read.exists() and not running.done() and time.monotonic() < deadline:
            time.sleep(0.1)
        hosts = json.loads(read.read_text()) if read.exists() else None
        if hosts is None or set(hosts["read"]) != set(hosts["all"]):
            running.stop()
            raise explain(running.wait(timeout=60), "reading the deployment (playbooks/audit.yml)")
        inventory = reading.result()
    description = json.loads((workdir / "description.json").read_text())
    facts = hosts["facts"]
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    profiles = {host: str(hostvars.get(host, {}).get("rampart_profile", DEFAULT_PROFILE)) for host in facts}
    groups = {name: sorted(_hosts(inventory, name)) for name in inventory if name != "_meta"}
    return Collected(description, facts, profiles, groups, {h: hostvars.get(h, {}) for h in facts})


def vault_error(what: str) -> AuditError:
    return AuditError(f"{what}: the inventory's vault could not be decrypted; pass the right password with "
                      "--vault-password-file or --vault-id")


class _Inventory:
    """ansible-inventory --list (vault decrypted), started at once: groups and the inventory's own variables per
    host. Its output goes to unnamed temporary files (it holds the vault's secrets), never to a pipe that could
    fill while the audit waits for the hosts."""

    def __init__(self, ctx: Context) -> None:
        cmd = [_tool(ctx, "ansible-inventory"), "--list"]
        for inventory in ctx.inventories:
            cmd += ["-i", inventory]
        cmd += [a for a in ctx.ansible_args if a.startswith(("--vault", "--ask-vault"))]
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by __exit__)
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by __exit__)
        self._proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err, text=True, env=ansible_env(ctx),
                                      cwd=ctx.project)

    def __enter__(self) -> _Inventory:
        return self

    def __exit__(self, *exc) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._out.close()
        self._err.close()

    def result(self) -> dict:
        returncode = self._proc.wait(timeout=300)
        self._out.seek(0)
        self._err.seek(0)
        stdout, stderr = self._out.read(), self._err.read()
        if returncode != 0:
            if any(marker in stderr for marker in VAULT_ERRORS):
                raise vault_error("reading the inventory")
            last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {returncode}"
            raise AuditError(f"reading the inventory: {last}")
        return json.loads(stdout)


def _hosts(inventory: dict, group: str) -> set[str]:
    node = inventory.get(group) or {}
    found = set(node.get("hosts") or [])
    for child in node.get("children") or []:
        found |= _hosts(inventory, child)
    return found


def declared_ports(host: str, collected: Collected) -> set[tuple[str, int]]:
    """(protocol, port) the inventory declares on the host: MQTT, SSH, WireGuard, the collector's RELP port."""
    hostvars, groups = collected.hostvars.get(host, {}), collected.groups
    declared = {("tcp", int(hostvars.get("ansible_port", 22)))}
    for broker in collected.description.get("brokers", []):
        if broker["name"] == host:
            declared |= {("tcp", int(p)) for p in broker["listeners"].values()}
    if host in groups.get("wireguard", []):
        declared.add(("udp", int(hostvars.get("wireguard_port", 51820))))
    collector = collected.description.get("collector")
    if collector and host in groups.get("collectors", []):
        declared.add(("tcp", int(collector["port"])))
    return declared
