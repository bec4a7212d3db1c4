"""Benchmark: what the number of MQTT clients costs a broker converge (issue 13), on the lab.

For each N (default 10 and 10,000), against the lab's brokers (``scripts/lab up`` first): an inventory that is the
lab's with N more clients in its ``group_vars/all/clients.yml`` (every tenth a certificate client, the rest
password clients, each with its own publish and subscribe grants), then

a. **first run**: ``playbooks/broker.yml`` with the N clients new to the broker (N passwords hashed);
b. **re-run**: the same again, which must report changed=0.

Prints each time and the ratios the issue sets goals for: re-run(largest N) / re-run(smallest N) (goal at most 2)
and first(largest N) / first(smallest N) (goal at most 3). At the end the lab's brokers are converged back to the
lab's own clients. Every run's output is a log in the work directory. ``--quick`` is N=10 and 100, the size
``scripts/test`` runs so that the benchmark cannot rot; it checks the runs, not the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from rampart import lab, project, results
from rampart.bench_pki import parse_counts

CLIENTS_FILE = Path("group_vars") / "all" / "clients.yml"


def fleet(count: int) -> list[dict[str, Any]]:
    """``count`` made-up devices: every tenth authenticates with a certificate, the others with a password. The
    names carry ``count``, so no device of one size is on the broker from the size before."""
    out = []
    for i in range(count):
        client: dict[str, Any] = {"name": f"fleet{count}-{i:05d}", "publish": ["sensors/%u/#"],
                                  "subscribe": ["commands/%u/#"]}
        if i % 10 == 0:
            client["auth"] = "certificate"
        else:
            client.update(auth="password", password=f"bench-password-{i:05d}-{'x' * 12}")
        out.append(client)
    return out


def inventory(root: Path, work: Path, count: int) -> Path:
    """The lab's inventory with ``count`` more clients (``fleet``), at ``work/inventories/n<count>``."""
    return lab_inventory_with(root, work, f"n{count}", fleet(count))


def lab_inventory_with(root: Path, work: Path, name: str, clients: list[dict[str, Any]]) -> Path:
    """The lab's inventory with ``clients`` added to its client list, at ``work/inventories/<name>``. The lab's
    inventory names its state as ``inventory_dir/../../.lab``, so ``work/.lab`` links to the checkout's."""
    (work / ".lab").unlink(missing_ok=True)
    (work / ".lab").symlink_to(root / ".lab")
    target = work / "inventories" / name
    shutil.rmtree(target, ignore_errors=True)  # a kept work directory from an earlier run
    shutil.copytree(root / "inventories" / "lab", target)
    lab_clients = yaml.safe_load((target / CLIENTS_FILE).read_text())["mosquitto_clients"]
    (target / CLIENTS_FILE).write_text(yaml.safe_dump({"mosquitto_clients": lab_clients + clients}))
    return target


def converge(root: Path, inv: Path, log: Path, playbook: str = "broker.yml", *extra: str) -> tuple[float, int]:
    """playbooks/<playbook> (broker.yml) against ``inv``: (wall seconds, tasks changed). Raises on failure."""
    lab.use_project(root)
    cmd = [lab.venv_bin("ansible-playbook"), "-i", str(inv), str(root / "playbooks" / playbook), *extra]
    start = time.perf_counter()
    run = results.run(cmd, env=lab.ansible_env(), cwd=root)
    elapsed = time.perf_counter() - start
    log.write_text(run.output)
    if run.rc != 0 or run.failures:
        tail = "\n".join(run.output.splitlines()[-30:])
        raise SystemExit(f"bench: playbooks/{playbook} failed (rc={run.rc}); see {log}\n{tail}")
    return elapsed, run.changed


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def scale(counts: list[int], work: Path, root: Path, restore: bool = True) -> dict[str, Any]:
    runs = []
    try:
        for count in counts:
            inv = inventory(root, work, count)
            _say(f"bench-clients: N={count}: first run (every one of the {count} clients is new) ...")
            first, changed = converge(root, inv, work / f"n{count}-first.log")
            if changed == 0:
                raise SystemExit(f"bench-clients: the first run at N={count} changed nothing")
            _say(f"bench-clients: N={count}: re-run ...")
            again, changed = converge(root, inv, work / f"n{count}-rerun.log")
            if changed != 0:
                raise SystemExit(f"bench-clients: the re-run at N={count} reported changed={changed}, expected 0")
            runs.append({"count": count, "first_seconds": round(first, 2), "rerun_seconds": round(again, 2)})
    finally:
        if restore:
            _say("bench-clients: converging the lab's brokers back to the lab's clients ...")
            converge(root, root / "inventories" / "lab", work / "restore.log")
    small, large = runs[0], runs[-1]
    return {"runs": runs, "smallest": small["count"], "largest": large["count"],
            "rerun_ratio": round(large["rerun_seconds"] / small["rerun_seconds"], 2),
            "first_ratio": round(large["first_seconds"] / small["first_seconds"], 2)}


def work_arguments(parser: argparse.ArgumentParser) -> None:
    """--workdir and --json, as every lab benchmark takes them."""
    parser.add_argument("--workdir", type=Path, help="work directory, kept (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")


def lab_root(prog: str) -> Path:
    """The checkout, with its lab up (a benchmark that needs the lab stops here, saying how to start it)."""
    root = project.find()
    if not (root / ".lab" / "lab.json").exists():
        raise SystemExit(f"{prog}: no lab is up (.lab/lab.json is missing); run scripts/lab up first")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-clients", description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=parse_counts, default=[10, 10000], metavar="N1,N2[,...]",
                        help="client counts (default 10,10000)")
    parser.add_argument("--quick", action="store_true", help="N=10 and 100 (what scripts/test runs)")
    parser.add_argument("--no-restore", action="store_true",
                        help="leave the last N's clients on the lab instead of converging the lab's list back "
                             "(scripts/bench, when the broker benchmark follows: it converges the list back)")
    work_arguments(parser)
    args = parser.parse_args(argv)
    root = lab_root("bench-clients")
    counts = [10, 100] if args.quick else args.counts
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rampart-bench-clients-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = scale(counts, work, root, restore=not args.no_restore)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return 0
    for r in result["runs"]:
        print(f"N={r['count']:<6} first run {r['first_seconds']:8.2f} s   "
              f"re-run (changed=0) {r['rerun_seconds']:8.2f} s")
    print(f"re-run N={result['largest']} / re-run N={result['smallest']}: {result['rerun_ratio']:.2f} x (goal <= 2)")
    print(f"first run N={result['largest']} / first run N={result['smallest']}: {result['first_ratio']:.2f} x "
          "(goal <= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
