"""TLS handshakes per second against a listener, from several processes (issue 13: ECDSA against RSA certificates).

Each process opens a TCP connection, completes a full TLS handshake (no session resumption; the server verified
against the CA and the name, as a device does), closes, and starts again, for a fixed time after a common start.
``run()`` returns the handshakes per second of the measured window, the failures, and the CPU the listener's
process (``watch_pid``) and the generator used, so a reader can tell which side limited the rate.
``rampart.bench_broker`` runs it inside the broker's network namespace.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import ssl
import sys
import time
from dataclasses import dataclass

from rampart.mqttload import broker_arguments, collect, cpu_ticks


@dataclass(frozen=True)
class Handshakes:
    host: str
    port: int
    ca_file: str
    server_name: str
    seconds: float = 5.0
    warmup: float = 0.5
    processes: int = 2
    watch_pid: int | None = None
    cpus: tuple[int, ...] | None = None


def _worker(load: Handshakes, start_at, ready, out) -> None:
    ctx = ssl.create_default_context(cafile=load.ca_file)
    ready.release()
    while start_at.value == 0:
        time.sleep(0.005)
    begin = start_at.value + int(load.warmup * 1e9)
    end = begin + int(load.seconds * 1e9)
    done = failed = 0
    cpu0 = None
    errors: dict[str, int] = {}
    while (now := time.monotonic_ns()) < end:
        if cpu0 is None and now >= begin:
            cpu0 = os.times()
        try:
            with socket.create_connection((load.host, load.port), timeout=10) as raw, \
                    ctx.wrap_socket(raw, server_hostname=load.server_name):
                pass
            done += now >= begin
        except OSError as exc:
            failed += 1
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
    cpu1 = os.times()
    cpu0 = cpu0 or cpu1
    out.put({"done": done, "failed": failed, "errors": errors,
             "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)})


def run(load: Handshakes) -> dict:
    if load.cpus:
        os.sched_setaffinity(0, load.cpus)
    ctx = multiprocessing.get_context("fork")
    start_at, ready, out = ctx.Value("q", 0), ctx.Semaphore(0), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(load, start_at, ready, out)) for _ in range(load.processes)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire(timeout=60)
    start = time.monotonic_ns() + 100_000_000
    start_at.value = start
    time.sleep(max(0.0, (start - time.monotonic_ns()) / 1e9) + load.warmup)
    broker0 = cpu_ticks(load.watch_pid)
    time.sleep(load.seconds)
    broker1 = cpu_ticks(load.watch_pid)
    reports = collect(procs, out, 60, "tlsload")
    errors: dict[str, int] = {}
    for r in reports:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    generator_cpus = len(load.cpus) if load.cpus else (os.cpu_count() or 1)
    return {
        "handshakes_per_second": round(sum(r["done"] for r in reports) / load.seconds, 1),
        "failed": sum(r["failed"] for r in reports), "errors": errors,
        "broker_cpu_of_one_core": (None if broker0 is None
                                   else round((broker1 - broker0) / os.sysconf("SC_CLK_TCK") / load.seconds, 3)),
        "generator_cpu_of_its_cpus": round(sum(r["cpu_s"] for r in reports) / (load.seconds * generator_cpus), 3),
        "processes": load.processes, "seconds": load.seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rampart.tlsload", description=__doc__.split("\n\n")[0])
    broker_arguments(parser, tls_required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--watch-pid", type=int)
    parser.add_argument("--cpus", help="comma-separated CPU numbers the generator runs on")
    args = parser.parse_args(argv)
    load = Handshakes(args.host, args.port, args.ca_file, args.server_name, seconds=args.seconds,
                      processes=args.processes, watch_pid=args.watch_pid,
                      cpus=tuple(int(c) for c in args.cpus.split(",")) if args.cpus else None)
    print(json.dumps(run(load)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
