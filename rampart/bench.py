"""scripts/bench: every benchmark (or those named) in one run, and one report of them (issue 13).

The benchmarks are the ones each ``scripts/bench-*`` command runs alone; this runs them in an order that needs one
lab at most, collects each one's JSON result and writes a report folder (default ``bench-report/``, named in the
README):

- ``results.json``: every benchmark's result as its command printed it, with what was run, where and when;
- ``report.md``: the goals of issue 13 (and issue 10's audit) with the figures and whether each is met; for one that
  is not, the profile that explains it and what would meet it; then each benchmark's figures;
- PNG plots: the scaling curves (time against 10, 100, 1,000 and 10,000 clients and certificates), the hardened
  broker against the plain one (throughput and latency side by side), the handshakes and the ACL sizes, the lab's
  rounds.

Order: ``pki`` (no lab: two temporary PKIs on this machine), ``lab`` (the full size makes its own fresh labs and
leaves one up), ``brokers`` (issue 11: fresh labs of 1, 5 and 10 brokers in one site and their re-runs; about 15
minutes; full runs only, ``--quick`` leaves it out: two more fresh labs would cost ``scripts/test`` about 4 minutes),
``clients`` and ``broker`` (on the lab that is up; started with ``scripts/lab up`` when none is, and brought back to
one broker after ``brokers``).

``--quick`` runs each at a small size (``scripts/test`` runs it in its lab step, so that no benchmark and no part of
the report can rot): the PKI at 10 and 100 certificates and a community.crypto comparison at 5, the lab's re-run and
audit without a fresh lab, the clients at 10 and 100, the broker's benchmarks with 10 pairs, 1 s, one round. Every
run is checked by its benchmark (each converge's changed count, every message delivered in order, every handshake
completed); no figure is asserted anywhere.

``--render DIR`` writes the report again from ``DIR/results.json`` (no benchmark runs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rampart import bench_report, project

ORDER = ("pki", "lab", "brokers", "clients", "broker")
NEEDS_LAB = {"clients", "broker"}
FULL_ONLY = {"brokers"}


def steps(names: list[str], quick: bool, pki_community: int) -> list[tuple[str, str, list[str]]]:
    """(result key, module, arguments) for each benchmark run, in ``ORDER``."""
    size = {
        "pki": [("pki_scale", "rampart.bench_pki", ["--scale", "10,100" if quick else "10,100,1000,10000"]),
                ("pki_community", "rampart.bench_pki", ["--count", str(5 if quick else pki_community)])],
        "lab": [("lab", "rampart.bench_lab", ["--quick"] if quick else ["--rounds", "3"])],
        "brokers": [("lab_brokers", "rampart.bench_lab", ["--brokers", "1,5,10"])],
        "clients": [("clients", "rampart.bench_clients", ["--quick"] if quick else ["--counts", "10,100,1000,10000"])],
        "broker": [("broker", "rampart.bench_broker", ["--quick"] if quick else [])],
    }
    if "broker" in names:
        # The broker benchmark replaces the clients benchmark's clients and converges the lab's list back at its end.
        size["clients"][0][2].append("--no-restore")
    return [(key, module, [*args, "--json"]) for name in ORDER if name in names and not (quick and name in FULL_ONLY)
            for key, module, args in size[name]]


def run_step(root: Path, key: str, module: str, args: list[str]) -> tuple[dict[str, Any], float]:
    """Run one benchmark (its progress on stderr as it goes); its JSON result and wall seconds."""
    _say(f"bench: {key}: python -m {module} {shlex.join(args)}")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=root, stdout=subprocess.PIPE, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: {key} failed (exit {proc.returncode}); its messages are above")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1]), seconds
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"bench: {key} printed no JSON result:\n{proc.stdout[-2000:]}") from None


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release()}


def revision(root: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def ensure_lab(root: Path) -> bool:
    """Start the lab when a benchmark needs one and none is up (or bring a scaled one back to one broker: the
    benchmarks after ``brokers`` measure the lab of inventories/lab); whether this run started it."""
    lab_json = root / ".lab" / "lab.json"
    if lab_json.exists() and len(json.loads(lab_json.read_text())["brokers"]) > 1:
        _say("bench: the lab has more than one broker; scripts/lab up (one broker, not timed) ...")
        subprocess.run(["scripts/lab", "up"], cwd=root, stdout=subprocess.DEVNULL, check=True)
        return False
    if lab_json.exists():
        return False
    _say("bench: no lab is up; scripts/lab up (not timed) ...")
    subprocess.run(["scripts/lab", "up"], cwd=root, stdout=subprocess.DEVNULL, check=True)
    return True


def run(root: Path, out: Path, names: list[str], quick: bool, pki_community: int) -> dict[str, Any]:
    results: dict[str, Any] = {
        "meta": {"started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                 "command": shlex.join(["scripts/bench", *sys.argv[1:]]), "quick": quick,
                 "revision": revision(root), "machine": machine(), "seconds": {}},
    }
    out.mkdir(parents=True, exist_ok=True)
    for key, module, args in steps(names, quick, pki_community):
        if (key in NEEDS_LAB or (key == "lab" and quick)) and ensure_lab(root):
            results["meta"]["lab_started_by_bench"] = True
        results[key], seconds = run_step(root, key, module, args)
        results["meta"]["seconds"][key] = round(seconds, 1)
        # Written after every benchmark: a run stopped half-way keeps what it measured.
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="*", choices=[[], *ORDER], metavar="NAME",
                        help=f"any of {', '.join(ORDER)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="each at a small size (what scripts/test runs)")
    parser.add_argument("--out", type=Path, help="the report folder (default: bench-report/ in the checkout)")
    parser.add_argument("--pki-community", type=int, default=300, metavar="N",
                        help="certificates for the community.crypto comparison of the full run (default 300: its "
                             "per-item loops take about 1.2 s a certificate; 1000 takes 20 minutes)")
    parser.add_argument("--render", type=Path, metavar="DIR",
                        help="write DIR's report again from DIR/results.json; run nothing")
    args = parser.parse_args(argv)
    root = project.find()
    if args.render:
        results = json.loads((args.render / "results.json").read_text())
        out = args.render
    else:
        out = (args.out or root / "bench-report").resolve()
        start = time.perf_counter()
        results = run(root, out, args.benchmarks or list(ORDER), args.quick, args.pki_community)
        results["meta"]["total_seconds"] = round(time.perf_counter() - start, 1)
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    written = bench_report.write(results, out)
    print(f"bench: report in {out}: {', '.join(p.name for p in written)}")
    print(bench_report.goals_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
