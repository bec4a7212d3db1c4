"""Benchmarks of the broker itself (issue 13): ``load``, the hardened broker against a stock one; ``handshakes``,
TLS handshakes per second with an ECDSA P-256 against an RSA-2048 server certificate; ``acl``, a large ACL file.

``load``: the hardened broker under load against the same Mosquitto with Debian's stock config.

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
stop. Each figure is the median of ``--rounds`` runs, the two sides taking turns.

``handshakes``: two more Mosquitto listeners in broker1's container, on loopback, with the same settings (TLS 1.2+,
no client certificate) and a server certificate each from a throw-away CA, one ECDSA P-256, one RSA-2048 (the pki
role itself refuses RSA-2048 and issues ECDSA). ``rampart.tlsload`` completes full handshakes (no resumption,
the server verified against the CA and the name) as fast as it can; the report gives handshakes per second and per
CPU-second of the listener, and fails the run on any failed handshake.

``acl``: the hardened broker's QoS 1 rate (5 pairs) with its ACL file small, then with 2,500 made-up clients more
(about 10,000 lines), converged in between.

``storm``: a restart of the hardened broker with 2,000 sessions connected from 100 source addresses of this machine
on the lab network (``--per-source``, default 20), through the firewall (``rampart.stormload``): the time until
every session is back, the SYNs the firewall's per-source rate limit and connection cap dropped on the way (their
counters), and the sources fail2ban banned (which are unbanned afterwards).

``--quick`` (10 pairs, 1 s, one round; 100 made-up clients for ``acl``; 100 sessions, 20 per address, for ``storm``)
is what ``scripts/test`` runs so that the benchmarks cannot rot; it checks the runs, never the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
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

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rampart import bench_clients, harness

BENCH_DIR = "/var/lib/rampart-bench"  # the extra brokers' directories in the broker container, removed after the run
PLAIN_PORT = 1883
# Debian's stock /etc/mosquitto/mosquitto.conf (persistence, a log file; no listener of its own), with the
# plaintext anonymous listener a stock setup adds, on loopback only. {dir} is the instance's directory.
PLAIN_CONF = """\
persistence true
persistence_location {dir}/
log_dest file {dir}/mosquitto.log
listener 1883 127.0.0.1
allow_anonymous true
"""
# The handshake benchmark's listeners: the same settings for every key type, only the certificate differs.
TLS_PORTS = {"ecdsa-p256": 18883, "rsa-2048": 18884}
TLS_NAME = "bench-broker"
TLS_CONF = """\
persistence false
log_dest none
listener {port} 127.0.0.1
certfile {dir}/server.pem
keyfile {dir}/server.key
tls_version tlsv1.2
allow_anonymous false
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


def start_instance(container: str, name: str, conf: str, files: dict[str, bytes] | None = None) -> None:
    """Run one more /usr/sbin/mosquitto in the broker's container, as the mosquitto user, from ``conf`` (with
    ``{dir}``, its directory) and ``files`` written beside it (0600)."""
    where = f"{BENCH_DIR}/{name}"
    with tempfile.TemporaryDirectory() as local:
        for file, content in {"mosquitto.conf": f"pid_file {where}/mosquitto.pid\n" + conf.format(dir=where),
                              **(files or {})}.items():
            (Path(local) / file).write_bytes(content if isinstance(content, bytes) else content.encode())
            (Path(local) / file).chmod(0o600)
        exec_in(container, "sh", "-c", f"mkdir -p {BENCH_DIR} && rm -rf {where}")
        harness.docker("cp", local, f"{container}:{where}")
    exec_in(container, "sh", "-c", f"chown -R mosquitto: {where} && chmod 0700 {where} && "
                                   f"runuser -u mosquitto -- /usr/sbin/mosquitto -d -c {where}/mosquitto.conf")
    for _ in range(100):
        if exec_in(container, "test", "-s", f"{where}/mosquitto.pid", check=False).returncode == 0:
            return
        time.sleep(0.1)
    log = exec_in(container, "sh", "-c", f"cat {where}/*.log", check=False).stdout
    raise SystemExit(f"bench-broker: the {name} broker did not start in {container}:\n{log}")


