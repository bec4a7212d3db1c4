"""Drift: where a host no longer matches the code.

DRIFT-TASK    site.yml in check mode with diff, read through the rampart.mqtt.results callback: every task
              that would change is a finding (host, role, task, resource, the diff with secrets redacted; a
              no_log task says that it would change, never what).
DRIFT-LISTENER, DRIFT-FILES, DRIFT-PACKAGE  what check mode cannot see, from the facts playbooks/audit.yml read.
"""

from __future__ import annotations

import difflib
import ipaddress
import re

from rampart import results

from .collect import Collected, declared_ports
from .model import Context, Finding, Location

REDACTED = "<redacted>"
SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    re.compile(r"\$[5-7]\$[^\s:]+"),  # crypt and Mosquitto PBKDF2 hashes
    re.compile(r"(?im)^(\s*(?:PrivateKey|PresharedKey)\s*=\s*)\S+"),
]


def run(ctx: Context, collected: Collected, check_run: results.PlaybookResult | None) -> list[Finding]:
    """DRIFT-* findings. ``check_run`` is the audit's run (playbooks/audit_drift.yml, with site.yml in check mode);
    None when DRIFT-TASK is not wanted."""
    findings: list[Finding] = []
    profile = collected.profiles
    if any(ctx.wants("DRIFT-TASK", ctx.profile or profile.get(h, "enhanced")) for h in collected.facts):
        findings += task_findings(ctx, check_run, collected)
    for host, facts in sorted(collected.facts.items()):
        level = ctx.profile or profile.get(host, "enhanced")
        if ctx.wants("DRIFT-LISTENER", level):
            findings.append(listener_finding(host, facts, declared_ports(host, collected)))
        if "mosquitto" in facts and ctx.wants("DRIFT-FILES", level):
            findings.append(files_finding(host, facts["mosquitto"]))
        if "mosquitto" in facts and ctx.wants("DRIFT-PACKAGE", level):
            findings.append(package_finding(host, facts["mosquitto"]["package"]))
    return findings


def secrets_of(collected: Collected) -> list[str]:
    return [c["password"] for c in collected.description.get("clients", []) if c.get("password")]


def redact(text: str, secrets: list[str]) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + REDACTED, text)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def render_diff(diffs: list, secrets: list[str]) -> str:
    """The task's diff objects as one unified diff (text before/after) or key: before -> after lines."""
    out = []
    for d in diffs:
        before, after = d.get("before", ""), d.get("after", "")
        if isinstance(before, str) and isinstance(after, str):
            header = (d.get("before_header") or "before", d.get("after_header") or "after")
            out += difflib.unified_diff(before.splitlines(), after.splitlines(), *header, lineterm="")
        else:
            before, after = before or {}, after or {}
            out += [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
                    if before.get(k) != after.get(k)]
        if d.get("prepared"):
            out.append(str(d["prepared"]))
    return redact("\n".join(out), secrets)


def resource(diffs: list) -> str | None:
    """The file or resource the first of these diff objects that names one is about."""
    for d in diffs:
        path = _path(d)
        if path:
            return path
    return None


def _path(diff: dict) -> str | None:
    for key in ("after_header", "before_header"):
        if isinstance(diff.get(key), str) and diff[key].startswith("/"):
            return diff[key]
    return (diff.get("after") or {}).get("path") if isinstance(diff.get("after"), dict) else None


def by_resource(diffs: list) -> list[list]:
    """A task's diff objects, one group per file it would change (rampart.mqtt.file_set installs several in one
    task: each drifted file is then a finding of its own); diff objects that name no file go with the first."""
    groups: dict[str | None, list] = {}
    for d in diffs:
        groups.setdefault(_path(d), []).append(d)
    named = [g for path, g in groups.items() if path is not None]
    if len(named) < 2:
        return [diffs]
    named[0] = groups.get(None, []) + named[0]
    return named


def location(task: results.TaskResult, ctx: Context) -> Location | None:
    if not task.path:
        return None
    file, _, line = task.path.rpartition(":")
    root = str(ctx.project.resolve()) + "/"
    file = file[len(root):] if file.startswith(root) else file
    return Location(file, int(line) if line.isdigit() else None)


def task_findings(ctx: Context, run: results.PlaybookResult, collected: Collected) -> list[Finding]:
    secrets = secrets_of(collected)
    findings, drifted = [], set()
    for task in run.changed_tasks:
        drifted.add(task.host)
        if task.censored:
            message, detail = f"{task.name} would change (no_log: not shown)", {"censored": True}
            detail.update(role=task.role, task=task.task, play=task.play)
            findings.append(Finding("DRIFT-TASK", task.host, "fail", message, detail, location(task, ctx)))
            continue
        for diffs in by_resource(task.diff):
            detail = {"diff": render_diff(diffs, secrets), "resource": resource(diffs),
                      "role": task.role, "task": task.task, "play": task.play}
            message = f"{task.name} would change" + (f" {detail['resource']}" if detail["resource"] else "")
            findings.append(Finding("DRIFT-TASK", task.host, "fail", message, detail, location(task, ctx)))
    for host in sorted(set(run.stats) - drifted):
        findings.append(Finding("DRIFT-TASK", host, "pass", "site.yml --check --diff changes nothing"))
    return findings


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return address == "localhost"


def listener_finding(host: str, facts: dict, declared: set[tuple[str, int]]) -> Finding:
    stray = sorted({f"{s['proto']}/{s['address']}:{s['port']} ({s['process'] or 'unknown process'})"
                    for s in facts.get("listeners", [])
                    if not _loopback(s["address"]) and (s["proto"], s["port"]) not in declared})
    if stray:
        return Finding("DRIFT-LISTENER", host, "fail", "undeclared listening sockets: " + ", ".join(stray),
                       {"sockets": stray})
    return Finding("DRIFT-LISTENER", host, "pass", "every socket reachable from the network is declared")


def files_finding(host: str, broker: dict) -> Finding:
    known = set(broker["package"]["files"]) | set(broker["managed"])
    stray = sorted(f["path"] for f in broker["files"] if f["path"] not in known)
    if stray:
        return Finding("DRIFT-FILES", host, "fail", "files neither the package nor Rampart wrote: " + ", ".join(stray),
                       {"files": stray})
    return Finding("DRIFT-FILES", host, "pass", "only the package's and Rampart's files")


def package_finding(host: str, package: dict) -> Finding:
    installed, candidate = package.get("installed"), package.get("candidate")
    if not installed:
        return Finding("DRIFT-PACKAGE", host, "fail", "mosquitto is not installed")
    if candidate and candidate != "(none)" and installed != candidate:
        return Finding("DRIFT-PACKAGE", host, "fail", f"mosquitto {installed} installed, the release installs "
                       f"{candidate}", {"installed": installed, "candidate": candidate})
    return Finding("DRIFT-PACKAGE", host, "pass", f"mosquitto {installed}, the release's version",
                   {"installed": installed})
