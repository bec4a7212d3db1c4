"""MQTT load from several processes: pairs of publisher and subscriber sessions in a closed loop (issue 13).

Each pair is a publisher and a subscriber on a topic of their own. The subscriber subscribes to the topic at the
run's QoS; the publisher publishes to it, keeping at most ``window`` messages sent and not yet received by its
subscriber, so the broker is kept busy without queues growing without bound. Every message carries the pair's
sequence number and its send time (CLOCK_MONOTONIC, which is the same clock in every process of the machine), so
the subscriber measures the latency of each message and checks that none is lost or out of order.

The packets are MQTT 3.1.1, written by hand and pre-serialised per pair: sending a message patches its sequence
number, time and (QoS 1) packet id into the pair's template and writes a whole window in one call, and receiving
parses packets with one pass over the buffer. That keeps the generator's cost per message well under the
broker's; the report says how much CPU each used, so a reader can tell which one was the bottleneck.

The run: every process connects its sessions (CONNECT, CONNACK, SUBSCRIBE, SUBACK), all start together, a warm-up,
the measured window (messages received in it, and their latencies), then the publishers stop and every message
still in flight must arrive within the drain time. ``run()`` returns the figures; ``python -m rampart.mqttload``
prints them as JSON (``rampart.bench_broker`` runs it inside the broker's network namespace).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import struct
import sys
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path

PAYLOAD_HEADER = struct.Struct(">IQ")  # sequence number, send time (ns, CLOCK_MONOTONIC)


@dataclass(frozen=True)
class Pair:
    publisher: str
    subscriber: str
    topic: str
    publisher_password: str | None = None
    subscriber_password: str | None = None


@dataclass(frozen=True)
class Load:
    host: str
    port: int
    pairs: tuple[Pair, ...]
    qos: int = 0
    seconds: float = 10.0
    warmup: float = 1.0
    drain: float = 5.0
    window: int = 10
    payload: int = 64
    processes: int = 2
    ca_file: str | None = None
    server_name: str | None = None
    watch_pid: int | None = None  # a process whose CPU time is reported (the broker), read from /proc
    cpus: tuple[int, ...] | None = None  # the CPUs the generator runs on (None: any)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">H", len(raw)) + raw


def connect_packet(client_id: str, username: str | None, password: str | None, keepalive: int = 60) -> bytes:
    flags = 0x02 | (0x80 if username else 0) | (0x40 if password else 0)
    body = _string("MQTT") + bytes([4, flags]) + struct.pack(">H", keepalive) + _string(client_id)
    body += (_string(username) if username else b"") + (_string(password) if password else b"")
    return b"\x10" + varint(len(body)) + body


def subscribe_packet(topic: str, qos: int, packet_id: int = 1) -> bytes:
    body = struct.pack(">H", packet_id) + _string(topic) + bytes([qos])
    return b"\x82" + varint(len(body)) + body


class Template:
    """A pair's PUBLISH packet, pre-serialised: ``packet(seq, t_ns)`` patches in the variable fields."""

    def __init__(self, topic: str, qos: int, payload: int):
        self.qos = qos
        self.pad = b"\0" * max(0, payload - PAYLOAD_HEADER.size)
        length = 2 + len(topic.encode()) + (2 if qos else 0) + PAYLOAD_HEADER.size + len(self.pad)
        self.head = bytes([0x30 | (qos << 1)]) + varint(length) + _string(topic)

    def packet(self, seq: int, t_ns: int) -> bytes:
        packet_id = struct.pack(">H", seq % 65535 + 1) if self.qos else b""
        return b"".join((self.head, packet_id, PAYLOAD_HEADER.pack(seq, t_ns), self.pad))


def packets(buf: bytes, start: int = 0):
    """(first byte, body start, body end) of each whole packet in ``buf``; the offset where the rest begins last."""
    i, n = start, len(buf)
    while n - i >= 2:
        length, mult, j = 0, 1, i + 1
        while j < n:
            b = buf[j]
            length += (b & 127) * mult
            j += 1
            if b < 128:
                break
            mult *= 128
        else:
            break
        if j + length > n:
            break
        yield buf[i], j, j + length
        i = j + length
    yield None, i, i


class Session(asyncio.Protocol):
    """One MQTT connection: the handshake packets it waits for, then the pair's traffic."""

    def __init__(self, pair_state: PairState, role: str):
        self.state, self.role = pair_state, role
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.waiting: asyncio.Future | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)
        if self.waiting and not self.waiting.done():
            self.waiting.set_exception(ConnectionError(f"{self.role} connection closed ({exc})"))

    async def expect(self, packet: bytes, kind: int, timeout: float = 30.0) -> bytes:
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(packet)
        first, body = await asyncio.wait_for(self.waiting, timeout)
        if first >> 4 != kind:
            raise ConnectionError(f"{self.role}: expected packet type {kind}, got {first >> 4}")
        return body

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        now = time.monotonic_ns()
        acks = []
        for first, start, end in packets(buf):
            if first is None:
                self.buf = buf[start:]
                break
            if self.waiting and not self.waiting.done():
                self.waiting.set_result((first, buf[start:end]))
            elif first >> 4 == 3:  # PUBLISH to the subscriber
                qos = (first >> 1) & 3
                p = start + 2 + (buf[start] << 8 | buf[start + 1])
                if qos:
                    acks.append(b"\x40\x02" + buf[p:p + 2])
                    p += 2
                seq, sent = PAYLOAD_HEADER.unpack_from(buf, p)
                self.state.received(seq, now - sent, now)
            elif first >> 4 == 4:  # PUBACK to the publisher
                self.state.pubacks += 1
        if acks:
            self.transport.write(b"".join(acks))
        if self.role == "subscriber" and self.state.sending:
            self.state.pump()


