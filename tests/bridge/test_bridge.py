"""Bridges between two real brokers (Molecule default: the Debian 12 broker bridges to the Debian 13 one over TLS
with its own certificate, mosquitto_bridges in molecule/default/inventory/host_vars/rampart-mol-debian12.yml).

What crosses is what the mapping declares, with its prefixes, in each direction; a topic just outside a rule crosses
in neither; the bridge's certificate gives no more on the core than the mapping; a revoked bridge's certificate is
refused at the handshake; with the core down, the edge keeps what the queue bound says, in order, and delivers it when
the core is back. The description (lab.json's "bridges") names each bridge, its identity's files and its rules.
"""

from __future__ import annotations

import uuid

import pytest

from tests.behaviour.conftest import (
    DURABLE_EXPIRY,
    LAB,
    broker_host,
    collect_durable,
    leave_durable_subscription,
    open_session,
    probe,
)
from tests.support import lab as description
from tests.support.mqtt import accepted, crossed, topic_in

NOT_AUTHORISED_V5 = 0x87
BRIDGES = LAB.get("bridges") or []
ACTIVE = [b for b in BRIDGES if b["expect"] == "allowed"]
REVOKED = [b for b in BRIDGES if b["expect"] == "revoked"]
BROKERS = {b["name"]: b for b in description.brokers(LAB)}
CLIENTS = {c["name"]: c for c in LAB["clients"]}


def test_the_description_has_an_active_and_a_revoked_bridge():
    assert ACTIVE and REVOKED, f"molecule default must declare an active and a revoked bridge: {BRIDGES}"


@pytest.fixture(scope="module")
def bridge() -> dict:
    return ACTIVE[0]


@pytest.fixture(scope="module")
def edge(bridge) -> dict:
    return BROKERS[bridge["edge"]]


@pytest.fixture(scope="module")
def core(bridge) -> dict:
    return BROKERS[bridge["remote"]]


def rule(bridge: dict, direction: str) -> dict:
    """The first rule of a direction, as the description gives it: its full filter on each broker."""
    return bridge[direction][0]


def sessions(*pairs):
    return [open_session(broker, client) for broker, client in pairs]


def test_a_reading_crosses_to_the_core_with_the_declared_prefix(bridge, edge, core):
    out = rule(bridge, "out")
    sensor = CLIENTS["sensor-01"]
    leaf = f"sensor-01/{uuid.uuid4().hex[:8]}"
    reader, sender = sessions((core, CLIENTS["ops-admin"]), (edge, sensor))
    try:
        reader.subscribe(topic_in(out["remote"], leaf))
        assert crossed(sender, topic_in(out["local"], leaf), reader, topic_in(out["remote"], leaf)), \
            f"a reading published on {edge['name']} never reached {core['name']} as {topic_in(out['remote'], leaf)}"
    finally:
        reader.close()
        sender.close()


def test_a_topic_just_outside_the_out_rule_stays_on_the_edge(bridge, edge, core):
    """device-cert-01 publishes its status (devices/..., allowed on the edge, outside every out rule) and a reading
    (inside): only the reading arrives on the core, where the admin reads everything."""
    out = rule(bridge, "out")
    device = CLIENTS["device-cert-01"]
    reader, sender = sessions((core, CLIENTS["ops-admin"]), (edge, device))
    try:
        reader.subscribe("#")
        marker = uuid.uuid4().hex[:8].encode()
        assert accepted(sender.publish("devices/device-cert-01/status", b"outside-" + marker, qos=1))
        inside = topic_in(out["local"], f"device-cert-01/{marker.decode()}")
        assert crossed(sender, inside, reader, topic_in(out["remote"], f"device-cert-01/{marker.decode()}"))
        seen = reader.received(2)
        assert not [t for t, p in seen if p == b"outside-" + marker], seen
    finally:
        reader.close()
        sender.close()


