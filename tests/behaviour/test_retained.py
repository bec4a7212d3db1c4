"""Retained messages that expire (MQTT 5 message expiry interval), against the real broker:

  * a retained message whose expiry interval has passed is never delivered to a new subscriber, while one inside its
    interval is;
  * every ``retain_expiry_interval`` minutes the broker sweeps the expired retained messages nobody reads, so they
    do not stay in memory: its own count (``$SYS/broker/retained messages/count``) drops by exactly the number that
    expired, although no client subscribed to them. Without the sweep (Mosquitto's default) they stay until someone
    subscribes or publishes on their topics. The lab and Molecule sweep every minute; one test waits for a sweep on
    every broker at once (about a minute).

A retained message published without an expiry interval is kept until it is replaced or cleared: Mosquitto 2.0 has
no option that imposes one (roles/mosquitto/README.md, what 2.0 cannot enforce).
"""

from __future__ import annotations

import time
import uuid

from tests.support.mqtt import accepted

from .conftest import LAB, open_session

RETAINED_COUNT = "$SYS/broker/retained messages/count"
SYS_INTERVAL = 10  # seconds between the broker's $SYS updates (Mosquitto's default; the role does not change it)
SWEPT = 20  # retained messages left to expire per broker


def sys_reader() -> dict:
    """The client of the description that may publish on commands/# and read everything, $SYS included."""
    return next(c for c in LAB["clients"] if c["admin"] and c["auth"] == "password" and "$SYS/#" in c["subscribe"])


def unique_topic() -> str:
    return f"commands/rampart-test-retained-{uuid.uuid4().hex[:8]}"


def retained_count(broker: dict) -> int:
    """The broker's count of retained messages, as its latest $SYS update says (a retained topic itself)."""
    session = open_session(broker, sys_reader())
    try:
        session.subscribe(RETAINED_COUNT)
        got = [int(payload) for topic, payload in session.received(1) if topic == RETAINED_COUNT]
    finally:
        session.close()
    assert got, f"{broker['name']} did not send {RETAINED_COUNT}"
    return got[-1]


def test_an_expired_retained_message_is_not_delivered_and_an_unexpired_one_is(broker):
    base = unique_topic()
    publisher = open_session(broker, sys_reader())
    try:
        assert accepted(publisher.publish(f"{base}/expired", b"expired", retain=True, expiry=1))
        assert accepted(publisher.publish(f"{base}/kept", b"kept", retain=True, expiry=600))
    finally:
        publisher.close()
    time.sleep(2.5)

    reader = open_session(broker, sys_reader())
    try:
        reader.subscribe(f"{base}/#")
        got = reader.received(2)
        reader.publish(f"{base}/kept", b"", retain=True)  # an empty retained message clears the topic
    finally:
        reader.close()
    assert got == [(f"{base}/kept", b"kept")]


def test_expired_retained_messages_nobody_reads_are_swept_from_the_brokers_memory():
    brokers = LAB["brokers"]
    interval = max(b["retain_expiry_interval"] for b in brokers)
    assert all(b["retain_expiry_interval"] > 0 for b in brokers), "a broker of the description never sweeps"
    # They expire after the broker's next $SYS update has counted them, so the count is seen to rise and then fall.
    expiry = SYS_INTERVAL + 2
    base = unique_topic()
    for broker in brokers:
        publisher = open_session(broker, sys_reader())
        try:
            acks = [publisher.publish(f"{base}/{i}", b"x", retain=True, expiry=expiry) for i in range(SWEPT)]
            assert all(accepted(ack) for ack in acks), acks
        finally:
            publisher.close()

    # The highest count seen since (a $SYS update may still show what earlier tests left, so no count from before
    # the publishing is trusted), and the latest: a sweep shows as a fall of exactly SWEPT from the highest.
    names = [b["name"] for b in brokers]
    peak, now = dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    deadline = time.monotonic() + expiry + interval * 60 + 2 * SYS_INTERVAL
    while time.monotonic() < deadline:
        for broker in brokers:
            name = broker["name"]
            now[name] = retained_count(broker)
            peak[name] = max(peak[name], now[name])
        if all(peak[n] - now[n] >= SWEPT for n in names):
            break
        time.sleep(2)
    for name in names:
        assert peak[name] - now[name] == SWEPT, \
            f"{name}: {peak[name] - now[name]} of {SWEPT} expired retained messages swept within {interval} min"
