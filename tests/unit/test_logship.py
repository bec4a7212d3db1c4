"""rampart.logship: the senders' view of the collectors, RELP framing and the test tools."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
import yaml
from ansible_collections.rampart.mqtt.plugins.module_utils import logship, pki

from rampart import logprobe, mqttprobe

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"

REPO = Path(__file__).resolve().parents[2]


def test_default_port_is_the_collector_roles_default():
    defaults = yaml.safe_load((ROLES_DIR / "log_collector" / "defaults" / "main.yml").read_text())
    assert defaults["log_collector_port"] == logship.DEFAULT_PORT


def test_targets_take_the_collectors_variables_with_fallbacks():
    hostvars = {
        "c1": {"log_collector_bind_address": "10.0.0.5", "log_collector_tls_server_name": "logs.example",
               "log_collector_port": 6514, "ansible_host": "192.0.2.1"},
        "c2": {"ansible_host": "192.0.2.2"},
        "c3": {},
    }
    assert logship.targets(["c1", "c2", "c3"], hostvars) == [
        {"host": "c1", "address": "10.0.0.5", "name": "logs.example", "port": 6514},
        {"host": "c2", "address": "192.0.2.2", "name": "c2", "port": logship.DEFAULT_PORT},
        {"host": "c3", "address": "c3", "name": "c3", "port": logship.DEFAULT_PORT},
    ]
    assert logship.targets([], hostvars) == []


def test_senders_file_each_host_by_its_logs_source_address_else_ansible_host():
    hostvars = {"b1": {"ansible_host": "192.0.2.1", "logs_source_address": "10.0.0.5"},
                "c1": {"ansible_host": "192.0.2.2"},
                "v6": {"ansible_host": "FD00:0:0::20"},
                "named": {"ansible_host": "c1.example"},
                "bare": {}}
    assert logship.senders(["b1", "c1", "v6", "named", "bare"], hostvars) == [
        {"name": "b1", "address": "10.0.0.5"}, {"name": "c1", "address": "192.0.2.2"},
        # written as rsyslog writes a peer's address, so the collector's comparison matches
        {"name": "v6", "address": "fd00::20"},
        # not an address: left as it is for validation to refuse, naming logs_source_address
        {"name": "named", "address": "c1.example"}, {"name": "bare", "address": "bare"}]


def test_client_names():
    assert logship.client_name("broker1") == "log-broker1"


@pytest.mark.parametrize(("value", "expected"), [("64k", 65536), ("512m", 512 * 1024**2), ("2g", 2 * 1024**3)])
def test_size_bytes(value, expected):
    assert logship.size_bytes(value) == expected


@pytest.mark.parametrize("value", ["", "0m", "512", "512M", "1t", "-1m", "1.5g", 512])
def test_size_bytes_rejects(value):
    with pytest.raises(ValueError):
        logship.size_bytes(value)


@pytest.mark.parametrize(("value", "expected"), [("10.0.0.1", True), ("::1", True), ("host", False), ("10.0.0", False)])
def test_is_ip_address(value, expected):
    assert pki.is_ip_address(value) is expected


def test_relp_frames_round_trip():
    data = logprobe.relp_frame(1, "rsp", b"200 OK") + logprobe.relp_frame(2, "serverclose") + b"3 rsp 6 20"
    frames, rest = logprobe.parse_relp_frames(data)
    assert frames == [(1, "rsp", b"200 OK"), (2, "serverclose", b"")]
    assert rest == b"3 rsp 6 20"
    with pytest.raises(ValueError):
        logprobe.parse_relp_frames(b"x open 3 abc\n")


def test_attacker_argv_carries_a_valid_connect_packet():
    argv = logprobe.attacker_argv("login", "192.0.2.7", 8883, 4, username="u", password="p", client_id="c")
    assert argv[:2] == ["python3", "-c"]
    assert argv[3:7] == ["login", "192.0.2.7", "8883", "4"]
    assert bytes.fromhex(argv[7]) == mqttprobe.connect_packet("c", "u", "p")
    compile(logprobe.ATTACKER_SCRIPT, "attacker", "exec")
    with pytest.raises(ValueError):
        logprobe.attacker_argv("smash", "192.0.2.7", 8883, 1)


def test_attacker_results():
    assert logprobe.attacker_results("connack 5\nerror TimeoutError\nconnected\n\n") == [
        "connack:5", "error:TimeoutError", "connected"]


@pytest.fixture
def relp_server(tmp_path):
    """A loopback TLS server answering RELP like rsyslog's imrelp; requires a client certificate of its CA."""
    pki.ensure_ca(tmp_path / "pki")
    pki.issue(tmp_path / "pki", [{"name": "srv", "profile": "server", "dns_names": ["collector.test"],
                                  "ip_addresses": []}, {"name": "cli", "profile": "client"}])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "pki/servers/srv/chain.pem", tmp_path / "pki/servers/srv/key.pem")
    ctx.load_verify_locations(tmp_path / "pki/ca/chain.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve():
        conn, _ = listener.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                buffer = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                    frames, buffer = logprobe.parse_relp_frames(buffer)
                    for txnr, command, data in frames:
                        if command == "close":
                            return
                        received.append(data)
                        s.sendall(logprobe.relp_frame(txnr, "rsp", b"200 OK"))
        except (ssl.SSLError, OSError):
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield tmp_path / "pki", listener.getsockname()[1], received
    listener.close()
    thread.join(5)


def test_relp_send_opens_a_session_and_gets_every_line_acknowledged(relp_server):
    pki_dir, port, received = relp_server
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca/ca.crt"))
    ctx.load_cert_chain(pki_dir / "clients/cli/chain.pem", pki_dir / "clients/cli/key.pem")
    replies = logprobe.relp_send("127.0.0.1", port, ctx, "collector.test", ["<13>one", "<13>two"])
    assert replies == ["200 OK"] * 3
    assert received == [logprobe.RELP_OFFER, b"<13>one", b"<13>two"]
