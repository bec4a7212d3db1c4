"""Changes applied by converging again (marked converges: they run after the read-only tests), on one broker.

  * password rotation and a new client: the old password stops working, the new one works, no other line
    changes, a connected session survives (a reload, not a restart), and the next converge keeps the new hash;
  * a configuration the broker rejects fails the run and leaves the broker serving on its previous
    configuration, both when mosquitto's own parser rejects it and when the broker fails to start;
  * on a first deployment (no previous configuration) such a broker is stopped and disabled;
  * a revoked device is refused, at a new handshake and when it resumes a TLS session it held before (the reload
    replaces the session-ticket keys), while connected clients stay connected;
  * a certificate client removed from the inventory is revoked and its folder retired (review M3);
  * a changed limit in mosquitto.conf restarts the broker and is in force (SIGHUP would leave it as it was).
"""

import copy
import hashlib
import shutil
import socket
import ssl
from pathlib import Path

import pytest

from rampart import mqttprobe
from tests.support import lab as description
from tests.support.wait import wait_for

from .conftest import (
    CONVERGED,
    LAB,
    broker_host,
    converge,
    inventory_clients,
    open_session,
    padded_payloads,
    probe,
    queued_while_away,
)

pytestmark = pytest.mark.converges

NOT_AUTHORISED = 5


def hosts():
    return [(b, broker_host(b)) for b in CONVERGED]


def passwd_lines(host) -> dict[str, str]:
    lines = host.file("/etc/mosquitto/passwd").content_string.splitlines()
    return dict(line.split(":", 1) for line in lines if not line.startswith("#"))  # the seals are comments


def conf_digest(host) -> str:
    return hashlib.sha256(host.file("/etc/mosquitto/mosquitto.conf").content_string.encode()).hexdigest()


def login(broker, username, password):
    return probe(broker, broker["listeners"]["password"], username=username, password=password)


