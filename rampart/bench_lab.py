"""Benchmark: what a fresh lab, its idempotent re-run and its audit cost, side by side (issues 10 and 13).

Each round, on this machine: ``scripts/lab down``, then, each timed from outside as an operator runs it,

a. **fresh**: ``scripts/lab up`` (every container created, site.yml converged from scratch);
b. **re-run**: ``scripts/lab up --assert-unchanged`` (nothing created, changed=0, or the benchmark stops);
c. **audit**: ``scripts/audit`` (it must find nothing: exit 0, or the benchmark stops).

Prints each round and the two ratios the issues set goals for, each taken within a round (the machine's speed
drifts between rounds; a ratio of two runs made minutes apart keeps its meaning) and summarised by the median:
re-run / fresh (issue 13: at most 0.40) and audit / fresh (issue 10: below 1/3). The lab is left up and converged.
Every run's output is a log in the work directory. It checks the runs; no test asserts the figures.

``--quick`` (what ``scripts/bench --quick`` runs in ``scripts/test``, right after the lab step's own fresh lab):
one re-run and one audit of the lab that is up, timed; no fresh lab, so no ratio (a fresh round costs about 2.5
minutes).

``--brokers 1,5,10`` (issue 11): for each count, ``scripts/lab down``, a fresh ``scripts/lab up --brokers N`` and
its re-run (``--assert-unchanged``), timed; prints each and the ratio of the largest count's fresh converge to the
smallest's (goal: at most 3). The lab is left up with the largest count; ``scripts/lab up`` brings it back to one.

``--topology multi-site`` (issue 11): ``scripts/lab down``, a fresh ``scripts/lab up --topology NAME``, its re-run
and its audit (``scripts/audit -i .lab/topology-NAME``), timed. The lab is left up; ``scripts/lab down`` before
bringing up another topology.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rampart import project

GOALS = {"rerun_ratio": 0.40, "audit_ratio": 1 / 3}
# Issue 11: converging the largest count of brokers in one site, against the smallest (1, 5 and 10: 10 / 1).
BROKERS_GOAL = 3.0


def timed(root: Path, cmd: list[str], log: Path, what: str) -> float:
    """Run ``cmd`` (a scripts/ command) in ``root``; its wall seconds. Stops the benchmark when it fails."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise SystemExit(f"bench-lab: {what} failed (exit {proc.returncode}); see {log}\n{tail}")
    return elapsed


def fresh_and_rerun(root: Path, work: Path, up: list[str], tag: str, what: str) -> tuple[float, float]:
    """``scripts/lab down``, then ``up`` on a fresh lab and again with --assert-unchanged; both times (logs
    ``<tag>-fresh.log`` and ``<tag>-rerun.log`` in ``work``)."""
    _say(f"bench-lab: {what}: scripts/lab down, then a fresh {' '.join(up)} ...")
    subprocess.run(["scripts/lab", "down"], cwd=root, stdout=subprocess.DEVNULL, check=True)
    fresh = timed(root, up, work / f"{tag}-fresh.log", f"{what}: the fresh {' '.join(up)}")
    _say(f"bench-lab: {what}: re-run ({' '.join(up)} --assert-unchanged) ...")
    rerun = timed(root, [*up, "--assert-unchanged"], work / f"{tag}-rerun.log",
                  f"{what}: the re-run (it must create nothing and change nothing)")
    return fresh, rerun


def one_round(root: Path, work: Path, n: int) -> dict[str, float]:
    fresh, rerun = fresh_and_rerun(root, work, ["scripts/lab", "up"], f"round{n}", f"round {n}")
    _say(f"bench-lab: round {n}: scripts/audit ...")
    audit = timed(root, ["scripts/audit"], work / f"round{n}-audit.log", "the audit (it must find nothing)")
    return {"fresh_seconds": round(fresh, 2), "rerun_seconds": round(rerun, 2), "audit_seconds": round(audit, 2),
            "rerun_ratio": round(rerun / fresh, 3), "audit_ratio": round(audit / fresh, 3)}


def quick_round(root: Path, work: Path) -> dict[str, Any]:
    """The re-run and the audit of the lab that is up (no fresh lab: no ratio)."""
    if not (root / ".lab" / "lab.json").exists():
        raise SystemExit("bench-lab: --quick needs the lab up (.lab/lab.json is missing); run scripts/lab up first")
    _say("bench-lab: quick: re-run (scripts/lab up --assert-unchanged) ...")
    rerun = timed(root, ["scripts/lab", "up", "--assert-unchanged"], work / "quick-rerun.log",
                  "the re-run (it must create nothing and change nothing)")
    _say("bench-lab: quick: scripts/audit ...")
    audit = timed(root, ["scripts/audit"], work / "quick-audit.log", "the audit (it must find nothing)")
    return {"quick": True, "rounds": [{"rerun_seconds": round(rerun, 2), "audit_seconds": round(audit, 2)}]}