class PairState:
    def __init__(self, pair: Pair, load: Load, clock: Clock):
        self.pair, self.load, self.clock = pair, load, clock
        self.template = Template(pair.topic, load.qos, load.payload)
        self.sent = self.got = self.pubacks = self.disorder = 0
        self.sending = False
        self.publisher: Session | None = None
        self.done = asyncio.get_running_loop().create_future()

    def pump(self):
        # Refill in batches of at least half a window: one write carries many messages, so the generator's cost
        # per message (system calls above all) stays below the broker's.
        room = self.load.window - (self.sent - self.got)
        if room < max(1, self.load.window // 2):
            return
        t = time.monotonic_ns()
        first = self.sent
        self.sent += room
        self.publisher.transport.write(b"".join(self.template.packet(s, t) for s in range(first, self.sent)))

    def received(self, seq: int, latency: int, now: int):
        if seq != self.got:
            self.disorder += 1
        self.got += 1
        self.clock.record(latency, now)
        if not self.sending and self.got >= self.sent and not self.done.done():
            self.done.set_result(None)


class Clock:
    """The measured window: messages received in it and their latencies (microseconds)."""

    def __init__(self, start_ns: int, load: Load):
        self.from_ns = start_ns + int(load.warmup * 1e9)
        self.to_ns = self.from_ns + int(load.seconds * 1e9)
        self.latencies = array("q")
        self.count = 0

    def record(self, latency: int, now: int):
        if self.from_ns <= now < self.to_ns:
            self.count += 1
            self.latencies.append(latency // 1000)


def _tls(load: Load) -> ssl.SSLContext | None:
    if not load.ca_file:
        return None
    ctx = ssl.create_default_context(cafile=load.ca_file)
    return ctx


async def _open(load: Load, state: PairState, role: str, user: str, password: str | None) -> Session:
    loop = asyncio.get_running_loop()
    tls = _tls(load)
    _, session = await loop.create_connection(lambda: Session(state, role), load.host, load.port, ssl=tls,
                                              server_hostname=(load.server_name or load.host) if tls else None)
    body = await session.expect(connect_packet(user, user if password else None, password), 2)
    if body[1] != 0:
        raise ConnectionError(f"{user}: CONNACK return code {body[1]}")
    return session


async def _worker(load: Load, pairs: list[Pair], start_at, ready) -> dict:
    states = []
    sessions = []
    # The clock's start is only known once every process is connected; a placeholder until then.
    clock = Clock(0, load)
    for pair in pairs:
        state = PairState(pair, load, clock)
        sub = await _open(load, state, "subscriber", pair.subscriber, pair.subscriber_password)
        granted = (await sub.expect(subscribe_packet(pair.topic, load.qos), 9))[-1]
        if granted != load.qos:
            raise ConnectionError(f"{pair.subscriber}: SUBACK granted {granted:#x} for {pair.topic} at QoS "
                                  f"{load.qos}")
        state.publisher = await _open(load, state, "publisher", pair.publisher, pair.publisher_password)
        states.append(state)
        sessions += [sub, state.publisher]
    ready.release()
    while start_at.value == 0:
        await asyncio.sleep(0.005)
    start = start_at.value
    fresh = Clock(start, load)
    for state in states:
        state.clock = fresh
    await asyncio.sleep(max(0.0, (start - time.monotonic_ns()) / 1e9))
    for state in states:
        state.sending = True
        state.pump()
    await asyncio.sleep(max(0.0, (fresh.from_ns - time.monotonic_ns()) / 1e9))
    cpu0 = os.times()
    await asyncio.sleep(max(0.0, (fresh.to_ns - time.monotonic_ns()) / 1e9))
    cpu1 = os.times()
    for state in states:
        state.sending = False
        if state.got >= state.sent and not state.done.done():
            state.done.set_result(None)
    drained = True
    try:
        await asyncio.wait_for(asyncio.gather(*(s.done for s in states)), load.drain)
    except TimeoutError:
        drained = False
    for session in sessions:
        session.transport.write(b"\xe0\x00")
        session.transport.close()
    return {"sent": sum(s.sent for s in states), "received": sum(s.got for s in states),
            "disorder": sum(s.disorder for s in states), "drained": drained, "count": fresh.count,
            "latencies": fresh.latencies.tobytes(),
            "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)}


def _process(load: Load, pairs: list[Pair], start_at, ready, out) -> None:
    try:
        out.put(asyncio.run(_worker(load, pairs, start_at, ready)))
    except Exception as exc:  # reported to the parent, which fails the run with it
        ready.release()
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def cpu_ticks(pid: int | None) -> int | None:
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)  # busy (not idle, not iowait), all


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(load: Load) -> dict:
    """Run the load; the figures of the measured window, and the checks' counts (lost, out of order)."""
    if load.cpus:
        os.sched_setaffinity(0, load.cpus)
    ctx = multiprocessing.get_context("fork")
    start_at, ready, out = ctx.Value("q", 0), ctx.Semaphore(0), ctx.Queue()
    count = max(1, min(load.processes, len(load.pairs)))
    procs = [ctx.Process(target=_process, args=(load, list(load.pairs[i::count]), start_at, ready, out))
             for i in range(count)]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=120):
            raise RuntimeError("mqttload: the sessions did not connect within 120 s")
    start = time.monotonic_ns() + 200_000_000
    start_at.value = start
    time.sleep(max(0.0, (start - time.monotonic_ns()) / 1e9) + load.warmup)
    broker0, machine0 = cpu_ticks(load.watch_pid), _machine_ticks()
    time.sleep(load.seconds)
    broker1, machine1 = cpu_ticks(load.watch_pid), _machine_ticks()
    reports = collect(procs, out, load.drain + 60, "mqttload")
    busy = None if broker0 is None else (broker1 - broker0) / os.sysconf("SC_CLK_TCK") / load.seconds
    return figures(load, count, reports, busy, (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]))