def test_a_rotation_and_a_new_client_reload_and_a_changed_limit_restarts(tmp_path):
    """Three converges (each costs most of a minute) for what SIGHUP must apply and what it cannot:
    1. A password rotated and a client added: both applied with SIGHUP, not a restart (a connected session
       survives); the old password stops working, the new one works, no other password line changes.
    2. The same clients and max_queued_bytes lowered: the rotated hash is kept (the password file is unchanged: no
       SIGHUP), and the changed setting restarts the broker (on 2.0 a SIGHUP leaves the limits as they were:
       roles/mosquitto/README.md); a durable session's queue then stops at the new limit.
    3. The inventory again: everything is undone."""
    clients = inventory_clients()
    target = next(c for c in clients if c["auth"] == "password" and not c["admin"])
    old_pw, new_pw = target["password"], target["password"] + "-rotated"
    added = {"name": "rampart-probe-added", "auth": "password", "password": "added-by-test-pw",
             "publish": [], "subscribe": []}
    before = {b["name"]: passwd_lines(h) for b, h in hosts()}
    changed = copy.deepcopy(clients)
    next(c for c in changed if c["name"] == target["name"])["password"] = new_pw
    changed.append(added)
    admin = next(c for c in LAB["clients"] if c["admin"] and c["auth"] == "password")
    session = open_session(CONVERGED[0], admin)
    try:
        run = converge({"mosquitto_clients": changed}, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        assert run.statuses("Reload mosquitto (SIGHUP)") == {"changed"}
        assert run.statuses("Restart mosquitto because") == {"skipped"}
        assert not session.disconnected.is_set(), "the session was dropped by a change that only needed a reload"
        topic = f"commands/{admin['name']}/still-here"
        session.subscribe(topic)
        session.publish(topic, b"alive")
        assert (topic, b"alive") in session.received(3)
        rotated = {}
        for broker, host in hosts():
            assert login(broker, target["name"], old_pw).code == NOT_AUTHORISED
            assert login(broker, target["name"], new_pw).accepted
            assert login(broker, added["name"], added["password"]).accepted
            rotated[broker["name"]] = after = passwd_lines(host)
            assert set(after) == set(before[broker["name"]]) | {added["name"]}
            assert after[target["name"]] != before[broker["name"]][target["name"]]
            assert {u: line for u, line in after.items() if u not in (target["name"], added["name"])} == {
                u: line for u, line in before[broker["name"]].items() if u != target["name"]}

        limit, size = 2_000_000, 200_000
        run = converge({"mosquitto_clients": changed, "mosquitto_max_queued_bytes": limit}, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        assert run.statuses("Reload mosquitto (SIGHUP)") == {"skipped"}, "a file SIGHUP re-reads changed again"
        assert run.statuses("Restart mosquitto because") == {"changed"}
        expected = -(-limit // size)
        # With the rotated password, when the rotated client is one of the two.
        publisher, reader = ({**c, "password": new_pw} if c["name"] == target["name"] else c
                             for c in (description.publisher(LAB), description.reader(LAB)))
        for broker, host in hosts():
            assert passwd_lines(host) == rotated[broker["name"]], "the rotated password was hashed again"
            sent = padded_payloads("limit", expected + 5, size)
            got = queued_while_away(broker, publisher, reader, sent, expected)
            assert [p[:12] for p in got] == [p[:12] for p in sent[:expected]], \
                f"{broker['name']}: {len(got)} messages came back, not the first {expected} (the new limit)"
    finally:
        session.close()
        run = converge(None, tmp_path)
        assert run.rc == 0, run.output[-3000:]
    for broker, _host in hosts():
        assert login(broker, target["name"], old_pw).accepted
        assert login(broker, added["name"], added["password"]).code == NOT_AUTHORISED


def serving(broker) -> bool:
    publisher = next(c for c in inventory_clients() if c["auth"] == "password")
    return login(broker, publisher["name"], publisher["password"]).accepted


def test_config_rejected_by_mosquitto_parser_keeps_previous_config(tmp_path):
    before = {b["name"]: conf_digest(h) for b, h in hosts()}
    # An allowed option with a value only mosquitto's parser checks (the blog-favourite options that do not
    # exist, such as max_connections_per_ip, no longer get past validation: the escape hatch is an allow-list).
    run = converge({"mosquitto_extra_options": ["retain_available maybe"]}, tmp_path)
    assert run.rc != 0
    assert "Invalid retain_available value" in run.output
    assert "The last good configuration was restored and the broker is serving on it" in run.output
    for broker, host in hosts():
        assert conf_digest(host) == before[broker["name"]]
        assert serving(broker)


def test_broker_that_fails_to_start_is_restored(tmp_path):
    before = {b["name"]: conf_digest(h) for b, h in hosts()}
    listeners = [{"name": auth, "port": port, "authentication": auth} for auth, port in
                 sorted(CONVERGED[0]["listeners"].items())]
    # Parses fine, changes a listener (so a restart), and the broker cannot start with it.
    listeners[0]["extra_options"] = ["bind_interface rampart-missing0"]
    run = converge({"mosquitto_listeners": listeners}, tmp_path)
    assert run.rc != 0
    assert "The last good configuration was restored and the broker is serving on it" in run.output
    for broker, host in hosts():
        assert conf_digest(host) == before[broker["name"]]
        assert serving(broker)
        assert host.service("mosquitto").is_running
    run = converge(None, tmp_path)
    assert (run.rc, run.changed) == (0, 0), run.output[-3000:]


def test_revocation_closes_the_loop_without_a_restart(tmp_path):
    """Revoke a device: CRL regenerated, pushed, broker reloaded (not restarted); the device is refused
    from then on, while sessions of other clients, including certificate clients, stay connected."""
    clients = inventory_clients()
    broker = CONVERGED[0]
    keeper = next(c for c in LAB["clients"] if c["auth"] == "certificate" and c["expect"] == "allowed")
    admin = next(c for c in LAB["clients"] if c["admin"] and c["auth"] == "password")
    victim = {"name": "rampart-probe-cert", "auth": "certificate", "publish": ["devices/%u/status"]}
    try:
        run = converge({"mosquitto_clients": [*clients, victim]}, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        cert_dir = keeper["certfile"].rsplit("/", 2)[0]
        victim_cert, victim_key = f"{cert_dir}/{victim['name']}/chain.pem", f"{cert_dir}/{victim['name']}/key.pem"
        port = broker["listeners"]["certificate"]
        assert probe(broker, port, certfile=victim_cert, keyfile=victim_key).accepted
        # A TLS session the device could resume (the broker issues session tickets): resumption skips the
        # certificate check, so after the revocation it must not be possible either.
        device_tls = _device_context(victim_cert, victim_key)
        tls_session = _tls_login(broker, port, device_tls, victim["name"])[1]
        assert _tls_login(broker, port, device_tls, victim["name"], tls_session) == (True, 0), \
            "resumption does not work before the revocation: the check after it would prove nothing"
        sessions = [open_session(broker, keeper), open_session(broker, admin)]
        run = converge({"mosquitto_clients": [*clients, {**victim, "revoked": True}]}, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        assert run.statuses("Reload mosquitto (SIGHUP)") == {"changed"}
        assert run.statuses("Restart mosquitto because") == {"skipped"}
        refused = probe(broker, port, certfile=victim_cert, keyfile=victim_key)
        assert refused.outcome in ("tls-error", "closed"), refused
        resumed, connack = _tls_login(broker, port, device_tls, victim["name"], tls_session)
        assert not resumed and connack != 0, "the revoked device resumed its TLS session and logged in"
        for s in sessions:
            assert not s.disconnected.is_set(), "a session was dropped by the revocation"
        topic = f"devices/{keeper['name']}/status"
        sessions[1].subscribe(topic)
        assert sessions[0].publish(topic, b"still-here", qos=1) == 0
        assert (topic, b"still-here") in sessions[1].received(3)
        for s in sessions:
            s.close()
        # New handshakes of other certificate clients still pass (after closing: same client id would take over).
        assert probe(broker, port, certfile=keeper["certfile"], keyfile=keeper["keyfile"]).accepted
    finally:
        run = converge(None, tmp_path)
        assert run.rc == 0, run.output[-3000:]


def _device_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=LAB["ca_file"])
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def _tls_login(broker: dict, port: int, ctx: ssl.SSLContext, client_id: str,
               session: ssl.SSLSession | None = None) -> tuple[bool, object]:
    """An MQTT 3.1.1 CONNECT over TLS with the device's context, offering ``session`` (from the same context) for
    resumption: (whether the TLS session was resumed, the CONNACK code or None when the broker refused or closed).
    Without ``session``, the second item is the new session itself, to resume later."""
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id.encode()
    try:
        with socket.create_connection((broker["address"], port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname=broker["tls_server_name"], session=session) as tls:
            tls.sendall(b"\x10" + bytes([len(body)]) + body)
            tls.settimeout(10)
            connack = tls.recv(4)
            if session is None:
                return False, tls.session
            return tls.session_reused, (connack[3] if len(connack) == 4 and connack[0] == 0x20 else None)
    except (ssl.SSLError, OSError):
        return False, None


def test_a_certificate_client_removed_from_the_inventory_is_refused_and_its_folder_retired(tmp_path):
    """Review M3: deleting a device's entry, the natural way to decommission it, revokes it. The next converge
    revokes every certificate it held and moves its folder to retired-clients/ (so the name, if it comes back, gets
    a new key), and the broker refuses the old certificate at the handshake while other devices still get in."""
    clients = inventory_clients()
    broker = CONVERGED[0]
    port = broker["listeners"]["certificate"]
    keeper = next(c for c in LAB["clients"] if c["auth"] == "certificate" and c["expect"] == "allowed")
    gone = {"name": "rampart-probe-gone", "auth": "certificate", "publish": ["devices/%u/status"]}
    clients_dir = Path(keeper["certfile"]).parent.parent
    try:
        run = converge({"mosquitto_clients": [*clients, gone]}, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        # The device keeps its own copy of its key and chain, as a real one would.
        for name in ("chain.pem", "key.pem"):
            shutil.copy(clients_dir / gone["name"] / name, tmp_path / name)
        certfile, keyfile = str(tmp_path / "chain.pem"), str(tmp_path / "key.pem")
        assert probe(broker, port, certfile=certfile, keyfile=keyfile).accepted
    finally:
        run = converge(None, tmp_path)  # the inventory without the device
    assert run.rc == 0, run.output[-3000:]
    assert not (clients_dir / gone["name"]).exists()
    assert [p for p in (clients_dir.parent / "retired-clients").iterdir() if p.name.startswith(f"{gone['name']}-")]
    refused = probe(broker, port, certfile=certfile, keyfile=keyfile)
    assert refused.outcome in ("tls-error", "closed"), refused
    assert probe(broker, port, certfile=keeper["certfile"], keyfile=keeper["keyfile"]).accepted


def test_high_profile_deploys_tls13_and_certificates_only(tmp_path):
    """rampart_profile high (README "Security profiles"): TLS 1.3 only, no password listener, devices with
    certificates still get in; the next converge at the default profile puts everything back.
    The same converge (one converge pair instead of two) lowers the listener's max_connections to 3: with 3
    connections open, a 4th is closed at once, and once they are gone the device gets in again (issue 15)."""
    lab = LAB
    devices = [c for c in inventory_clients() if c.get("auth") == "certificate"]
    device = next(c for c in lab["clients"] if c["auth"] == "certificate" and c["expect"] == "allowed")
    run = converge({"rampart_profile": "high", "mosquitto_clients": devices, "mosquitto_max_connections": 3},
                   tmp_path)
    assert run.rc == 0, run.output[-3000:]
    try:
        for broker in CONVERGED:
            port = broker["listeners"]["certificate"]
            tls12 = mqttprobe.tls_context(lab["ca_file"], device["certfile"], device["keyfile"],
                                          maximum=ssl.TLSVersion.TLSv1_2)
            assert probe(broker, port, ctx=tls12).outcome == "tls-error", "a TLS 1.2 handshake was accepted"
            tls13 = mqttprobe.tls_context(lab["ca_file"], device["certfile"], device["keyfile"],
                                          minimum=ssl.TLSVersion.TLSv1_3)
            assert probe(broker, port, ctx=tls13).accepted, "the certificate device was refused over TLS 1.3"
            assert login(broker, "sensor-01", "x").outcome == "refused", "the password listener still answers"
            held = [socket.create_connection((broker["address"], port), timeout=5) for _ in range(3)]
            try:
                full = probe(broker, port, ctx=tls13)
                assert full.outcome in ("closed", "tls-error"), f"a 4th connection got in past max_connections: {full}"
            finally:
                for sock in held:
                    sock.close()
            assert wait_for(lambda broker=broker, port=port, tls13=tls13: probe(broker, port, ctx=tls13).accepted,
                            timeout=10, what="a connection slot after the held ones closed")
    finally:
        run = converge(None, tmp_path)
    assert run.rc == 0, run.output[-3000:]
    for broker in CONVERGED:
        assert probe(broker, broker["listeners"]["password"]).outcome == "connack", "the password listener is gone"


LAST_GOOD = "/var/backups/rampart-mosquitto"


def test_a_failed_first_deployment_leaves_the_broker_stopped_and_disabled(tmp_path):
    """Review M6: with no last good configuration (a first deployment; the test moves it aside), a broker that
    fails its checks is stopped and disabled, not left serving, restarting or starting at the next boot.
    Converging the inventory again brings it back, enabled."""
    saved = f"{LAST_GOOD}.saved-by-test"
    listeners = [{"name": auth, "port": port, "authentication": auth} for auth, port in
                 sorted(CONVERGED[0]["listeners"].items())]
    listeners[0]["extra_options"] = ["bind_interface rampart-missing0"]
    for _broker, host in hosts():
        assert host.run(f"mv {LAST_GOOD} {saved}").rc == 0
    try:
        run = converge({"mosquitto_listeners": listeners}, tmp_path)
        assert run.rc != 0
        assert "first deployment): the broker was stopped and disabled" in run.output, run.output[-3000:]
        for broker, host in hosts():
            assert host.run("systemctl is-active mosquitto").stdout.strip() in ("inactive", "failed")
            assert host.run("systemctl is-enabled mosquitto").stdout.strip() == "disabled"
            assert not serving(broker)
    finally:
        for _broker, host in hosts():
            host.run(f"rm -rf {LAST_GOOD} && mv {saved} {LAST_GOOD}")
        run = converge(None, tmp_path)
        assert run.rc == 0, run.output[-3000:]
    for broker, host in hosts():
        assert host.run("systemctl is-enabled mosquitto").stdout.strip() == "enabled"
        assert serving(broker)
