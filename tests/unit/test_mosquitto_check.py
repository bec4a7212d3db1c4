"""The host-side check tool (roles/mosquitto/files/rampart-mosquitto-check), standard library only.

It cannot import the rampart package on the broker, so it keeps its own list of listener-scoped
options; this test keeps that list identical to rampart.mosquitto's.
"""

import importlib.machinery
import importlib.util
import json

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import mosquitto

from tests.support import ROLES_DIR

TOOL = ROLES_DIR / "mosquitto" / "files" / "rampart-mosquitto-check"


@pytest.fixture(scope="module")
def check():
    loader = importlib.machinery.SourceFileLoader("rampart_mosquitto_check", str(TOOL))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_listener_option_lists_agree(check):
    assert check.LISTENER_OPTIONS | {"listener"} == mosquitto.LISTENER_OPTIONS


GOOD = """# comment
per_listener_settings false
password_file /etc/mosquitto/passwd

listener 8883 10.0.0.1
certfile /etc/mosquitto/certs/server-chain.pem
keyfile /etc/mosquitto/certs/server.key
"""


def test_good_config_has_no_problems(check):
    assert check.lint(GOOD) == []


@pytest.mark.parametrize(("text", "problem"), [
    ("max_connections 5\nlistener 8883 10.0.0.1\n", "would open an extra listener on 0.0.0.0:1883"),
    ("certfile /x\nlistener 8883 10.0.0.1\n", "would open an extra listener"),
    ("allow_anonymous\tfalse\n", "contains a tab"),
    ("password_file /x # the file\n", "inline '#'"),
    ("password_file /a\npassword_file /b\n", "'password_file' is set twice"),
    ("include_dir /etc/mosquitto/conf.d\n", "include_dir is not allowed"),
])
def test_traps_are_reported(check, text, problem):
    problems = check.lint(text)
    assert any(problem in p for p in problems), problems


def test_connect_packet_is_a_valid_mqtt311_connect(check):
    packet = check.connect_packet("abc")
    assert packet[0] == 0x10 and packet[1] == len(packet) - 2
    assert packet[2:8] == b"\x00\x04MQTT" and packet[8] == 4
    assert packet.endswith(b"\x00\x03abc")


def test_snapshot_copies_what_differs_and_restore_puts_back_owner_and_mode(check, tmp_path, capsys):
    """snapshot writes root-owned 0600 copies and names only what it wrote; restore puts a file back with its
    owner and mode (both run as root on the broker, as the tests do here)."""
    conf, acl = tmp_path / "mosquitto.conf", tmp_path / "acl"
    conf.write_text("listener 8883\n")
    acl.write_text("user a\n")
    acl.chmod(0o644)
    last_good = tmp_path / "last-good"
    files = {"conf": {"path": str(conf), "owner": "root", "group": "root", "mode": "0644"},
             "acl": {"path": str(acl), "owner": "root", "group": "root", "mode": "0640"}}
    snapshot = ["snapshot", str(last_good), json.dumps(files)]

    assert check.main(snapshot) == 0
    assert capsys.readouterr().out.split() == ["conf", "acl"]
    assert oct(last_good.stat().st_mode & 0o777) == "0o700"
    copy = last_good / "acl"
    assert (copy.read_text(), oct(copy.stat().st_mode & 0o777), copy.stat().st_uid) == ("user a\n", "0o600", 0)
    assert check.main(snapshot) == 0
    assert capsys.readouterr().out == "", "an identical snapshot was written again"
    copy.chmod(0o644)
    acl.write_text("user b\n")
    assert check.main(snapshot) == 0
    assert capsys.readouterr().out.split() == ["acl"]

    acl.write_text("tampered\n")
    restore = ["restore", str(last_good), json.dumps({"acl": files["acl"]})]
    assert check.main(restore) == 0
    assert capsys.readouterr().out.split() == ["acl"]
    assert (acl.read_text(), oct(acl.stat().st_mode & 0o777)) == ("user b\n", "0o640")
    assert check.main(restore) == 0
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acl", "last-good", "mosquitto.conf"], "a temp file was left"


class _Listener:
    """A loopback listener that does ``after`` with each connection: after a TLS handshake with ``ctx``, or at once
    (no handshake) when ``ctx`` is None."""

    def __init__(self, ctx, after):
        import socket
        import threading

        self.ctx, self.after = ctx, after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        import ssl

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.after(self.ctx.wrap_socket(conn, server_side=True) if self.ctx else None, conn)
            except (ssl.SSLError, OSError):
                conn.close()


@pytest.fixture(scope="module")
def server_pki(tmp_path_factory):
    from ansible_collections.rampart.mqtt.plugins.module_utils import pki

    d = tmp_path_factory.mktemp("pki")
    pki.ensure_ca(d)
    pki.issue(d, [{"name": "srv", "profile": "server", "dns_names": ["broker.test"], "ip_addresses": []}])
    return d


def _probe(check, server_pki, after, handshake=True):
    """The health probe's verdict on a loopback listener that does ``after`` (with or without a TLS handshake)."""
    import ssl

    ctx = None
    if handshake:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(server_pki / "servers/srv/chain.pem", server_pki / "servers/srv/key.pem")
    listener = _Listener(ctx, after)
    return check.probe("127.0.0.1", listener.port, str(server_pki / "ca/chain.pem"), "broker.test", 5)


def _connack(code):
    def after(tls, _raw):
        tls.recv(64)
        tls.sendall(bytes([0x20, 2, 0, code]))
        tls.close()
    return after


def _reset_after_handshake(tls, raw):
    """What a certificate listener does to a client without a certificate under TLS 1.3, seen by a slow client:
    the handshake is done on the client's side, then the connection is gone (here: a reset)."""
    import socket
    import struct

    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()


@pytest.mark.parametrize(("after", "verdict"), [
    (_connack(5), "ok"),
    (_connack(0), "ANONYMOUS ACCESS IS ALLOWED"),
    (_reset_after_handshake, "ok"),
], ids=["not-authorised", "anonymous-allowed", "closed-after-handshake"])
def test_health_probe_verdicts(check, server_pki, after, verdict):
    assert _probe(check, server_pki, after) == verdict


def test_health_probe_fails_a_listener_that_breaks_the_handshake(check, server_pki):
    """Positive control for the case above: a close before the handshake completes is a failure, not 'ok'."""
    got = _probe(check, server_pki, _reset_after_handshake, handshake=False)
    assert got != "ok" and got.startswith(("TLS failed", "cannot connect")), got
