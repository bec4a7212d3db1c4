"""Persistence by behaviour, not by a config line: a durable session and the QoS 1 messages queued for it while
it was away survive a restart of the broker (marked converges: it restarts the broker, so it runs after the
read-only tests, in Molecule on both releases)."""

import time

import pytest

from tests.support.mqtt import concrete

from .conftest import DURABLE_EXPIRY, leave_durable_subscription, open_session, probe

pytestmark = pytest.mark.converges



def wait_until_serving(broker, client, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not probe(broker, broker["listeners"]["password"], username=client["username"],
                    password=client["password"]).accepted:
        assert time.monotonic() < deadline, "the broker did not come back after the restart"
        time.sleep(0.5)


def test_queued_qos1_messages_of_a_durable_session_survive_a_restart(broker, host, publisher, reader):
    topic = concrete(publisher["publish"][0])
    leave_durable_subscription(broker, reader, topic, DURABLE_EXPIRY)
    sender = open_session(broker, publisher)
    try:
        queued = [f"queued-{i}".encode() for i in range(3)]
        assert [sender.publish(topic, payload, qos=1) for payload in queued] == [0, 0, 0]
    finally:
        sender.close()

    assert host.run("systemctl restart mosquitto").rc == 0
    wait_until_serving(broker, publisher)

    back = open_session(broker, reader, session_expiry=DURABLE_EXPIRY)
    try:
        assert [payload for t, payload in back.received(5) if t == topic] == queued
    finally:
        back.close()
        # A clean start ends the durable session, so nothing is left queued for the next test.
        open_session(broker, reader).close()