def brokers_round(root: Path, work: Path, count: int) -> dict[str, float]:
    """A fresh lab of ``count`` brokers in one site, and its re-run."""
    fresh, rerun = fresh_and_rerun(root, work, ["scripts/lab", "up", "--brokers", str(count)], f"brokers{count}",
                                   f"{count} broker(s)")
    return {"brokers": count, "fresh_seconds": round(fresh, 2), "rerun_seconds": round(rerun, 2),
            "rerun_ratio": round(rerun / fresh, 3)}


def topology_round(root: Path, work: Path, name: str) -> dict[str, Any]:
    """A fresh lab of a topology, its re-run and its audit."""
    fresh, rerun = fresh_and_rerun(root, work, ["scripts/lab", "up", "--topology", name], f"topology-{name}",
                                   f"topology {name}")
    _say(f"bench-lab: topology {name}: scripts/audit -i .lab/topology-{name} ...")
    audit = timed(root, ["scripts/audit", "-i", f".lab/topology-{name}"], work / f"topology-{name}-audit.log",
                  "the audit (it must find nothing)")
    return {"topology": name, "fresh_seconds": round(fresh, 2), "rerun_seconds": round(rerun, 2),
            "audit_seconds": round(audit, 2), "rerun_ratio": round(rerun / fresh, 3)}


def brokers_summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    """The counts, and the fresh converge of the largest count against the smallest's."""
    low, high = min(rows, key=lambda r: r["brokers"]), max(rows, key=lambda r: r["brokers"])
    return {"brokers": rows, "fresh_ratio": round(high["fresh_seconds"] / low["fresh_seconds"], 3),
            "fresh_ratio_of": [low["brokers"], high["brokers"]], "goal": BROKERS_GOAL}


def summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """The rounds and the median of each figure and of each round's ratios."""
    keys = ["fresh_seconds", "rerun_seconds", "audit_seconds", "rerun_ratio", "audit_ratio"]
    return {"rounds": rounds, "median": {k: round(statistics.median(r[k] for r in rounds), 3) for k in keys},
            "goals": {k: round(v, 3) for k, v in GOALS.items()}}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report(result: dict[str, Any]) -> str:
    if "topology" in result:
        return (f"topology {result['topology']}: fresh {result['fresh_seconds']:.1f} s   re-run "
                f"{result['rerun_seconds']:.1f} s ({result['rerun_ratio']:.2f})   "
                f"audit {result['audit_seconds']:.1f} s")
    if "fresh_ratio_of" in result:
        lines = [f"{r['brokers']:3d} broker(s): fresh {r['fresh_seconds']:6.1f} s   re-run {r['rerun_seconds']:6.1f} s "
                 f"({r['rerun_ratio']:.2f})" for r in result["brokers"]]
        low, high = result["fresh_ratio_of"]
        lines.append(f"fresh converge of {high} brokers / of {low}: {result['fresh_ratio']:.2f} "
                     f"(issue 11: at most {result['goal']:.0f})")
        return "\n".join(lines)
    if result.get("quick"):
        r = result["rounds"][0]
        return (f"quick: re-run {r['rerun_seconds']:.1f} s, audit {r['audit_seconds']:.1f} s "
                "(no fresh lab at the quick size, so no ratio)")
    lines = []
    for n, r in enumerate(result["rounds"], 1):
        lines.append(f"round {n}: fresh {r['fresh_seconds']:6.1f} s   re-run {r['rerun_seconds']:6.1f} s "
                     f"({r['rerun_ratio']:.2f})   audit {r['audit_seconds']:6.1f} s ({r['audit_ratio']:.2f})")
    med, goals = result["median"], result["goals"]
    lines.append(f"median re-run / fresh: {med['rerun_ratio']:.2f} (issue 13: at most {goals['rerun_ratio']:.2f})")
    lines.append(f"median audit / fresh: {med['audit_ratio']:.2f} (issue 10: below {goals['audit_ratio']:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3; about 2.5 minutes each)")
    parser.add_argument("--workdir", type=Path, help="work directory, kept (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--quick", action="store_true",
                        help="one re-run and one audit of the lab that is up, no fresh lab and no ratio")
    parser.add_argument("--brokers", metavar="N,N,...",
                        help="fresh labs of these broker counts in one site and their re-runs (issue 11), e.g. 1,5,10")
    parser.add_argument("--topology", metavar="NAME",
                        help="a fresh lab of this topology (topologies/NAME.yml), its re-run and its audit (issue 11)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    root = project.find()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rampart-bench-lab-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.topology:
            result = topology_round(root, work, args.topology)
        elif args.brokers:
            counts = sorted({int(n) for n in args.brokers.split(",")})
            result = brokers_summary([brokers_round(root, work, n) for n in counts])
        elif args.quick:
            result = quick_round(root, work)
        else:
            result = summary([one_round(root, work, n) for n in range(1, args.rounds + 1)])
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
