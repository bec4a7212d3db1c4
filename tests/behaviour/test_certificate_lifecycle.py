"""Certificate lifecycle, driven through converges against the real broker (marked converges: they run
after the read-only tests and before the CA custody test, which runs last), on one broker (conftest CONVERGED;
the scheduled CRL refresh runs as its unit runs it, on every host):

  * --check --diff reports what would be issued and revoked, and writes nothing anywhere;
  * renewal and the CRL, in the same two converges: outside their windows no certificate is re-issued and
    the CRL stays byte-for-byte; inside them the server and client certificates are re-issued and the CRL
    re-signed and pushed, the broker takes them with one SIGHUP (no restart), a subscriber connected before
    stays connected and keeps receiving, new handshakes see the new certificate, and revocation still bites.
"""

from __future__ import annotations

import hashlib
import math
import socket
import ssl
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.ansible import run as ansible_run
from tests.support.ansible import scheduled_crl_command
from tests.support.mqtt import concrete

from .conftest import CONVERGED, LAB, broker_host, converge, inventory_clients, open_session, probe

pytestmark = pytest.mark.converges

BROKER_CRL = "/etc/mosquitto/certs/crl.pem"
RELOADED = "Reload mosquitto (SIGHUP)"
RESTARTED = "Restart mosquitto because"


def pki_dir() -> Path:
    """The deployment's pki_dir: certificate clients' files live in <pki_dir>/clients/<name>/."""
    certfile = next(c["certfile"] for c in LAB["clients"] if c["auth"] == "certificate")
    return Path(certfile).parents[2]


def client(name_or_pred) -> dict:
    return next(c for c in LAB["clients"] if (c["name"] == name_or_pred if isinstance(name_or_pred, str)
                                              else name_or_pred(c)))


def keeper() -> dict:
    return client(lambda c: c["auth"] == "certificate" and c["expect"] == "allowed")


def revoked() -> dict:
    return client(lambda c: c["expect"] == "revoked")


def admin() -> dict:
    return client(lambda c: c["admin"] and c["auth"] == "password")


def publisher() -> dict:
    return client(lambda c: c["auth"] == "password" and not c["admin"] and c["publish"] and c["expect"] == "allowed")


