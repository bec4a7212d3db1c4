"""scripts/bench-broker's clients and files (the runs against the lab's broker are in scripts/test's lab step)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import stat
import threading

import yaml
from ansible_collections.rampart.mqtt.plugins.module_utils import mosquitto
from cryptography.hazmat.primitives import serialization

from rampart import bench_broker, tlsload
from tests.support import REPO
from tests.unit.test_bench_clients import LISTENERS


def test_each_pair_is_a_publisher_and_a_subscriber_the_role_accepts_with_one_topic_between_them():
    clients, pairs = bench_broker.bench_clients_for(12, "r1")
    assert len(clients) == 24 and len({c["name"] for c in clients}) == 24
    problems = mosquitto.validate({"mosquitto_bind_addresses": ["10.0.0.1"], "mosquitto_listeners": LISTENERS,
                                   "mosquitto_clients": clients})
    assert [p for p in problems if p.startswith("mosquitto_clients")] == []
    by_name = {c["name"]: c for c in clients}
    for pair in pairs:
        publisher, subscriber = by_name[pair["publisher"]], by_name[pair["subscriber"]]
        assert publisher["publish"] == ["bench/%u"] and "subscribe" not in publisher
        assert subscriber["subscribe"] == [pair["topic"]] == [f"bench/{publisher['name']}"]
        assert "publish" not in subscriber
        assert (pair["publisher_password"], pair["subscriber_password"]) == (publisher["password"],
                                                                             subscriber["password"])
    assert len({c["password"] for c in clients}) == 24


def test_the_plain_brokers_pairs_carry_no_password_and_the_hardened_ones_are_private(tmp_path):
    _, pairs = bench_broker.bench_clients_for(3, "r1")
    files = bench_broker.pair_files(tmp_path, pairs)
    assert stat.S_IMODE(files["hardened"].stat().st_mode) == 0o600
    assert json.loads(files["hardened"].read_text()) == pairs
    assert all("password" not in k for p in json.loads(files["plain"].read_text()) for k in p)


def test_the_handshake_benchmarks_certificates_verify_and_the_generator_counts_real_handshakes(tmp_path):
    """bench_certificates() against this machine's OpenSSL: each key type's server certificate completes real TLS
    handshakes with tlsload on loopback (verified against the throw-away CA and the name), and a client that does
    not trust that CA fails every one of them."""
    ca_pem, files = bench_broker.bench_certificates()
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "other-ca.pem").write_bytes(bench_broker.bench_certificates()[0])
    for kind, pair in files.items():
        for name, content in pair.items():
            (tmp_path / f"{kind}-{name}").write_bytes(content)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(tmp_path / f"{kind}-server.pem", tmp_path / f"{kind}-server.key")
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            stop = threading.Event()
            thread = threading.Thread(target=_serve, args=(listener, server, stop), daemon=True)
            thread.start()
            try:
                good = tlsload.run(tlsload.Handshakes("127.0.0.1", port, str(tmp_path / "ca.pem"),
                                                      bench_broker.TLS_NAME, seconds=0.5, warmup=0.1, processes=1))
                bad = tlsload.run(tlsload.Handshakes("127.0.0.1", port, str(tmp_path / "other-ca.pem"),
                                                     bench_broker.TLS_NAME, seconds=0.3, warmup=0.1, processes=1))
            finally:
                # The server thread ends before its listener is closed (an accept on a closed socket raises).
                stop.set()
                thread.join()
        assert good["handshakes_per_second"] > 0 and good["failed"] == 0, (kind, good)
        assert bad["handshakes_per_second"] == 0 and bad["errors"].keys() == {"SSLCertVerificationError"}, (kind, bad)
    key = serialization.load_pem_private_key(files["rsa-2048"]["server.key"], None)
    assert key.key_size == 2048
    assert serialization.load_pem_private_key(files["ecdsa-p256"]["server.key"], None).curve.name == "secp256r1"


def _serve(listener: socket.socket, context: ssl.SSLContext, stop: threading.Event) -> None:
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with contextlib.suppress(OSError), conn, context.wrap_socket(conn, server_side=True):
            pass


def test_the_storms_default_limits_are_the_ones_the_wiring_applies():
    """bench-broker storm --limits defaults reports the per-source limits the firewall gets without the lab's
    overrides: they must be the wiring's defaults, and the lab's inventory must set exactly those keys."""
    wiring = (REPO / "roles/wiring/vars/main.yml").read_text()
    for key, value in bench_broker.DEFAULT_LIMITS.items():
        assert f"{key} | default({value})" in wiring, key
    lab = yaml.safe_load((REPO / "inventories/lab/group_vars/perimeter/nftables.yml").read_text())
    assert set(bench_broker.LAB_LIMITS) <= set(lab)