def test_a_command_from_the_core_reaches_only_its_device(bridge, edge, core):
    """ops-admin publishes on the core under the in rule's remote prefix: sensor-01 on the edge gets it under its own
    commands/sensor-01/, device-cert-01 gets nothing; a command for another site (just outside the rule) never
    reaches the edge."""
    into = rule(bridge, "in")
    sensor_sub, device_sub, admin = sessions((edge, CLIENTS["sensor-01"]), (edge, CLIENTS["device-cert-01"]),
                                             (core, CLIENTS["ops-admin"]))
    try:
        sensor_sub.subscribe("commands/sensor-01/#")
        device_sub.subscribe("commands/device-cert-01/#")
        assert into["remote"].startswith("commands/") and into["local"] == "commands/#", into
        other_site = "commands/site-elsewhere/sensor-01/stop"
        assert accepted(admin.publish(other_site, b"not-for-this-site", qos=1))
        assert crossed(admin, topic_in(into["remote"], "sensor-01/set"), sensor_sub, "commands/sensor-01/set")
        assert device_sub.received(1) == []
        assert [m for m in sensor_sub.received(1) if m[1] == b"not-for-this-site"] == []
    finally:
        for s in (sensor_sub, device_sub, admin):
            s.close()


def identity_client(b: dict) -> dict:
    return {"name": b["identity"], "username": b["identity"], "auth": "certificate", "certfile": b["certfile"],
            "keyfile": b["keyfile"]}


def test_the_bridges_certificate_gives_no_more_on_the_core_than_the_mapping(bridge, edge, core):
    """Connecting to the core with the bridge's own certificate (what a thief of the edge's key would do): a topic
    under the out rule's remote side is accepted, one just outside it is refused (MQTT 5 reason 0x87). The session
    takes the live bridge's client id for a moment; the edge dials again (restart_timeout)."""
    out = rule(bridge, "out")
    thief = open_session(core, identity_client(bridge))
    try:
        assert accepted(thief.publish(topic_in(out["remote"], "stolen"), b"x", qos=1))
        outside = out["remote"].split("/")[0] + "/elsewhere/stolen"
        assert thief.publish(outside, b"x", qos=1) == NOT_AUTHORISED_V5
        assert thief.publish("devices/device-cert-01/status", b"x", qos=1) == NOT_AUTHORISED_V5
    finally:
        thief.close()


@pytest.mark.parametrize("revoked", REVOKED, ids=[b["identity"] for b in REVOKED])
def test_a_revoked_bridge_is_refused_at_the_handshake(revoked, core):
    res = probe(core, core["listeners"]["certificate"], certfile=revoked["certfile"], keyfile=revoked["keyfile"])
    assert res.outcome in ("tls-error", "closed"), res


@pytest.mark.outage
def test_with_the_core_down_the_edge_keeps_its_queue_bound_in_order(bridge, edge, core):
    """The core stopped while sensor-01 publishes bound + 25 QoS 1 readings on the edge: when the core is back, its
    durable reader gets exactly the oldest ``max_queued_messages`` (the edge's bound), in order; the edge says it
    dropped the rest."""
    out = rule(bridge, "out")
    bound = edge["max_queued_messages"]
    leaf = f"sensor-01/queue-{uuid.uuid4().hex[:8]}"
    admin, core_host = CLIENTS["ops-admin"], broker_host(core)
    leave_durable_subscription(core, admin, topic_in(out["remote"], leaf), DURABLE_EXPIRY)
    payloads = [f"q-{i:05d}".encode() for i in range(bound + 25)]
    core_host.run_expect([0], "systemctl stop mosquitto")
    try:
        sender = open_session(edge, CLIENTS["sensor-01"])
        try:
            assert all([accepted(sender.publish(topic_in(out["local"], leaf), p, qos=1)) for p in payloads])
        finally:
            sender.close()
    finally:
        core_host.run_expect([0], "systemctl start mosquitto")
    got = collect_durable(core, admin, topic_in(out["remote"], leaf), bound, wait=60)
    assert got == payloads[:bound], f"got {len(got)} of {bound}: first {got[:3]}, last {got[-3:]}"
    log = broker_host(edge).check_output("journalctl -u mosquitto --since=-5min --no-pager -o cat")
    assert "Outgoing messages are being dropped" in log

