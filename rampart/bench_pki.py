"""Benchmark: the pki role's bulk issuance against a per-certificate community.crypto loop.

One run, three timings, all through real ``ansible-playbook`` runs against localhost (``-c local``,
pipelining on for every run, CA creation outside every timing that does not include it):

a. **ours**: the ``pki`` role with N client names; all N certificates come from one
   ``rampart.mqtt.pki`` task (the role's CA and CRL tasks run too, they take milliseconds).
b. **community.crypto**: the same N certificates the usual per-item way, three loops over N:
   ``openssl_privatekey`` -> ``openssl_csr_pipe`` -> ``x509_certificate`` (provider ``ownca``,
   signing with an intermediate made beforehand by the collection's ``pki.ensure_ca``). ``x509_certificate``
   writes the file itself, so no fourth loop is needed to store the PEM (the fastest honest
   equivalent of ``x509_certificate_pipe`` + ``copy``).
c. **ours again**: the same role run over the existing N (must report changed=0).

Prints the three wall times and the ratio b/a. Every run's output goes to a log in the work
directory. ``rampart-bench-pki --count 50`` (or ``scripts/bench-pki``) is a quick smoke run; the default is
N=1000.

``--scale 10,10000`` is the other mode: for each N, in a fresh directory, the role's first run and its
idempotent re-run (a and c, no community.crypto), then the ratios that show how the role scales: the first
run at the largest N in seconds, and re-run(largest N) / re-run(smallest N).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from rampart import project, results
from rampart.collection import module_utils

pki = module_utils("pki")

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

ROLE_PLAY = [
    {
        "name": "Bulk issuance through the pki role",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [
            {
                "role": "rampart.mqtt.pki",
                "vars": {"pki_dir": "{{ bench_dir }}/ours", "pki_client_certificates": "{{ bench_names }}",
                         "pki_disposable": True},
            }
        ],
    }
]

COMMUNITY_PLAY = [
    {
        "name": "Per-certificate issuance with community.crypto",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Create the client directories",
                "ansible.builtin.file": {"path": "{{ bench_dir }}/community", "state": "directory", "mode": "0700"},
            },
            {
                "name": "Generate one private key per client",
                "community.crypto.openssl_privatekey": {
                    "path": "{{ bench_dir }}/community/{{ item }}.key",
                    "type": "ECC",
                    "curve": "secp256r1",
                    "mode": "0600",
                },
                "loop": "{{ bench_names }}",
            },
            {
                "name": "Create one CSR per client",
                "community.crypto.openssl_csr_pipe": {
                    "privatekey_path": "{{ bench_dir }}/community/{{ item }}.key",
                    "common_name": "{{ item }}",
                    "basic_constraints": ["CA:FALSE"],
                    "basic_constraints_critical": True,
                    "key_usage": ["digitalSignature"],
                    "key_usage_critical": True,
                    "extended_key_usage": ["clientAuth"],
                },
                "loop": "{{ bench_names }}",
                "register": "bench_csrs",
            },
            {
                "name": "Sign one certificate per client with the intermediate",
                "community.crypto.x509_certificate": {
                    "path": "{{ bench_dir }}/community/{{ item.item }}.crt",
                    "csr_content": "{{ item.csr }}",
                    "provider": "ownca",
                    "ownca_path": "{{ bench_dir }}/community-ca/ca/intermediate.crt",
                    "ownca_privatekey_path": "{{ bench_dir }}/community-ca/ca/intermediate.key",
                    "ownca_not_after": "+397d",
                    "mode": "0644",
                },
                "loop": "{{ bench_csrs.results }}",
                "loop_control": {"label": "{{ item.item }}"},
            },
        ],
    }
]


def _environment(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(work / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(project.find() / ".collections"),
        ANSIBLE_LOCAL_TEMP=str(work / ".ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{ANSIBLE_PLAYBOOK.parent}:{env.get('PATH', '/usr/bin:/bin')}",
    )
    return env


def _play(work: Path, playbook: str, log_name: str) -> tuple[float, int]:
    """Run one playbook; return (wall seconds, changed count). Raises on failure."""
    log = work / log_name
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(work / "inventory.yml"), "-e", f"@{work / 'vars.json'}", playbook]
    recorded = work / f"{log_name}.results.jsonl"  # the rampart.mqtt.results callback's records of this run
    recorded.unlink(missing_ok=True)
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=work, env=results.callback_env(_environment(work), recorded), stdout=fh,
                              stderr=subprocess.STDOUT, check=False)
    elapsed = time.perf_counter() - start
    out = log.read_text()
    stats = results.PlaybookResult(proc.returncode, out, results.read(recorded)).stats.get("localhost")
    if proc.returncode != 0 or stats is None or stats.failed:
        tail = "\n".join(out.splitlines()[-30:])
        raise SystemExit(f"bench-pki: {playbook} failed (rc={proc.returncode}); see {log}\n{tail}")
    return elapsed, stats.changed


def _count_issued(directory: Path, pattern: str, issuer: x509.Certificate) -> int:
    """How many certificates under ``directory`` ``issuer`` signed (every one is checked)."""
    count = 0
    for path in directory.glob(pattern):
        x509.load_pem_x509_certificate(path.read_bytes()).verify_directly_issued_by(issuer)
        count += 1
    return count


def _setup(work: Path, count: int, community: bool = True) -> None:
    (work / "ansible.cfg").write_text(
        "[defaults]\ninject_facts_as_vars = False\nretry_files_enabled = False\n"
        "stdout_callback = ansible.builtin.default\n\n[connection]\npipelining = True\n"
    )
    inventory = {
        "all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
    }
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    names = [f"device-{i:05d}" for i in range(count)]
    (work / "vars.json").write_text(json.dumps({"bench_dir": str(work), "bench_names": names}))
    (work / "role.yml").write_text(yaml.safe_dump(ROLE_PLAY, sort_keys=False))
    if community:
        (work / "community.yml").write_text(yaml.safe_dump(COMMUNITY_PLAY, sort_keys=False))
        # The community.crypto loop signs with an intermediate like ours; making it is not timed.
        pki.ensure_ca(work / "community-ca", "Bench CA")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first_run(work: Path, count: int) -> float:
    """(a): the role over ``count`` new clients; checks that it issued all of them. Returns the wall seconds."""
    _say(f"bench-pki: (a) pki role, {count} client certificates in one task ...")
    ours, changed = _play(work, "role.yml", "a-ours.log")
    if changed == 0:
        raise SystemExit("bench-pki: the first role run changed nothing; is the work directory fresh?")
    inter = x509.load_pem_x509_certificate((work / "ours" / "ca" / "intermediate.crt").read_bytes())
    issued = _count_issued(work / "ours" / "clients", "*/cert.pem", inter)
    if issued != count:
        raise SystemExit(f"bench-pki: the role issued {issued} certificates, expected {count}")
    return ours


def _rerun(work: Path, count: int) -> float:
    """(c): the role again over the existing ``count``; must change nothing. Returns the wall seconds."""
    _say(f"bench-pki: (c) pki role again over the existing {count} ...")
    again, changed = _play(work, "role.yml", "c-ours-again.log")
    if changed != 0:
        raise SystemExit(f"bench-pki: the second role run reported changed={changed}, expected 0")
    return again


def run(count: int, work: Path, skip_community: bool = False) -> dict[str, float | int | None]:
    _setup(work, count, community=not skip_community)
    ours = _first_run(work, count)

    community = None
    if not skip_community:
        _say(f"bench-pki: (b) community.crypto, 3 loops x {count} items (this is the slow one) ...")
        community, _ = _play(work, "community.yml", "b-community.log")
        inter = x509.load_pem_x509_certificate((work / "community-ca" / "ca" / "intermediate.crt").read_bytes())
        issued = _count_issued(work / "community", "*.crt", inter)
        if issued != count:
            raise SystemExit(f"bench-pki: community.crypto issued {issued} certificates, expected {count}")

    again = _rerun(work, count)
    return {
        "count": count,
        "ours_seconds": round(ours, 2),
        "community_seconds": round(community, 2) if community is not None else None,
        "ours_again_seconds": round(again, 2),
        "ratio": round(community / ours, 1) if community is not None else None,
    }


def scale(counts: list[int], work: Path) -> dict[str, Any]:
    """For each N in ``counts`` (own subdirectory): the role's first run and re-run; then the scaling ratios."""
    runs = []
    for count in counts:
        sub = work / f"n{count}"
        sub.mkdir()
        _setup(sub, count, community=False)
        first = _first_run(sub, count)
        again = _rerun(sub, count)
        runs.append({"count": count, "first_seconds": round(first, 2), "rerun_seconds": round(again, 2)})
    small = min(runs, key=lambda r: r["count"])
    large = max(runs, key=lambda r: r["count"])
    return {
        "runs": runs,
        "first_seconds_largest": large["first_seconds"],
        "rerun_ratio": round(large["rerun_seconds"] / small["rerun_seconds"], 2),
        "smallest": small["count"],
        "largest": large["count"],
    }


