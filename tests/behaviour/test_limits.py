"""Packet-size limit: an oversize packet disconnects the client and is not delivered."""

from tests.support.mqtt import concrete


def test_oversize_packet_refused(broker, connect, publisher, admin):
    limit = int(broker["max_packet_size"])
    watcher = connect(admin)
    topic = concrete(publisher["publish"][0])
    watcher.subscribe(topic)
    sender = connect(publisher)
    assert sender.publish(topic, b"small", qos=1) == 0  # positive control
    sender.client.publish(topic, b"x" * (limit + 1024), qos=1)
    assert sender.disconnected.wait(5), "the broker kept a client that sent an oversize packet"
    got = watcher.received(2)
    assert (topic, b"small") in got
    assert all(len(payload) <= limit for _, payload in got)
