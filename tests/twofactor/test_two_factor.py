"""Two factors: a listener with authentication certificate+password admits a client only with a certificate from
the devices CA and the client's password on the same CONNECT (Molecule twofactor; roles/mosquitto/README.md
"Two factors"). Each refusal has its positive control: the same client with both factors is admitted."""

from __future__ import annotations

import os
import uuid

from ansible_collections.rampart.mqtt.plugins.module_utils import pki

from rampart import mqttprobe
from tests.audit.conftest import run_audit
from tests.support import lab as description
from tests.support import mqtt

LAB = description.load()
BROKER = LAB["brokers"][0]
PORT = BROKER["listeners"]["certificate+password"]
CLIENTS = {c["name"]: c for c in LAB["clients"]}
GW1, GW2, REVOKED = CLIENTS["gateway-01"], CLIENTS["gateway-02"], CLIENTS["gateway-revoked"]


def connect(certificate: dict | None, username: str | None, password: str | None) -> mqttprobe.ConnectResult:
    """One CONNECT on the two-factor listener, with ``certificate``'s certfile and key (None: no certificate)."""
    cert = certificate or {}
    return mqtt.probe(LAB["ca_file"], BROKER, PORT, username=username, password=password,
                      certfile=cert.get("certfile"), keyfile=cert.get("keyfile"))


def test_every_listener_of_the_broker_requires_both_factors():
    assert BROKER["listeners"] == {"certificate+password": PORT}


def test_both_factors_admit_the_client_and_its_grants_apply():
    assert connect(GW1, GW1["username"], GW1["password"]).accepted
    topic = f"gateways/{GW1['name']}/reading-{uuid.uuid4().hex[:8]}"
    reader = mqtt.open_session(LAB["ca_file"], BROKER, GW2)
    try:
        reader.subscribe("gateways/#")
        writer = mqtt.open_session(LAB["ca_file"], BROKER, GW1)
        try:
            writer.publish(topic, b"21.5", qos=1)
            writer.publish(f"gateways/{GW2['name']}/forged", b"not mine", qos=1)  # outside gateway-01's grant
        finally:
            writer.close()
        got = reader.received(wait=2.0)
    finally:
        reader.close()
    assert [t for t, _ in got] == [topic], got


def test_the_password_without_a_certificate_is_refused_at_the_handshake():
    result = connect(None, GW1["username"], GW1["password"])
    assert not result.accepted and result.outcome != "connack", result


def test_the_certificate_without_the_password_is_refused():
    for username, password in ((None, None), (GW1["username"], None), (GW1["username"], "not-the-password-at-all")):
        result = connect(GW1, username, password)
        assert result.outcome == "connack" and result.code != 0, (username, result)


def test_a_revoked_certificate_with_its_password_is_refused_at_the_handshake():
    result = connect(REVOKED, REVOKED["username"], REVOKED["password"])
    assert not result.accepted and result.outcome != "connack", result


def test_a_certificate_from_another_ca_with_the_password_is_refused(tmp_path):
    foreign = tmp_path / "foreign-pki"
    pki.ensure_ca(foreign, common_name="Foreign CA")
    pki.issue(foreign, [{"name": GW1["name"], "profile": "client"}])
    stranger = {"certfile": str(foreign / "clients" / GW1["name"] / "chain.pem"),
                "keyfile": str(foreign / "clients" / GW1["name"] / "key.pem")}
    result = connect(stranger, GW1["username"], GW1["password"])
    assert not result.accepted and result.outcome != "connack", result


def test_mosquitto_does_not_tie_the_certificate_to_the_username():
    """Mosquitto 2.0's limit, pinned so the README changes when a release ties them: any valid device certificate
    with gateway-02's password logs in as gateway-02 (both factors are required, each is checked alone)."""
    assert connect(GW1, GW2["username"], GW2["password"]).accepted


def test_the_audit_probes_a_broker_whose_listeners_all_require_two_factors(tmp_path):
    """scripts/audit's ACL and revocation probes need an ordinary client that a listener admits: here every client
    and every listener needs both factors, so the audit probes with a two-factor client, its certificate and its
    password. The inventory is the scenario's (RAMPART_INVENTORY, set by verify.yml)."""
    checks = ("ACL-SYS-DENIED", "ACL-WILDCARD-DENIED", "CRL-REVOKED-REFUSED", "MQTT-NO-ANONYMOUS")
    audit = run_audit(tmp_path, "-i", os.environ["RAMPART_INVENTORY"], *(a for c in checks for a in ("--only", c)))
    assert audit.rc == 0, audit.output[-3000:]
    assert sorted((f["check"], f["status"]) for f in audit.findings) == sorted((c, "pass") for c in checks), \
        audit.findings