def stop_instances(container: str) -> None:
    exec_in(container, "sh", "-c", f"for p in {BENCH_DIR}/*/mosquitto.pid; do test -s \"$p\" && kill $(cat \"$p\"); "
                                   f"done; sleep 0.5; rm -rf {BENCH_DIR}", check=False)


def host_pids(container: str) -> dict[str, int]:
    """The host PIDs of the brokers in the container: "hardened" (the deployed one), and each extra one by name."""
    rows = harness.docker("top", container, "-eo", "pid,args").stdout.splitlines()[1:]
    pids = {}
    for row in rows:
        pid, _, args = row.strip().partition(" ")
        if "/usr/sbin/mosquitto" in args:
            extra = args.split(f"{BENCH_DIR}/")[1].split("/")[0] if f"{BENCH_DIR}/" in args else None
            pids[extra or "hardened"] = int(pid)
    return pids


def netns_pid(container: str) -> int:
    return int(harness.docker("inspect", "--format", "{{.State.Pid}}", container).stdout.strip())


def placement() -> tuple[set[int], list[int] | None]:
    """The broker's CPU and the generator's: with two CPUs or more, the broker gets one of its own (Mosquitto is
    single-threaded) and the generator the others, so neither takes CPU from the other."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, cpus[1:]) if len(cpus) > 1 else (set(cpus), None)


def in_netns(root: Path, container: str, module: str, args: list[str], generator_cpus: list[int] | None,
             timeout: float) -> dict[str, Any]:
    """``python -m module args`` from the checkout's venv, inside the container's network namespace; its JSON."""
    cmd = ["nsenter", f"--net=/proc/{netns_pid(container)}/ns/net", "--",
           str(root / ".venv" / "bin" / "python"), "-m", module, *args]
    if generator_cpus:
        cmd += ["--cpus", ",".join(map(str, generator_cpus))]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"bench-broker: {module} failed (rc={res.returncode}):\n{res.stderr[-3000:]}") from None


def load(root: Path, container: str, target: dict[str, Any], pairs_file: Path, qos: int, seconds: float,
         processes: int, window: int, generator_cpus: list[int] | None) -> dict[str, Any]:
    args = ["--host", target["host"], "--port", str(target["port"]), "--pairs", str(pairs_file), "--qos", str(qos),
            "--seconds", str(seconds), "--processes", str(processes), "--window", str(window),
            "--watch-pid", str(target["pid"])]
    if target.get("ca_file"):
        args += ["--ca-file", target["ca_file"], "--server-name", target["server_name"]]
    out = in_netns(root, container, "rampart.mqttload", args, generator_cpus, seconds + 300)
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


def bench_certificates() -> tuple[bytes, dict[str, dict[str, bytes]]]:
    """A throw-away CA (ECDSA P-256) and, from it, a server certificate for ``TLS_NAME`` of each key type of the
    handshake benchmark: (the CA's PEM, {key type: {"server.pem", "server.key"}})."""
    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key, issuer: str, issuer_key, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = (builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("rampart bench CA", ca_key, "rampart bench CA", ca_key, ca=True)
    keys = {"ecdsa-p256": ec.generate_private_key(ec.SECP256R1()),
            "rsa-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
    files = {kind: {"server.pem": cert(TLS_NAME, key, "rampart bench CA", ca_key, ca=False)
                    .public_bytes(serialization.Encoding.PEM),
                    "server.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())}
             for kind, key in keys.items()}
    return ca.public_bytes(serialization.Encoding.PEM), files


def measure_handshakes(root: Path, settings: Settings, work: Path) -> dict[str, Any]:
    """TLS handshakes per second against two listeners with the same settings, one with an ECDSA P-256 certificate
    and one with an RSA-2048 one (issue 13's goal: ECDSA at least 2x), taking turns for ``settings.rounds``."""
    container = json.loads((root / ".lab" / "lab.json").read_text())["brokers"][0]["container"]
    ca_pem, files = bench_certificates()
    ca_file = work / "bench-ca.pem"
    ca_file.write_bytes(ca_pem)
    broker_cpus, generator_cpus = placement()
    pinned: dict[int, set[int]] = {}
    done: dict[str, list[dict]] = {kind: [] for kind in TLS_PORTS}
    try:
        for kind, port in TLS_PORTS.items():
            start_instance(container, f"tls-{kind}", TLS_CONF.replace("{port}", str(port)), files[kind])
        pids = host_pids(container)
        pinned = pin({kind: pids[f"tls-{kind}"] for kind in TLS_PORTS}, broker_cpus)
        for number in range(1, settings.rounds + 1):
            for kind, port in TLS_PORTS.items():
                _say(f"bench-broker: round {number}/{settings.rounds}: TLS handshakes, {kind} certificate, "
                     f"{settings.seconds:g} s ...")
                out = in_netns(root, container, "rampart.tlsload",
                               ["--host", "127.0.0.1", "--port", str(port), "--ca-file", str(ca_file),
                                "--server-name", TLS_NAME, "--seconds", str(settings.seconds),
                                "--processes", str(settings.processes), "--watch-pid", str(pids[f"tls-{kind}"])],
                               generator_cpus, settings.seconds + 120)
                if out["failed"] or out["handshakes_per_second"] <= 0:
                    raise SystemExit(f"bench-broker: TLS handshakes with the {kind} certificate: "
                                     f"{out['failed']} failed ({out['errors']})")
                done[kind].append(out)
    finally:
        unpin(pinned)
        stop_instances(container)
    runs = {kind: median_run(results, "handshakes_per_second") for kind, results in done.items()}
    for run in runs.values():
        run["handshakes_per_listener_cpu_second"] = per_cpu_second(run["handshakes_per_second"], run)
    ecdsa, rsa_ = runs["ecdsa-p256"], runs["rsa-2048"]
    return {"runs": runs, "goal": 2.0,
            "ratio": round(ecdsa["handshakes_per_second"] / rsa_["handshakes_per_second"], 2),
            "ratio_per_listener_cpu_second": round(ecdsa["handshakes_per_listener_cpu_second"]
                                                   / rsa_["handshakes_per_listener_cpu_second"], 2)}


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
        "plain": {"name": "plain", "host": "127.0.0.1", "port": PLAIN_PORT, "pid": pids.get("plain")},
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
    quick: bool = False
    per_source: int = 20  # storm sessions per source address
    limits: str = "lab"  # the storm's firewall limits: the lab's, or Rampart's defaults


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
        start_instance(container, "plain", PLAIN_CONF)
        pids = host_pids(container)
        pinned = pin(pids, broker_cpus)
        to = targets(root, description, pids)
        runs = rounds(settings, lambda name, qos, window: load(root, container, to[name], files[name], qos,
                                                                settings.seconds, settings.processes, window,
                                                                generator_cpus))
    finally:
        unpin(pinned)
        stop_instances(container)
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
        runs[name][qos] = {**median_run(results, "messages_per_second"),
                           **{f"light_{k}": light[k] for k in ("messages_per_second", "latency_p50_ms",
                                                                "latency_p99_ms")}}
    return runs


def with_efficiency(runs: dict[str, dict[int, dict]]) -> dict[str, dict[int, dict]]:
    """Each run with its messages per CPU-second of the broker: what the broker's config costs per message,
    whichever side (broker or generator) limited the run."""
    for side in runs.values():
        for r in side.values():
            r["messages_per_broker_cpu_second"] = per_cpu_second(r["messages_per_second"], r)
    return runs


def median_run(results: list[dict], key: str) -> dict:
    """The run with the median ``key`` of the rounds, with every round's ``key`` as ``rounds_<key>``."""
    ordered = sorted(results, key=lambda r: r[key])
    return {**ordered[len(ordered) // 2], f"rounds_{key}": [r[key] for r in results]}


def per_cpu_second(rate: float, run: dict) -> int | None:
    """``rate`` per CPU-second of the broker (or listener) the run watched."""
    busy = run["broker_cpu_of_one_core"]
    return round(rate / busy) if busy else None


def report_load(result: dict[str, Any]) -> str:
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


ACL_PAIRS = 5
ACL_FILLER = {"full": 2500, "quick": 100}  # fleet clients: 4 ACL lines each (user, write, read, blank)


def acl_lines(container: str) -> int:
    return len(exec_in(container, "cat", "/etc/mosquitto/acl").stdout.splitlines())


def measure_acl(root: Path, settings: Settings, work: Path) -> dict[str, Any]:
    """QoS 1 messages per second of the hardened broker with its ACL file small (the lab's clients and
    ``ACL_PAIRS`` pairs) and then with about 10,000 lines more (made-up clients that take no part), the rounds of
    one size before the other's (each size is a converge)."""
    description = json.loads((root / ".lab" / "lab.json").read_text())
    container = description["brokers"][0]["container"]
    clients, load_pairs = bench_clients_for(ACL_PAIRS, secrets.token_hex(3))
    files = pair_files(work, load_pairs)
    filler = bench_clients.fleet(ACL_FILLER["quick" if settings.quick else "full"])
    broker_cpus, generator_cpus = placement()
    sizes: dict[str, dict[str, Any]] = {}
    pinned: dict[int, set[int]] = {}
    try:
        for size, extra in (("small", []), ("large", filler)):
            inv = bench_clients.lab_inventory_with(root, work, f"bench-acl-{size}", clients + extra)
            _say(f"bench-broker: ACL {size}: {len(clients + extra)} clients added to the lab's (playbooks/broker.yml)"
                 " ...")
            bench_clients.converge(root, inv, work / f"acl-{size}.log")
            pids = host_pids(container)
            unpin(pinned)
            pinned = pin({"hardened": pids["hardened"]}, broker_cpus)
            target = targets(root, description, pids)["hardened"]
            results = []
            for number in range(1, settings.rounds + 1):
                _say(f"bench-broker: ACL {size}, round {number}/{settings.rounds}: QoS 1, {ACL_PAIRS} pairs, "
                     f"{settings.seconds:g} s ...")
                results.append(load(root, container, target, files["hardened"], 1, settings.seconds,
                                    settings.processes, settings.window, generator_cpus))
            sizes[size] = {**median_run(results, "messages_per_second"), "acl_lines": acl_lines(container)}
    finally:
        unpin(pinned)
    return {"sizes": sizes, "pairs": ACL_PAIRS, "seconds": settings.seconds,
            "ratio": round(sizes["large"]["messages_per_second"] / sizes["small"]["messages_per_second"], 2)}


def report_acl(result: dict[str, Any]) -> str:
    lines = [f"The hardened broker's QoS 1 messages per second, {result['pairs']} pairs, {result['seconds']:g} s per "
             "run, with a small and a large ACL file", "",
             "| ACL file | lines | messages/s (median) | every round | broker CPU, share of its core |",
             "|---|---|---|---|---|"]
    for size, run in result["sizes"].items():
        lines.append(f"| {size} | {run['acl_lines']:,} | {run['messages_per_second']:,.0f} | {_spread(run)} | "
                     f"{run['broker_cpu_of_one_core']:.2f} |")
    lines += ["", f"large / small: **{result['ratio']:.2f}**"]
    return "\n".join(lines)


STORM = {"full": 2000, "quick": 100}  # sessions
JAILS = ("rampart-mosquitto-auth", "rampart-mosquitto-flood")
# The per-source MQTT limits of the firewall (roles/wiring/vars/main.yml), which the lab's inventory raises.
DEFAULT_LIMITS = {"perimeter_mqtt_rate": 60, "perimeter_mqtt_burst": 30, "perimeter_mqtt_max_connections": 100}
LAB_LIMITS = tuple(DEFAULT_LIMITS)


def jail_bans(container: str) -> dict[str, int]:
    """Each fail2ban jail's "Total banned" so far (jails that do not run count 0)."""
    bans = {}
    for jail in JAILS:
        out = exec_in(container, "fail2ban-client", "status", jail, check=False).stdout
        bans[jail] = next((int(line.rsplit(maxsplit=1)[1]) for line in out.splitlines() if "Total banned" in line), 0)
    return bans
FIREWALL_SETS = {"rate": "@mqtt_rate_v4", "cap": "@mqtt_conn_v4"}


def firewall_drops(container: str) -> dict[str, int]:
    """The packets the firewall's per-source MQTT rate limit and connection cap dropped so far (their counters)."""
    drops = dict.fromkeys(FIREWALL_SETS, 0)
    for line in exec_in(container, "nft", "list", "ruleset").stdout.splitlines():
        for name, marker in FIREWALL_SETS.items():
            if marker in line and "counter packets" in line:
                drops[name] += int(line.split("counter packets")[1].split()[0])
    return drops


@contextlib.contextmanager
def source_addresses(broker_address: str, count: int):
    """``count`` more addresses of this machine on the lab network the broker is on (the top of its subnet), so the
    storm comes from several sources as a fleet does; removed afterwards."""
    route = json.loads(subprocess.run(["ip", "-j", "route", "get", broker_address], capture_output=True, text=True,
                                      check=True).stdout)[0]
    net = ipaddress.ip_network(f"{route['prefsrc']}/24", strict=False)
    if count > 100:  # .151-.250: above the lab's own addresses
        raise SystemExit(f"bench-broker: {count} source addresses asked for; at most 100 (raise --per-source)")
    addresses = [str(net.network_address + 250 - i) for i in range(count)]
    added = []
    try:
        for address in addresses:
            subprocess.run(["ip", "addr", "add", f"{address}/{net.prefixlen}", "dev", route["dev"]], check=True,
                           capture_output=True)
            added.append(address)
        yield addresses
    finally:
        for address in added:
            subprocess.run(["ip", "addr", "del", f"{address}/{net.prefixlen}", "dev", route["dev"]], check=False,
                           capture_output=True)


def storm_inventory(root: Path, work: Path, settings: Settings, clients: list[dict[str, Any]]) -> Path:
    """The lab's inventory with the storm's clients, room for them on the broker, and (``--limits defaults``)
    without the lab's per-source MQTT limits, so the roles' defaults apply."""
    inv = bench_clients.lab_inventory_with(root, work, f"bench-storm-{len(clients)}", clients)
    firewall = inv / "group_vars" / "perimeter" / "nftables.yml"
    if settings.limits == "defaults":
        values = yaml.safe_load(firewall.read_text())
        firewall.write_text(yaml.safe_dump({k: v for k, v in values.items() if k not in LAB_LIMITS}))
    (inv / "group_vars" / "brokers").mkdir(exist_ok=True)
    (inv / "group_vars" / "brokers" / "bench-storm.yml").write_text(
        f"mosquitto_max_connections: {max(1000, len(clients) + 100)}\n")
    return inv


def run_storm(root: Path, description: dict[str, Any], clients_file: Path,
              addresses: list[str]) -> subprocess.CompletedProcess:
    broker = description["brokers"][0]
    cmd = [str(root / ".venv" / "bin" / "python"), "-m", "rampart.stormload", "--host", broker["address"],
           "--port", str(broker["port"]), "--ca-file", str(root / ".lab" / description["ca_file"]),
           "--server-name", broker["tls_server_name"], "--clients", str(clients_file),
           "--sources", ",".join(addresses),
           "--restart", json.dumps(["docker", "exec", broker["container"], "systemctl", "restart", "mosquitto"])]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=1800, check=False)


def measure_storm(root: Path, settings: Settings, work: Path) -> dict[str, Any]:
    """A broker restart with every session connected: how long until all are back, and what the firewall's
    per-source rate limit and connection cap dropped on the way (issue 13's reconnect storm)."""
    description = json.loads((root / ".lab" / "lab.json").read_text())
    broker = description["brokers"][0]
    sessions = STORM["quick" if settings.quick else "full"]
    sources = max(1, sessions // settings.per_source)
    clients = [{"name": f"storm-{i:05d}", "auth": "password", "password": f"storm-{secrets.token_urlsafe(12)}",
                "publish": ["storm/%u"]} for i in range(sessions)]
    inv = storm_inventory(root, work, settings, clients)
    firewall = inv / "group_vars" / "perimeter" / "nftables.yml"
    clients_file = work / "storm-clients.json"
    clients_file.write_text(json.dumps([[c["name"], c["password"]] for c in clients]))
    clients_file.chmod(0o600)
    try:
        if settings.limits == "defaults":
            _say("bench-broker: storm: the firewall with Rampart's default per-source limits (site.yml --tags "
                 "nftables) ...")
            bench_clients.converge(root, inv, work / "storm-firewall.log", "site.yml", "--tags", "nftables")
        _say(f"bench-broker: storm: adding {sessions} clients to {broker['name']} (playbooks/broker.yml) ...")
        bench_clients.converge(root, inv, work / "storm.log")
        with source_addresses(broker["address"], sources) as addresses:
            before, bans_before = firewall_drops(broker["container"]), jail_bans(broker["container"])
            _say(f"bench-broker: storm: {sessions} sessions from {sources} addresses, then a restart of mosquitto ...")
            res = run_storm(root, description, clients_file, addresses)
            after, bans_after = firewall_drops(broker["container"]), jail_bans(broker["container"])
            exec_in(broker["container"], "fail2ban-client", "unban", *addresses, check=False)
    finally:
        if settings.limits == "defaults":
            _say("bench-broker: the lab's firewall back to the lab's limits ...")
            bench_clients.converge(root, root / "inventories" / "lab", work / "restore-firewall.log", "site.yml",
                                   "--tags", "nftables")
    try:
        out = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"bench-broker: the storm failed (rc={res.returncode}):\n{res.stderr[-3000:]}") from None
    if "error" in out:
        raise SystemExit(f"bench-broker: the storm: {out['error']}")
    drops = {k: after[k] - before[k] for k in after}
    bans = {k: bans_after[k] - bans_before[k] for k in bans_after}
    if (out["never_in"] or out["never_back"]) and not (any(drops.values()) or any(bans.values())):
        raise SystemExit(f"bench-broker: the storm: {out['never_in']} sessions never got in and {out['never_back']} "
                         "never came back, and neither the firewall nor fail2ban refused any")
    used = {**DEFAULT_LIMITS, **{k: v for k, v in yaml.safe_load(firewall.read_text()).items() if k in LAB_LIMITS}}
    return {**out, "firewall_drops": drops, "bans": bans, "per_source": settings.per_source,
            "limits_from": settings.limits, "limits": {k.removeprefix("perimeter_mqtt_"): v for k, v in used.items()}}


def report_storm(result: dict[str, Any]) -> str:
    limits = result["limits"]
    failed = ", ".join(f"{k} {v:,}" for k, v in sorted(result["failed_attempts"].items())) or "none"
    return "\n".join([
        f"Reconnect storm: {result['sessions']:,} sessions from {result['sources']} source addresses "
        f"({result['per_source']} each), the firewall with {_whose(result)} limits (per source: "
        f"{limits['rate']}/minute, burst {limits['burst']}, at most {limits['max_connections']} connections), "
        "then `systemctl restart mosquitto`", "",
        "| | figure |", "|---|---|",
        f"| first connect of every session | {result['first_connect_seconds']:.1f} s |",
        f"| sessions that never got in / never came back | {result['never_in']:,} / {result['never_back']:,} |",
        f"| restart until every session was back | **{_seconds(result['all_back_seconds'])}** |",
        f"| restart until half / 90 % were back | {result['back_p50_seconds']:.1f} s / "
        f"{result['back_p90_seconds']:.1f} s |",
        f"| failed attempts on the way | {failed} |",
        f"| SYNs the firewall dropped: rate limit / connection cap | {result['firewall_drops']['rate']:,} / "
        f"{result['firewall_drops']['cap']:,} |",
        f"| sources fail2ban banned: failed logins / connection flood | "
        f"{result['bans']['rampart-mosquitto-auth']} / {result['bans']['rampart-mosquitto-flood']} |",
    ])


def _whose(result: dict[str, Any]) -> str:
    return "the lab's" if result["limits_from"] == "lab" else "Rampart's default"


def _seconds(value: float | None) -> str:
    return "never (see the line above)" if value is None else f"{value:.1f} s"


def _spread(run: dict[str, Any], key: str = "messages_per_second") -> str:
    return ", ".join(f"{v:,.0f}" for v in run[f"rounds_{key}"])


def report_handshakes(result: dict[str, Any]) -> str:
    lines = ["TLS handshakes per second (full handshakes, no resumption; the same listener settings, only the "
             "server certificate differs)", "",
             "| certificate | handshakes/s (median) | every round | listener CPU, share of its core | "
             "handshakes per listener CPU-second | generator CPU, share of its CPUs |", "|---|---|---|---|---|---|"]
    for kind, run in result["runs"].items():
        lines.append(f"| {kind} | {run['handshakes_per_second']:,.0f} | "
                     f"{_spread(run, 'handshakes_per_second')} | "
                     f"{run['broker_cpu_of_one_core']:.2f} | {run['handshakes_per_listener_cpu_second']:,} | "
                     f"{run['generator_cpu_of_its_cpus']:.2f} |")
    lines += ["", f"ECDSA P-256 / RSA-2048: **{result['ratio']:.2f}** measured, "
                  f"{result['ratio_per_listener_cpu_second']:.2f} per listener CPU-second (goal >= {result['goal']:g})"]
    return "\n".join(lines)


REPORTS = {"load": report_load, "handshakes": report_handshakes, "acl": report_acl, "storm": report_storm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-broker", description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="*", choices=[[], *REPORTS], metavar="BENCHMARK",
                        help="load (hardened against plain), handshakes (ECDSA against RSA), acl (10,000 ACL lines "
                             "against a few), storm (a restart with 2,000 sessions connected); default all")
    parser.add_argument("--pairs", type=int, default=100, help="publisher/subscriber pairs (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per broker and QoS or certificate, taking turns; the median counts (default 3)")
    parser.add_argument("--processes", type=int, default=2, help="generator processes (default 2)")
    parser.add_argument("--window", type=int, default=20,
                        help="messages in flight per pair in the throughput runs (default 20, at most the broker's "
                             "max_inflight_messages)")
    parser.add_argument("--per-source", type=int, default=20,
                        help="storm: sessions per source address (default 20: sites behind NAT)")
    parser.add_argument("--limits", choices=["lab", "defaults"], default="lab",
                        help="storm: the firewall's per-source limits, the lab's (default) or Rampart's defaults "
                             "(the firewall is converged with them for the run and back afterwards)")
    parser.add_argument("--quick", action="store_true",
                        help="10 pairs, 1 s per run, one round (what scripts/test runs)")
    bench_clients.work_arguments(parser)
    args = parser.parse_args(argv)
    root = bench_clients.lab_root("bench-broker")
    if shutil.which("nsenter") is None:
        raise SystemExit("bench-broker: nsenter (util-linux) is missing; install it")
    settings = Settings(pairs=args.pairs, seconds=args.seconds, processes=args.processes, window=args.window,
                        rounds=args.rounds, per_source=args.per_source, limits=args.limits)
    if args.quick:
        settings = replace(settings, pairs=10, seconds=1.0, rounds=1, quick=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rampart-bench-broker-"))
    work.mkdir(parents=True, exist_ok=True)
    measures = {"load": measure, "handshakes": measure_handshakes, "acl": measure_acl, "storm": measure_storm}
    names = args.benchmarks or list(REPORTS)
    try:
        result = {name: measures[name](root, settings, work) for name in names}
    finally:
        # load, acl and storm add clients to broker1; one converge at the end puts the lab's list back (each
        # benchmark's converge replaces the previous one's clients, so none is needed in between).
        if set(names) & {"load", "acl", "storm"}:
            _say("bench-broker: converging the lab's broker back to the lab's clients ...")
            bench_clients.converge(root, root / "inventories" / "lab", work / "restore.log")
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else "\n\n".join(REPORTS[name](r) for name, r in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
