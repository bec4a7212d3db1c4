"""Reconnect storm: N MQTT sessions over TLS, logged in with passwords from several source addresses, then the
broker restarts and every session reconnects as a device does (issue 13).

Each session connects, logs in (CONNACK 0) and stays connected (PINGREQ every half keep-alive). Once every session
is in, ``restart`` runs (a command that restarts the broker). Each session that loses its connection then retries
with jittered exponential backoff: a first wait of ``base_delay`` times a random 0.5-1, doubled on every failed
attempt up to ``max_delay``. A TCP connect that gets no answer within ``connect_timeout`` counts as ``timeout`` (a
firewall drops SYNs silently); ``refused``, ``reset``, ``tls`` and ``connack-N`` are the other outcomes.

``run()`` returns how long the first connects and the reconnection after the restart took (until every session was
back, and the median and 90th percentile session), and every failed attempt by kind. A session that never gets in
(its source banned, say) or never comes back within ``give_up`` is counted, not waited for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass

from rampart.mqttload import broker_arguments, collect, connect_packet, percentile


@dataclass(frozen=True)
class Storm:
    host: str
    port: int
    ca_file: str
    server_name: str
    clients: tuple[tuple[str, str], ...]  # (name, password)
    sources: tuple[str, ...] = ("",)  # local addresses the sessions connect from, in turn
    restart: tuple[str, ...] = ()
    connect_timeout: float = 5.0
    base_delay: float = 1.0
    max_delay: float = 30.0
    keepalive: int = 60
    give_up: float = 120.0  # for the first connects, and again for the reconnects
    processes: int = 2


def _jitter() -> float:
    return random.uniform(0.5, 1.0)  # noqa: S311 (backoff jitter, not a secret)


class Device:
    def __init__(self, storm: Storm, name: str, password: str, source: str, tls: ssl.SSLContext):
        self.storm, self.name, self.password, self.source, self.tls = storm, name, password, source, tls
        self.connected_at: list[int] = []
        self.failures: dict[str, int] = {}
        self.up = asyncio.Event()
        self.lost = asyncio.Event()

    def _fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    async def attempt(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                self.storm.host, self.storm.port, ssl=self.tls, server_hostname=self.storm.server_name,
                local_addr=(self.source, 0) if self.source else None), self.storm.connect_timeout)
        except TimeoutError:
            self._fail("timeout")
            return None
        except ConnectionRefusedError:
            self._fail("refused")
            return None
        except ssl.SSLError:
            self._fail("tls")
            return None
        except OSError:
            self._fail("reset")
            return None
        try:
            writer.write(connect_packet(self.name, self.name, self.password, self.storm.keepalive))
            connack = await asyncio.wait_for(reader.readexactly(4), 30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            writer.close()
            self._fail("reset")
            return None
        if connack[0] != 0x20 or connack[3] != 0:
            writer.close()
            self._fail(f"connack-{connack[3]}")
            return None
        return reader, writer

    async def live(self, stop: asyncio.Event) -> None:
        failed = 0
        while not stop.is_set():
            session = await self.attempt()
            if session is None:
                failed += 1
                wait = min(self.storm.max_delay, self.storm.base_delay * 2 ** (failed - 1))
                await asyncio.sleep(wait * _jitter())
                continue
            failed = 0
            self.connected_at.append(time.monotonic_ns())
            self.up.set()
            await self._hold(*session, stop)
            if stop.is_set():
                return
            self.up.clear()
            self.lost.set()
            await asyncio.sleep(self.storm.base_delay * _jitter())

    async def _hold(self, reader, writer, stop: asyncio.Event) -> None:
        async def pings():
            while True:
                await asyncio.sleep(self.storm.keepalive / 2)
                writer.write(b"\xc0\x00")

        pinger = asyncio.create_task(pings())
        reading = asyncio.create_task(reader.read(-1))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in (pinger, reading, stopping):
            task.cancel()
        writer.close()


async def _worker(storm: Storm, clients: list[tuple[str, str, str]], connected, restarted_at, out) -> None:
    tls = ssl.create_default_context(cafile=storm.ca_file)
    devices = [Device(storm, name, password, source, tls) for name, password, source in clients]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.live(stop)) for d in devices]
    # Every session in, or as many as got in (a source the broker's perimeter bans stays out).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(d.up.wait() for d in devices)), storm.give_up)
    connected.release()
    while restarted_at.value == 0:
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + storm.give_up
    were_in = [d for d in devices if d.connected_at]
    while time.monotonic() < deadline:
        if all(d.lost.is_set() and d.up.is_set() for d in were_in):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    back = [next((t for t in d.connected_at if t > restarted_at.value), None) for d in were_in]
    failures: dict[str, int] = {}
    for d in devices:
        for k, v in d.failures.items():
            failures[k] = failures.get(k, 0) + v
    out.put({"never_in": len(devices) - len(were_in), "back": back, "failures": failures})


def _process(storm: Storm, clients, connected, restarted_at, out) -> None:
    try:
        asyncio.run(_worker(storm, clients, connected, restarted_at, out))
    except Exception as exc:  # reported to the parent
        connected.release()
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def run(storm: Storm) -> dict:
    ctx = multiprocessing.get_context("fork")
    connected, restarted_at, out = ctx.Semaphore(0), ctx.Value("q", 0), ctx.Queue()
    clients = [(name, password, storm.sources[i % len(storm.sources)])
               for i, (name, password) in enumerate(storm.clients)]
    count = max(1, min(storm.processes, len(clients)))
    start = time.monotonic_ns()
    procs = [ctx.Process(target=_process, args=(storm, clients[i::count], connected, restarted_at, out))
             for i in range(count)]
    for p in procs:
        p.start()
    for _ in procs:
        if not connected.acquire(timeout=storm.give_up + 60):
            raise RuntimeError(f"stormload: a process did not report within {storm.give_up + 60:g} s")
    all_in = time.monotonic_ns()
    restart_ns = time.monotonic_ns()
    if storm.restart:
        subprocess.run(list(storm.restart), check=True, capture_output=True, timeout=120)
    restarted_at.value = restart_ns
    reports = collect(procs, out, storm.give_up + 120, "stormload")
    back = [b for r in reports for b in r["back"]]
    missing = sum(b is None for b in back)
    delays = [(b - restart_ns) / 1e9 for b in back if b is not None]
    failures: dict[str, int] = {}
    for r in reports:
        for k, v in r["failures"].items():
            failures[k] = failures.get(k, 0) + v
    return {"sessions": len(clients), "sources": len(storm.sources),
            "never_in": sum(r["never_in"] for r in reports),
            "first_connect_seconds": round((all_in - start) / 1e9, 2),
            "all_back_seconds": None if missing else round(max(delays), 2),
            "back_p50_seconds": round(percentile(delays, 0.5), 2) if delays else None,
            "back_p90_seconds": round(percentile(delays, 0.9), 2) if delays else None,
            "never_back": missing, "failed_attempts": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rampart.stormload", description=__doc__.split("\n\n")[0])
    broker_arguments(parser, tls_required=True)
    parser.add_argument("--clients", required=True, help="a JSON file: [[name, password], ...]")
    parser.add_argument("--sources", default="", help="comma-separated local addresses to connect from")
    parser.add_argument("--restart", default="", help="the command that restarts the broker (JSON list)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--give-up", type=float, default=120.0)
    args = parser.parse_args(argv)
    with open(args.clients) as f:
        clients = tuple(tuple(c) for c in json.load(f))
    storm = Storm(args.host, args.port, args.ca_file, args.server_name, clients,
                  sources=tuple(args.sources.split(",")) if args.sources else ("",),
                  restart=tuple(json.loads(args.restart)) if args.restart else (), processes=args.processes,
                  give_up=args.give_up)
    try:
        print(json.dumps(run(storm)))
    except RuntimeError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