def server_certificate(broker: dict) -> x509.Certificate:
    """The certificate the broker presents to a new client (verified against the deployment's CA)."""
    ctx = ssl.create_default_context(cafile=LAB["ca_file"])
    with socket.create_connection((broker["address"], broker["port"]), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=broker["tls_server_name"]) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def leaf(path: str | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def tree_digest(root: Path) -> str:
    """Names, modes and contents of every file under root."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*")):
        h.update(f"{path.relative_to(root)} {oct(path.stat().st_mode)}\n".encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def broker_files_digest(host) -> str:
    out = host.check_output("sha256sum /etc/mosquitto/mosquitto.conf /etc/mosquitto/passwd /etc/mosquitto/acl "
                            "/etc/mosquitto/certs/*")
    return hashlib.sha256(out.encode()).hexdigest()


def cert_probe(broker: dict, certfile: str, keyfile: str):
    return probe(broker, broker["listeners"]["certificate"], certfile=certfile, keyfile=keyfile)


@contextmanager
def live_subscribers():
    """Per broker name: an admin session subscribed to a publisher's topic, and that topic; closed after."""
    live = {}
    try:
        for broker in CONVERGED:
            topic = concrete(publisher()["publish"][0])
            live[broker["name"]] = open_session(broker, admin()), topic
            live[broker["name"]][0].subscribe(topic)
        yield live
    finally:
        for session, _topic in live.values():
            session.close()


def assert_still_receiving(broker: dict, session, topic: str, payload: bytes) -> None:
    assert not session.disconnected.is_set(), "a session connected before the change was dropped"
    p = open_session(broker, publisher())
    try:
        assert p.publish(topic, payload, qos=1) == 0
    finally:
        p.close()
    assert (topic, payload) in session.received(3)


def test_check_mode_reports_and_writes_nothing(tmp_path):
    clients = inventory_clients()
    victim = keeper()["name"]
    newcomer = {"name": "rampart-probe-check", "auth": "certificate", "publish": ["devices/%u/status"]}
    changed = [{**c, "revoked": True} if c["name"] == victim else c for c in clients] + [newcomer]
    hosts = [(b, broker_host(b)) for b in CONVERGED]
    before = tree_digest(pki_dir()), {b["name"]: broker_files_digest(h) for b, h in hosts}
    run = converge({"mosquitto_clients": changed}, tmp_path, "--check", "--diff")
    assert run.rc == 0, run.output[-3000:]
    assert f"+ {newcomer['name']}: issue" in run.output
    assert f"- {victim}: revoke" in run.output
    assert (tree_digest(pki_dir()), {b["name"]: broker_files_digest(h) for b, h in hosts}) == before
    assert not (pki_dir() / "clients" / newcomer["name"]).exists()
    for broker in CONVERGED:
        assert cert_probe(broker, keeper()["certfile"], keeper()["keyfile"]).accepted


def crl_next_update(pem: bytes) -> datetime:
    return x509.load_pem_x509_crl(pem).next_update_utc


def test_renewal_and_crl_windows_under_a_live_subscriber(tmp_path):
    """Certificates and the CRL, each on its window, in the same two converges (each costs most of a minute).
    Outside the windows nothing is re-issued and the CRL stays byte-for-byte. Inside them the server and client
    certificates are re-issued and the CRL re-signed (same revoked serials, later nextUpdate) and pushed; the
    broker takes both with one SIGHUP (no restart), sessions connected before keep receiving, new handshakes see
    the new server certificate, the renewed client gets in and the revoked one is still refused."""
    keep = keeper()
    before_server = {b["name"]: server_certificate(b) for b in CONVERGED}
    before_client = leaf(keep["certfile"])
    now = datetime.now(UTC)
    left = [c.not_valid_after_utc - now for c in [*before_server.values(), before_client]]
    valid_days = max(left).days + 3  # new certificates outlive the current ones
    crl_path = pki_dir() / "ca" / "crl.pem"
    hosts = [(b, broker_host(b)) for b in CONVERGED]
    crl_before = crl_path.read_bytes()
    for _b, host in hosts:
        assert host.file(BROKER_CRL).content == crl_before
    crl_days_left = (crl_next_update(crl_before) - now).total_seconds() / 86400
    crl_valid = math.ceil(crl_days_left) + 5  # the re-signed CRL outlives the current one

    # Outside the windows (wide, but every certificate and the CRL still has more days left): nothing changes.
    outside = {"pki_cert_valid_days": valid_days, "pki_renew_before_days": max(min(left).days - 1, 1),
               "pki_crl_valid_days": crl_valid, "pki_crl_renew_before_days": max(math.floor(crl_days_left) - 1, 1)}
    run = converge(outside, tmp_path)
    assert run.rc == 0, run.output[-3000:]
    for broker in CONVERGED:
        assert server_certificate(broker).serial_number == before_server[broker["name"]].serial_number
    assert leaf(keep["certfile"]).serial_number == before_client.serial_number
    assert crl_path.read_bytes() == crl_before, "a CRL outside its re-sign window was re-signed"

    # Inside the windows: as if everything had been signed long ago.
    inside = {"pki_cert_valid_days": valid_days, "pki_renew_before_days": max(left).days + 2,
              "pki_crl_valid_days": crl_valid, "pki_crl_renew_before_days": math.ceil(crl_days_left) + 1}
    with live_subscribers() as live:
        run = converge(inside, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        assert run.statuses(RELOADED) == {"changed"}
        assert run.statuses(RESTARTED) == {"skipped"}
        crl_after = crl_path.read_bytes()
        assert crl_next_update(crl_after) > crl_next_update(crl_before)
        assert {r.serial_number for r in x509.load_pem_x509_crl(crl_after)} == \
            {r.serial_number for r in x509.load_pem_x509_crl(crl_before)}
        for broker, host in hosts:
            session, topic = live[broker["name"]]
            assert_still_receiving(broker, session, topic, b"across-the-rotation")
            new = server_certificate(broker)
            old = before_server[broker["name"]]
            assert new.serial_number != old.serial_number, "new clients still see the old server certificate"
            assert new.not_valid_after_utc > old.not_valid_after_utc
            assert new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == \
                old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert host.file(BROKER_CRL).content == crl_after
        renewed = leaf(keep["certfile"])
        assert renewed.serial_number != before_client.serial_number
        for broker in CONVERGED:
            assert cert_probe(broker, keep["certfile"], keep["keyfile"]).accepted
            gone = cert_probe(broker, revoked()["certfile"], revoked()["keyfile"])
            assert gone.outcome in ("tls-error", "closed"), gone
    run = converge(None, tmp_path)
    assert (run.rc, run.changed) == (0, 0), run.output[-3000:]


def test_the_scheduled_crl_refresh_resigns_and_delivers_only_the_crl(tmp_path):
    """The shipped schedule (examples/systemd/rampart-crl-refresh.service: site.yml --tags crl, daily), run as its
    unit runs it: with the CRLs inside their re-sign window, both authorities' CRLs are re-signed (same revoked
    serials, later nextUpdate), the brokers get the new one with a reload (no restart, no package step), the revoked
    client is still refused and the others get in. Run again, it changes nothing: a daily schedule is cheap."""
    devices_crl, infrastructure_crl = pki_dir() / "ca" / "crl.pem", pki_dir() / "infrastructure" / "ca" / "crl.pem"
    before = {path: path.read_bytes() for path in (devices_crl, infrastructure_crl)}
    days_left = (crl_next_update(before[devices_crl]) - datetime.now(UTC)).total_seconds() / 86400
    window = {"pki_crl_valid_days": math.ceil(days_left) + 5, "pki_crl_renew_before_days": math.ceil(days_left) + 1}
    command = scheduled_crl_command()

    run = ansible_run(command, window, tmp_path)
    assert run.rc == 0, run.output[-3000:]
    for path, old in before.items():
        new = path.read_bytes()
        assert crl_next_update(new) > crl_next_update(old), f"{path} was not re-signed"
        assert {r.serial_number for r in x509.load_pem_x509_crl(new)} == \
            {r.serial_number for r in x509.load_pem_x509_crl(old)}
    for broker in LAB["brokers"]:
        assert broker_host(broker).file(BROKER_CRL).content == devices_crl.read_bytes()
    assert run.statuses(RELOADED) == {"changed"}
    assert run.statuses(RESTARTED) == {"skipped"}
    assert not run.ran("Install Mosquitto without starting Debian's default service")
    crl_path = ("Revoke client certificates and re-sign the CRLs when due", "Install the CA bundle, CRL,", RELOADED,
                "Copy the files the broker is healthy on to the last-good directory")
    assert all(t.task.startswith(crl_path) for t in run.changed_tasks), run.changed_tasks
    for broker in LAB["brokers"]:
        assert cert_probe(broker, keeper()["certfile"], keeper()["keyfile"]).accepted
        gone = cert_probe(broker, revoked()["certfile"], revoked()["keyfile"])
        assert gone.outcome in ("tls-error", "closed"), gone

    again = ansible_run(command, window, tmp_path)
    assert (again.rc, again.changed) == (0, 0), again.output[-3000:]
