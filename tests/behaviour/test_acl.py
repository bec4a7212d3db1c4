"""Least privilege: publishes outside a client's list are dropped, reads outside it never arrive."""

import uuid

from rampart import mqttprobe
from tests.support.mqtt import concrete

from .conftest import LAB

NOT_AUTHORISED_V5 = 0x87


def forbidden_topic() -> str:
    return f"rampart-forbidden/{uuid.uuid4().hex[:8]}"


def test_forbidden_publish_v5_gets_0x87_and_is_not_delivered(broker, connect, publisher, admin):
    watcher = connect(admin)
    topic = forbidden_topic()
    watcher.subscribe(topic)
    assert connect(publisher).publish(topic, b"nope", qos=1) == NOT_AUTHORISED_V5
    assert watcher.received(2) == []


def test_forbidden_publish_v311_is_acked_but_not_delivered(broker, connect, publisher, admin):
    watcher = connect(admin)
    topic = forbidden_topic()
    watcher.subscribe(topic)
    sender = connect(publisher, protocol=mqttprobe.MQTT311)
    sender.publish(topic, b"nope", qos=1)  # MQTT 3.1.1 has no PUBACK reason: the broker acks and drops
    allowed = concrete(publisher["publish"][0])
    watcher.subscribe(allowed)
    sender.publish(allowed, b"control", qos=1)  # positive control on the same connection
    got = watcher.received(3)
    assert (allowed, b"control") in got
    assert all(t != topic for t, _ in got)


def test_publishing_into_another_clients_topics_is_denied(broker, connect, publisher, cert_client, admin):
    watcher = connect(admin)
    victim_topic = concrete(cert_client["publish"][0])
    watcher.subscribe(victim_topic)
    assert connect(publisher).publish(victim_topic, b"spoof", qos=1) == NOT_AUTHORISED_V5
    assert watcher.received(2) == []


def test_reader_may_not_publish(broker, connect, reader, admin):
    watcher = connect(admin)
    topic = concrete(reader["subscribe"][0])
    watcher.subscribe(topic)
    assert connect(reader).publish(topic, b"x", qos=1) == NOT_AUTHORISED_V5
    assert watcher.received(2) == []


def test_subscriber_without_read_permission_receives_nothing(broker, connect, publisher, reader, cert_client):
    topic = concrete(cert_client["publish"][-1])
    outsider = connect(publisher)  # may not read the device's topics
    outsider.subscribe(topic)  # SUBACK is granted: acl_file checks reads at delivery time
    allowed_reader = connect(reader)
    allowed_reader.subscribe(topic)
    assert connect(cert_client).publish(topic, b"reading", qos=1) == 0
    assert (topic, b"reading") in allowed_reader.received(3)  # positive control: delivery works
    assert outsider.received(1) == []


def test_sys_topics_not_readable_by_ordinary_clients(broker, connect, reader, admin):
    ordinary = connect(reader)
    ordinary.subscribe("$SYS/#")
    privileged = connect(admin)
    privileged.subscribe("$SYS/#")
    sys_messages = privileged.received(3)
    assert any(t.startswith("$SYS/broker/") for t, _ in sys_messages)  # retained $SYS topics exist
    assert ordinary.received(1) == []


def test_certificate_client_gets_only_its_own_rights(broker, connect, cert_client, admin):
    """Sending the admin's username over the certificate listener does not grant the admin's rights."""
    ctx = mqttprobe.tls_context(LAB["ca_file"], cert_client["certfile"], cert_client["keyfile"])
    s = mqttprobe.session(broker["address"], broker["listeners"]["certificate"], ctx, broker["tls_server_name"],
                          username=admin["username"], password="ignored", client_id=cert_client["username"])
    try:
        s.subscribe("$SYS/#")
        assert s.received(2) == []
    finally:
        s.close()
