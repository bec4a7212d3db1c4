"""Benchmark: the hardened broker under load against the same Mosquitto with Debian's stock config (issue 13).

On the lab (``scripts/lab up`` first), side by side in one run, on the same host and through the same path:

- **hardened**: the lab's broker1 as Rampart deployed it (TLS 1.2+ on the password listener, a password and an
  ACL check per client, the limits, persistence, logging to the journal, the systemd sandbox), with N publisher and
  N subscriber clients added to the lab's client list for the run (``playbooks/broker.yml``, then converged back);
- **plain**: a second ``/usr/sbin/mosquitto`` from the same package in the same container, run as the mosquitto
  user with the settings of Debian's stock ``mosquitto.conf`` (persistence, a log file) and a plaintext listener
  on 127.0.0.1:1883 with anonymous access, as ``../shared/guides/004_a33140c0d9f1f8e8.txt`` starts from.

The load (``rampart.mqttload``) runs on the control node's CPU but inside broker1's network namespace
(``nsenter --net``), so it reaches both brokers over the loopback interface: the firewall's per-source limits
(measured by the reconnect-storm benchmark, not here) are out of the comparison, and the broker's config is what is
compared. For each QoS (0 and 1) the two brokers are measured one after the other with the same pairs, window and
payload, and the report gives messages per second, p50 and p99 latency, the ratio hardened / plain (goal at least
0.8), and the CPU each side used: the broker's share of one core (Mosquitto is single-threaded, so near 1.0 means
the broker was the bottleneck) and the generator's share of the machine.

Every run is checked: no message lost, none out of order, every message in flight delivered after the publishers
stop. ``--quick`` (10 pairs, 2 s) is what ``scripts/test`` runs so that the benchmark cannot rot; it checks the
runs, never the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rampart import bench_clients, harness, project

PLAIN_DIR = "/var/lib/rampart-bench-plain"  # in the broker container, removed after the run
PLAIN_PORT = 1883
# Debian's stock /etc/mosquitto/mosquitto.conf (persistence, a log file; no listener of its own), with the
# plaintext anonymous listener a stock setup adds, on loopback only.
PLAIN_CONF = f"""\
pid_file {PLAIN_DIR}/mosquitto.pid
persistence true
persistence_location {PLAIN_DIR}/
log_dest file {PLAIN_DIR}/mosquitto.log
listener {PLAIN_PORT} 127.0.0.1
allow_anonymous true
"""
GOAL = 0.8


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_clients_for(pairs: int, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The inventory clients of ``pairs`` publisher/subscriber pairs, and the pairs as the generator takes them.
    Each publisher may publish only to bench/<its name>, each subscriber may read only its publisher's topic."""
    clients, load_pairs = [], []
    for i in range(pairs):
        pub, sub = f"bench-pub-{i:04d}", f"bench-sub-{i:04d}"
        pub_pw, sub_pw = (f"{run_id}-{secrets.token_urlsafe(12)}" for _ in range(2))
        topic = f"bench/{pub}"
        clients += [{"name": pub, "auth": "password", "password": pub_pw, "publish": ["bench/%u"]},
                    {"name": sub, "auth": "password", "password": sub_pw, "subscribe": [topic]}]
        load_pairs.append({"publisher": pub, "subscriber": sub, "topic": topic,
                           "publisher_password": pub_pw, "subscriber_password": sub_pw})
    return clients, load_pairs