def collect(procs: list, out, timeout: float, who: str) -> list[dict]:
    """Each worker process's report, after which the processes are joined; a worker's error fails the run."""
    reports = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise RuntimeError(f"{who}: " + "; ".join(errors))
    return reports


def broker_arguments(parser: argparse.ArgumentParser, *, tls_required: bool) -> None:
    """The broker a generator loads: --host, --port, --ca-file and --server-name (TLS)."""
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-file", required=tls_required,
                        help="TLS, verifying the broker against this CA" + ("" if tls_required else
                                                                            " (plain TCP without it)"))
    parser.add_argument("--server-name", required=tls_required,
                        help="the name the broker's certificate must carry")


def figures(load: Load, processes: int, reports: list[dict], broker_busy: float | None, machine_busy: float) -> dict:
    latencies = array("q")
    for r in reports:
        latencies.frombytes(r["latencies"])
    lat = latencies.tolist()
    cores = os.cpu_count() or 1
    generator_cpus = len(load.cpus) if load.cpus else cores
    generator_cpu_s = sum(r["cpu_s"] for r in reports)
    return {
        "qos": load.qos, "pairs": len(load.pairs), "processes": processes, "window": load.window,
        "payload_bytes": load.payload, "seconds": load.seconds,
        "messages_per_second": round(sum(r["count"] for r in reports) / load.seconds, 1),
        "latency_p50_ms": round(percentile(lat, 0.50) / 1000, 3),
        "latency_p99_ms": round(percentile(lat, 0.99) / 1000, 3),
        "sent": sum(r["sent"] for r in reports), "received": sum(r["received"] for r in reports),
        "out_of_order": sum(r["disorder"] for r in reports),
        "drained": all(r["drained"] for r in reports),
        "generator_cpu_share": round(generator_cpu_s / (load.seconds * cores), 3),
        "generator_cpus": generator_cpus,
        "generator_cpu_of_its_cpus": round(generator_cpu_s / (load.seconds * generator_cpus), 3),
        "broker_cpu_of_one_core": None if broker_busy is None else round(broker_busy, 3),
        "machine_busy": round(machine_busy, 3), "cores": cores,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rampart.mqttload", description=__doc__.split("\n\n")[0])
    broker_arguments(parser, tls_required=False)
    parser.add_argument("--pairs", type=Path, required=True,
                        help="a JSON file: a list of {publisher, subscriber, topic[, publisher_password, "
                             "subscriber_password]}")
    parser.add_argument("--qos", type=int, choices=[0, 1], default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--watch-pid", type=int)
    parser.add_argument("--cpus", help="comma-separated CPU numbers the generator runs on")
    args = parser.parse_args(argv)
    pairs = tuple(Pair(**p) for p in json.loads(args.pairs.read_text()))
    load = Load(args.host, args.port, pairs, qos=args.qos, seconds=args.seconds, warmup=args.warmup,
                window=args.window, payload=args.payload, processes=args.processes, ca_file=args.ca_file,
                server_name=args.server_name, watch_pid=args.watch_pid,
                cpus=tuple(int(c) for c in args.cpus.split(",")) if args.cpus else None)
    try:
        result = run(load)
    except (RuntimeError, OSError) as exc:
        print(json.dumps({"error": str(exc), "load": {k: v for k, v in asdict(load).items() if k != "pairs"}}))
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
