"""scripts/audit: does every broker still match the code and still resist attack?

  scripts/audit                                  # the lab (inventories/lab), every check of each host's profile
  scripts/audit -i inventories/prod --vault-password-file F --format junit=audit.xml --format sarif=audit.sarif
  scripts/audit --target mqtt.example.net:8883 --cafile ca.pem --username u --password-env MQTT_PW
  scripts/audit lint /etc/mosquitto/mosquitto.conf /etc/mosquitto/acl --admin ops   # offline, see lint --help

Exit codes: 0 clean, 1 findings, 2 could not audit (the message names the cause and the fix).
One ansible-playbook run: the hosts read (playbooks/audit.yml), then site.yml in check mode (drift:
playbooks/audit_drift.yml); the posture probes run as soon as the hosts are read, beside the check-mode part.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from . import collect, drift, hostchecks, posture, report
from .model import CHECKS, PROFILES, AuditError, Context

PROJECT = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/audit", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--inventory", action="append", help="inventory (repeatable; default: the lab's)")
    p.add_argument("--limit", help="audit only these hosts (ansible --limit pattern)")
    p.add_argument("-e", "--extra-vars", action="append", default=[], help="passed to ansible-playbook")
    p.add_argument("--vault-id", action="append", default=[], help="passed to ansible")
    p.add_argument("--vault-password-file", action="append", default=[], help="passed to ansible")
    p.add_argument("--ask-vault-pass", action="store_true", help="passed to ansible")
    p.add_argument("--profile", choices=PROFILES, help="audit every host at this profile (default: its declared one)")
    p.add_argument("--format", action="append", default=[], metavar="FMT[=FILE]",
                   help="text, json, junit or sarif, repeatable; a file for each (text defaults to stdout)")
    p.add_argument("--only", action="append", default=[], metavar="CHECK", help="run only these checks")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK", help="leave these checks out")
    p.add_argument("--full-tls-scan", action="store_true",
                   help="TLS checks with sslyze's own scan, a handshake per suite (533; minutes behind a rate limit)")
    p.add_argument("--target", metavar="HOST:PORT", help="posture checks of any broker (no inventory)")
    p.add_argument("--cafile", help="--target: the CA that signs the broker's certificate")
    p.add_argument("--server-name", help="--target: the name the certificate must carry (default: HOST)")
    p.add_argument("--username", help="--target: an ordinary client, for the ACL checks")
    p.add_argument("--password-env", metavar="VAR", help="--target: the environment variable holding its password")
    p.add_argument("--project", type=Path, default=PROJECT, help="where playbooks/ is (default: this checkout)")
    return p


def outputs(formats: list[str]) -> list[tuple[str, str]]:
    """(format, file or '-') pairs; text to stdout when nothing is asked for."""
    pairs = []
    for spec in formats or ["text"]:
        fmt, _, path = spec.partition("=")
        if fmt not in report.FORMATS:
            raise AuditError(f"--format {spec!r}: the formats are {', '.join(report.FORMATS)}")
        if not path and fmt != "text":
            raise AuditError(f"--format {fmt} needs a file: --format {fmt}=FILE (or {fmt}=- for stdout)")
        pairs.append((fmt, path or "-"))
    return pairs


def context(args: argparse.Namespace, workdir: Path) -> Context:
    for check in [*args.only, *args.skip]:
        if check not in CHECKS:
            raise AuditError(f"unknown check {check!r}; the checks are: {', '.join(CHECKS)}")
    vault = [*(f"--vault-id={v}" for v in args.vault_id), *(f"--vault-password-file={v}" for v in
             args.vault_password_file), *(["--ask-vault-pass"] if args.ask_vault_pass else []),
             *(f"--extra-vars={e}" for e in args.extra_vars)]
    inventories = args.inventory or [str(args.project / "inventories" / "lab")]
    for inventory in inventories:
        if not Path(inventory).exists():
            raise AuditError(f"inventory {inventory} does not exist; give the path of yours with -i")
    return Context(project=args.project, inventories=inventories, ansible_args=vault, limit=args.limit,
                   profile=args.profile, only=set(args.only), skip=set(args.skip), workdir=workdir,
                   full_tls_scan=args.full_tls_scan)


def audit_deployment(ctx: Context) -> tuple[list, dict]:
    wants_drift = ctx.wants("DRIFT-TASK", "basic") if ctx.only else "DRIFT-TASK" not in ctx.skip
    progress("reading the hosts (playbooks/audit_drift.yml: audit.yml, then site.yml --check --diff)" if wants_drift
             else "reading the hosts (playbooks/audit.yml)")
    running = collect.start(ctx, wants_drift)
    try:
        collected = collect.collect(ctx, running)
        progress("probing the brokers from outside")
        findings = posture.run(ctx, collected.description, collected.profiles)
        findings += hostchecks.run(ctx, collected)
    except BaseException:
        running.stop()
        raise
    if wants_drift and not running.done():
        progress("waiting for site.yml --check --diff")
    run = running.wait(timeout=1800)
    if not wants_drift:
        ctx.skip = ctx.skip | {"DRIFT-TASK"}
    elif run.rc != 0:
        raise collect.explain(run, "site.yml --check --diff")
    findings += drift.run(ctx, collected, run if wants_drift else None)
    progress("writing the report")
    return findings, collected.profiles


def audit_target(ctx: Context, args: argparse.Namespace) -> tuple[list, dict]:
    password = os.environ.get(args.password_env) if args.password_env else None
    if args.password_env and password is None:
        raise AuditError(f"--password-env {args.password_env}: that environment variable is not set")
    description = posture.target_description(args.target, args.cafile, args.username, password,
                                             server_name=args.server_name)
    profile = ctx.profile or "enhanced"
    return posture.run(ctx, description, {args.target: profile}), {args.target: profile}


STARTED = time.monotonic()


def progress(message: str) -> None:
    """One line on stderr, with the seconds since the audit started (where an operator's CI job spends its time)."""
    print(f"audit: {time.monotonic() - STARTED:5.1f} s  {message}", file=sys.stderr, flush=True)


def write(rep: report.Report, pairs: list[tuple[str, str]]) -> None:
    for fmt, path in pairs:
        body = report.FORMATS[fmt](rep)
        if path == "-":
            sys.stdout.write(body)
        else:
            Path(path).write_text(body)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lint"]:
        from . import lint

        return lint.main(argv[1:])
    args = parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="rampart-audit-"))
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        pairs = outputs(args.format)
        ctx = context(args, workdir)
        findings, profiles = audit_target(ctx, args) if args.target else audit_deployment(ctx)
    except AuditError as exc:
        print(f"audit: cannot audit: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug must not read as "findings" (exit 1) in a CI job
        print(f"audit: cannot audit: internal error {type(exc).__name__}: {exc} (a bug in the audit: please "
              "report it with the output above)", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rep = report.Report(findings, profiles, started, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        _version(), None if args.target else _relative(ctx.inventories[0], args.project))
    write(rep, pairs)
    return rep.exit_code


def _relative(path: str, project: Path) -> str:
    resolved, root = Path(path).resolve(), project.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)


def _version() -> str:
    try:
        return metadata.version("rampart")
    except metadata.PackageNotFoundError:
        return "0"


if __name__ == "__main__":
    sys.exit(main())