def exec_in(container: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return harness.docker("exec", container, *cmd, check=check)


def start_plain(container: str) -> None:
    script = (f"rm -rf {PLAIN_DIR} && mkdir -p {PLAIN_DIR} && printf '%s' \"$1\" > {PLAIN_DIR}/plain.conf "
              f"&& chown -R mosquitto: {PLAIN_DIR} "
              f"&& runuser -u mosquitto -- /usr/sbin/mosquitto -d -c {PLAIN_DIR}/plain.conf")
    exec_in(container, "sh", "-c", script, "sh", PLAIN_CONF)
    for _ in range(100):
        if exec_in(container, "test", "-s", f"{PLAIN_DIR}/mosquitto.pid", check=False).returncode == 0:
            return
        time.sleep(0.1)
    log = exec_in(container, "cat", f"{PLAIN_DIR}/mosquitto.log", check=False).stdout
    raise SystemExit(f"bench-broker: the plain broker did not start in {container}:\n{log}")


def stop_plain(container: str) -> None:
    exec_in(container, "sh", "-c", f"test -s {PLAIN_DIR}/mosquitto.pid && kill $(cat {PLAIN_DIR}/mosquitto.pid); "
                                   f"sleep 0.5; rm -rf {PLAIN_DIR}", check=False)


def host_pids(container: str) -> dict[str, int]:
    """The host PIDs of the hardened and the plain mosquitto, by the config each runs."""
    rows = harness.docker("top", container, "-eo", "pid,args").stdout.splitlines()[1:]
    pids = {}
    for row in rows:
        pid, _, args = row.strip().partition(" ")
        if "/usr/sbin/mosquitto" in args:
            pids["plain" if f"{PLAIN_DIR}/plain.conf" in args else "hardened"] = int(pid)
    return pids


def netns_pid(container: str) -> int:
    return int(harness.docker("inspect", "--format", "{{.State.Pid}}", container).stdout.strip())


def placement() -> tuple[set[int], list[int] | None]:
    """The broker's CPU and the generator's: with two CPUs or more, the broker gets one of its own (Mosquitto is
    single-threaded) and the generator the others, so neither takes CPU from the other."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, cpus[1:]) if len(cpus) > 1 else (set(cpus), None)


def load(root: Path, container: str, target: dict[str, Any], pairs_file: Path, qos: int, seconds: float,
         processes: int, window: int, generator_cpus: list[int] | None) -> dict[str, Any]:
    cmd = ["nsenter", f"--net=/proc/{netns_pid(container)}/ns/net", "--",
           str(root / ".venv" / "bin" / "python"), "-m", "rampart.mqttload", "--host", target["host"],
           "--port", str(target["port"]), "--pairs", str(pairs_file), "--qos", str(qos), "--seconds", str(seconds),
           "--processes", str(processes), "--window", str(window), "--watch-pid", str(target["pid"])]
    if generator_cpus:
        cmd += ["--cpus", ",".join(map(str, generator_cpus))]
    if target.get("ca_file"):
        cmd += ["--ca-file", target["ca_file"], "--server-name", target["server_name"]]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=seconds + 300, check=False)
    try:
        out = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"bench-broker: the load generator failed (rc={res.returncode}):\n"
                         f"{res.stderr[-3000:]}") from None
    if "error" in out:
        raise SystemExit(f"bench-broker: {target['name']} at QoS {qos}: {out['error']}")
    problems = []
    if out["received"] != out["sent"] or not out["drained"]:
        problems.append(f"{out['sent'] - out['received']} of {out['sent']} messages never arrived")
    if out["out_of_order"]:
        problems.append(f"{out['out_of_order']} messages arrived out of order")
    if out["messages_per_second"] <= 0:
        problems.append("no message arrived in the measured window")
    if problems:
        raise SystemExit(f"bench-broker: {target['name']} at QoS {qos}: " + "; ".join(problems))
    return out


def pair_files(work: Path, load_pairs: list[dict[str, str]]) -> dict[str, Path]:
    """The generator's pairs for each broker: with the passwords (0600) for the hardened one, without for the plain."""
    files = {"hardened": work / "pairs.json", "plain": work / "pairs-plain.json"}
    files["hardened"].write_text(json.dumps(load_pairs))
    files["hardened"].chmod(0o600)
    files["plain"].write_text(json.dumps([{k: v for k, v in p.items() if "password" not in k} for p in load_pairs]))
    return files


def targets(root: Path, description: dict[str, Any], pids: dict[str, int]) -> dict[str, dict[str, Any]]:
    broker = description["brokers"][0]
    return {
        "hardened": {"name": "hardened", "host": broker["address"], "port": broker["port"],
                     "ca_file": str(root / ".lab" / description["ca_file"]),
                     "server_name": broker["tls_server_name"], "pid": pids["hardened"]},
        "plain": {"name": "plain", "host": "127.0.0.1", "port": PLAIN_PORT, "pid": pids["plain"]},
    }


def pin(pids: dict[str, int], cpus: set[int]) -> dict[int, set[int]]:
    """Put the brokers on ``cpus``; returns each one's CPUs before, for ``unpin``."""
    before = {}
    for pid in pids.values():
        before[pid] = os.sched_getaffinity(pid)
        os.sched_setaffinity(pid, cpus)
    return before


def unpin(before: dict[int, set[int]]) -> None:
    for pid, cpus in before.items():
        with contextlib.suppress(OSError):  # the plain broker is gone by now
            os.sched_setaffinity(pid, cpus)


@dataclass(frozen=True)
class Settings:
    pairs: int = 100
    seconds: float = 10.0
    processes: int = 2
    window: int = 20
    rounds: int = 3


def measure(root: Path, settings: Settings, work: Path) -> dict[str, Any]:
    description = json.loads((root / ".lab" / "lab.json").read_text())
    broker = description["brokers"][0]
    container = broker["container"]
    settings = replace(settings, window=min(settings.window, broker["max_inflight_messages"]))
    clients, load_pairs = bench_clients_for(settings.pairs, secrets.token_hex(3))
    inv = bench_clients.lab_inventory_with(root, work, f"bench-broker-{settings.pairs}", clients)
    files = pair_files(work, load_pairs)
    broker_cpus, generator_cpus = placement()
    pinned: dict[int, set[int]] = {}
    try:
        _say(f"bench-broker: adding {2 * settings.pairs} clients to {broker['name']} (playbooks/broker.yml) ...")
        bench_clients.converge(root, inv, work / "converge.log")
        _say("bench-broker: starting the plain broker (Debian's stock settings, 127.0.0.1:1883) ...")
        start_plain(container)
        pids = host_pids(container)
        pinned = pin(pids, broker_cpus)
        to = targets(root, description, pids)
        runs = rounds(settings, lambda name, qos, window: load(root, container, to[name], files[name], qos,
                                                                settings.seconds, settings.processes, window,
                                                                generator_cpus))
    finally:
        unpin(pinned)
        stop_plain(container)
        _say("bench-broker: converging the lab's broker back to the lab's clients ...")
        bench_clients.converge(root, root / "inventories" / "lab", work / "restore.log")
    return {**asdict(settings), "runs": with_efficiency(runs),
            "ratios": {qos: round(runs["hardened"][qos]["messages_per_second"]
                                  / runs["plain"][qos]["messages_per_second"], 2) for qos in (0, 1)},
            "goal": GOAL, "broker_cpus": sorted(broker_cpus), "generator_cpus": generator_cpus}


def rounds(settings: Settings, run) -> dict[str, dict[int, dict]]:
    """``settings.rounds`` throughput runs of each broker and QoS, the brokers taking turns (so a slow spell of the
    machine does not land on one side only); each keeps its median run, the spread of every round, and one run at
    one message in flight per pair for the latency under light load."""
    done: dict[tuple[str, int], list[dict]] = {}
    for number in range(1, settings.rounds + 1):
        for qos in (0, 1):
            for name in ("hardened", "plain"):
                _say(f"bench-broker: round {number}/{settings.rounds}: {name}, QoS {qos}, {settings.pairs} "
                     f"publishers and {settings.pairs} subscribers, {settings.seconds:g} s at a window of "
                     f"{settings.window} ...")
                done.setdefault((name, qos), []).append(run(name, qos, settings.window))
    runs: dict[str, dict[int, dict]] = {"hardened": {}, "plain": {}}
    for (name, qos), results in done.items():
        _say(f"bench-broker: {name}, QoS {qos}, {settings.seconds:g} s at one message in flight per pair ...")
        light = run(name, qos, 1)
        ordered = sorted(results, key=lambda r: r["messages_per_second"])
        runs[name][qos] = {**ordered[len(ordered) // 2],
                           "rounds_messages_per_second": [r["messages_per_second"] for r in results],
                           **{f"light_{k}": light[k] for k in ("messages_per_second", "latency_p50_ms",
                                                                "latency_p99_ms")}}
    return runs


def with_efficiency(runs: dict[str, dict[int, dict]]) -> dict[str, dict[int, dict]]:
    """Each run with its messages per CPU-second of the broker: what the broker's config costs per message,
    whichever side (broker or generator) limited the run."""
    for side in runs.values():
        for r in side.values():
            busy = r["broker_cpu_of_one_core"]
            r["messages_per_broker_cpu_second"] = round(r["messages_per_second"] / busy) if busy else None
    return runs


def report(result: dict[str, Any]) -> str:
    first = result["runs"]["plain"][0]
    lines = [f"{result['pairs']} publishers and {result['pairs']} subscribers (one topic per pair), "
             f"{first['payload_bytes']}-byte payloads, {result['seconds']:g} s per run, the median of "
             f"{result['rounds']} rounds; the brokers on CPU "
             f"{','.join(map(str, result['broker_cpus']))}, the generator ({result['processes']} processes) on "
             f"CPU {','.join(map(str, result['generator_cpus'] or result['broker_cpus']))} of {first['cores']}",
             "",
             "| | hardened (TLS, passwords, ACL, limits) | plain (stock, 1883, anonymous) | hardened / plain |",
             "|---|---|---|---|"]
    for qos in (0, 1):
        h, p = result["runs"]["hardened"][qos], result["runs"]["plain"][qos]
        lines += [
            f"| QoS {qos}: messages/s, {h['window']} in flight per pair | {h['messages_per_second']:,.0f} | "
            f"{p['messages_per_second']:,.0f} | **{result['ratios'][qos]:.2f}** (goal >= {result['goal']}) |",
            f"| QoS {qos}: messages/s, every round | {_spread(h)} | {_spread(p)} | |",
            f"| QoS {qos}: broker CPU, share of its core | {h['broker_cpu_of_one_core']:.2f} | "
            f"{p['broker_cpu_of_one_core']:.2f} | |",
            f"| QoS {qos}: messages per broker CPU-second | {h['messages_per_broker_cpu_second']:,} | "
            f"{p['messages_per_broker_cpu_second']:,} | "
            f"{h['messages_per_broker_cpu_second'] / p['messages_per_broker_cpu_second']:.2f} |",
            f"| QoS {qos}: generator CPU, share of its CPUs | {h['generator_cpu_of_its_cpus']:.2f} | "
            f"{p['generator_cpu_of_its_cpus']:.2f} | |",
            f"| QoS {qos}: latency p50 / p99 (ms), one message in flight per pair | "
            f"{h['light_latency_p50_ms']:.2f} / {h['light_latency_p99_ms']:.2f} | "
            f"{p['light_latency_p50_ms']:.2f} / {p['light_latency_p99_ms']:.2f} | |",
            f"| QoS {qos}: latency p50 / p99 (ms), {h['window']} in flight per pair | "
            f"{h['latency_p50_ms']:.2f} / {h['latency_p99_ms']:.2f} | "
            f"{p['latency_p50_ms']:.2f} / {p['latency_p99_ms']:.2f} | |",
        ]
    return "\n".join(lines)


def _spread(run: dict[str, Any]) -> str:
    return ", ".join(f"{v:,.0f}" for v in run["rounds_messages_per_second"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-broker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100, help="publisher/subscriber pairs (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="throughput runs per broker and QoS, taking turns; the median counts (default 3)")
    parser.add_argument("--processes", type=int, default=2, help="generator processes (default 2)")
    parser.add_argument("--window", type=int, default=20,
                        help="messages in flight per pair in the throughput runs (default 20, at most the broker's "
                             "max_inflight_messages)")
    parser.add_argument("--quick", action="store_true",
                        help="10 pairs, 2 s per run, one round (what scripts/test runs)")
    parser.add_argument("--workdir", type=Path, help="work directory, kept (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    root = project.find()
    if not (root / ".lab" / "lab.json").exists():
        raise SystemExit("bench-broker: no lab is up (.lab/lab.json is missing); run scripts/lab up first")
    if shutil.which("nsenter") is None:
        raise SystemExit("bench-broker: nsenter (util-linux) is missing; install it")
    settings = Settings(pairs=args.pairs, seconds=args.seconds, processes=args.processes, window=args.window,
                        rounds=args.rounds)
    if args.quick:
        settings = replace(settings, pairs=10, seconds=2.0, rounds=1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rampart-bench-broker-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = measure(root, settings, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