def parse_counts(value: str) -> list[int]:
    """``--scale`` "10,10000" as [10, 10000]: at least two distinct counts, each >= 1."""
    try:
        counts = sorted({int(part) for part in value.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated counts, got {value!r}") from None
    if len(counts) < 2 or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"expected at least two distinct counts >= 1, got {value!r}")
    return counts


def _print_scale(result: dict[str, Any]) -> None:
    for r in result["runs"]:
        first, again = r["first_seconds"], r["rerun_seconds"]
        print(f"N={r['count']:<6} first run {first:8.2f} s   re-run (changed=0) {again:8.2f} s")
    print(f"first run at N={result['largest']}:{'':<24}{result['first_seconds_largest']:8.2f} s")
    print(f"re-run N={result['largest']} / re-run N={result['smallest']}:{'':<14}{result['rerun_ratio']:8.2f} x")


def _print_run(result: dict[str, Any]) -> None:
    print(f"client certificates (N):                          {result['count']}")
    print(f"(a) pki role, one bulk task:                      {result['ours_seconds']:8.2f} s")
    if result["community_seconds"] is not None:
        print(f"(b) community.crypto, per-item loops:             {result['community_seconds']:8.2f} s")
    print(f"(c) pki role again, idempotent (changed=0):       {result['ours_again_seconds']:8.2f} s")
    if result["ratio"] is not None:
        print(f"ratio (b)/(a):                                    {result['ratio']:8.1f} x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-pki", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="client certificates to issue (default 1000)")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a fresh temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, both PKIs)")
    parser.add_argument("--skip-community", action="store_true", help="only time the role (a and c)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--scale", type=parse_counts, metavar="N1,N2[,...]",
                        help="scaling mode: first run and re-run of the role at each N (no community.crypto)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be >= 1")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=False)
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="rampart-bench-pki-"))).resolve()
    try:
        result = scale(args.scale, work) if args.scale else run(args.count, work, args.skip_community)
    finally:
        if args.keep or args.workdir:
            _say(f"bench-pki: work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    elif args.scale:
        _print_scale(result)
    else:
        _print_run(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
