"""The audit's TLS scan (rampart/audit/tlsscan.py) finds what sslyze's own per-suite scan finds, in far fewer
handshakes, against loopback TLS servers of this machine's OpenSSL: a lax one (TLS 1.0 to 1.3, every suite) and a
strict one that requires a client certificate, as Rampart's certificate listeners do."""

from __future__ import annotations

import shutil
import socket
import ssl
import sys
import threading

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import pki

from rampart.audit import posture
from rampart.audit.model import AuditError

pytestmark = pytest.mark.skipif(not posture.SSLYZE.exists(), reason="no .venv-sslyze (scripts/bootstrap makes it)")


class Server:
    """Completes (or refuses) TLS handshakes on loopback and counts the connections."""

    def __init__(self, ctx: ssl.SSLContext):
        self.ctx, self.connections = ctx, 0
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.handshake, args=(conn,), daemon=True).start()

    def handshake(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with self.ctx.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            conn.close()


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    pki.ensure_ca(d)
    pki.issue(d, [{"name": "srv", "profile": "server", "dns_names": ["broker.test"], "ip_addresses": []},
                  {"name": "cli", "profile": "client"}])
    return d


def server_context(d, lax: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "servers/srv/chain.pem", d / "servers/srv/key.pem")
    if lax:
        ctx.minimum_version = ssl.TLSVersion.TLSv1  # deprecated on purpose: the lax server offers TLS 1.0
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
        ctx.load_verify_locations(d / "ca/chain.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def scans(server: Server, description: dict | None = None) -> tuple[dict, int, dict, int]:
    broker = {"address": "127.0.0.1", "tls_server_name": "broker.test"}
    server.connections = 0
    fast = posture.sslyze_scan(broker, server.port, description)
    fast_connections, server.connections = server.connections, 0
    full = posture.sslyze_scan(broker, server.port, full=True)
    return fast, fast_connections, full, server.connections


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_a_lax_server_every_version_and_suite_as_sslyze_finds_them(issued):
    fast, fast_n, full, full_n = scans(Server(server_context(issued, lax=True)))
    assert "error" not in full, full
    assert fast == full
    assert fast["protocols"]["TLSv1.0"] and fast["protocols"]["TLSv1.2"] and fast["protocols"]["TLSv1.3"]
    assert fast_n * 5 < full_n, f"{fast_n} handshakes against sslyze's {full_n}"


@pytest.mark.parametrize("with_certificate", [True, False], ids=["client-certificate", "no-certificate"])
def test_a_server_that_requires_a_client_certificate(issued, with_certificate):
    cli = issued / "clients/cli"
    description = {"clients": [{"expect": "allowed", "certfile": str(cli / "chain.pem"),
                                "keyfile": str(cli / "key.pem")}]} if with_certificate else None
    fast, fast_n, full, full_n = scans(Server(server_context(issued, lax=False)), description)
    assert "error" not in full, full
    assert fast == full
    assert sorted(v for v, suites in fast["protocols"].items() if suites) == ["TLSv1.2", "TLSv1.3"]
    # Without a certificate modern OpenSSL cannot name the suite the server chose: tlsscan falls back to one
    # handshake per TLS 1.2 suite of that build, still far fewer than the full scan.
    assert fast_n * (10 if with_certificate else 3) < full_n, f"{fast_n} handshakes against sslyze's {full_n}"


def test_the_scan_runs_with_the_python_sslyze_is_installed_for(tmp_path, monkeypatch):
    beside = tmp_path / "venv/bin"
    beside.mkdir(parents=True)
    (beside / "sslyze").write_text("#!/nowhere/python\n")
    (beside / "python").write_text("")
    monkeypatch.setenv("RAMPART_SSLYZE", str(beside / "sslyze"))
    assert posture.sslyze_python() == str(beside / "python")
    script = tmp_path / "sslyze"
    monkeypatch.setenv("RAMPART_SSLYZE", str(script))
    script.write_text(f"#!{sys.executable} -I\nimport sslyze\n")
    assert posture.sslyze_python() == sys.executable
    script.write_text("#!/usr/bin/env sh\n")
    assert posture.sslyze_python() == shutil.which("sh")
    script.write_text("import sslyze\n")
    with pytest.raises(AuditError, match="RAMPART_SSLYZE"):
        posture.sslyze_python()


def test_a_scan_that_cannot_run_is_an_error_with_its_cause(issued):
    server = Server(server_context(issued, lax=False))
    broker = {"address": "127.0.0.1", "tls_server_name": "broker.test"}
    broken = {"clients": [{"expect": "allowed", "certfile": str(issued / "ca/chain.pem"),
                           "keyfile": str(issued / "ca/chain.pem")}]}  # not a key: the scan cannot load it
    result = posture.sslyze_scan(broker, server.port, broken)
    assert set(result) == {"error"} and "broker.test" in result["error"], result
