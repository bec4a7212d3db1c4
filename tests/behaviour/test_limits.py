"""The broker's limits by behaviour: an oversize packet disconnects the client and is not delivered; a durable
session's queue stops at max_queued_messages, and at max_queued_bytes on its own; a client gets at most
max_inflight_messages unacknowledged; the running broker has the unit's open-file limit and the QoS ceiling. An MQTT 5
client is told each limit in the CONNACK (maximum packet size, receive maximum, maximum QoS).
(max_connections: test_changes_by_converge.py, high profile.)"""


from tests.support.mqtt import concrete

from .conftest import broker_host, padded_payloads, queued_while_away


def test_oversize_packet_refused(broker, connect, publisher, admin):
    limit = int(broker["max_packet_size"])
    watcher = connect(admin)
    topic = concrete(publisher["publish"][0])
    watcher.subscribe(topic)
    sender = connect(publisher)
    assert sender.connack_properties.MaximumPacketSize == limit
    assert sender.publish(topic, b"small", qos=1) == 0  # positive control
    sender.client.publish(topic, b"x" * (limit + 1024), qos=1)
    assert sender.disconnected.wait(5), "the broker kept a client that sent an oversize packet"
    got = watcher.received(2)
    assert (topic, b"small") in got
    assert all(len(payload) <= limit for _, payload in got)


def _journal_since(host, since: str) -> str:
    return host.check_output(f"journalctl -u mosquitto --since @{since} --no-pager --output=cat")


def test_a_durable_sessions_queue_stops_at_max_queued_messages(broker, publisher, reader):
    """While a durable session is away, the broker queues its QoS 1 messages up to max_queued_messages and drops
    the rest: the session comes back to the oldest ones, exactly the limit (max_queued_bytes is far above), and
    the broker's log says it dropped messages for that client."""
    limit = int(broker["max_queued_messages"])
    host = broker_host(broker)
    since = host.check_output("date +%s")
    sent = [f"queued-{i:05d}".encode() for i in range(limit + 50)]

    got = queued_while_away(broker, publisher, reader, sent, limit)

    assert got == sent[:limit], f"{len(got)} messages came back, not the first {limit} of {len(sent)}"
    assert f"Outgoing messages are being dropped for client {reader['username']}." in _journal_since(host, since)


def test_a_durable_sessions_queue_stops_at_max_queued_bytes(broker, publisher, reader):
    """The byte limit on its own: with payloads of 200 kB, max_queued_bytes (10 MiB by default) stops the queue long
    before max_queued_messages. The broker queues a message while the payload bytes it holds for the session are
    below the limit, so ceil(limit / size) come back, the oldest ones, and the broker says it dropped the rest."""
    limit = int(broker["max_queued_bytes"])
    assert limit > 0, "this deployment sets no byte limit on queues"
    size = min(200_000, int(broker["max_packet_size"]) - 1024)
    expected = -(-limit // size)
    assert expected + 10 <= int(broker["max_queued_messages"]), "the message count would stop the queue first"
    host = broker_host(broker)
    since = host.check_output("date +%s")
    sent = padded_payloads("bytes", expected + 10, size)

    got = queued_while_away(broker, publisher, reader, sent, expected)

    assert [p[:12] for p in got] == [p[:12] for p in sent[:expected]], \
        f"{len(got)} messages of {size} bytes came back, not the first {expected} of {len(sent)}"
    assert got == sent[:expected]
    assert f"Outgoing messages are being dropped for client {reader['username']}." in _journal_since(host, since)


def test_a_client_gets_at_most_max_inflight_messages_unacknowledged(broker, connect, publisher, reader):
    """The broker sends a QoS 1 subscriber at most max_inflight_messages it has not acknowledged, and the next ones
    only as acknowledgements come back."""
    window = int(broker["max_inflight_messages"])
    topic = concrete(publisher["publish"][0])
    slow = connect(reader, manual_ack=True)
    assert slow.connack_properties.ReceiveMaximum == window, "the broker announces another receive maximum"
    assert slow.subscribe(topic, qos=1) is not None
    sender = connect(publisher)
    sent = [f"inflight-{i:04d}".encode() for i in range(window + 30)]
    assert [sender.publish(topic, payload, qos=1) for payload in sent] == [0] * len(sent)

    first = [payload for t, payload in slow.received(3) if t == topic]
    assert first == sent[:window], f"{len(first)} unacknowledged messages arrived, the window is {window}"
    rest: list[bytes] = []
    for _ in range(20):
        slow.ack_all()
        rest += [payload for t, payload in slow.received(0.5) if t == topic]
        if len(first) + len(rest) == len(sent):
            break
    assert first + rest == sent


def test_the_running_broker_has_the_units_open_file_limit(broker):
    """LimitNOFILE as the kernel applies it to the broker's main process (soft and hard), above the connections
    the listeners admit, so max_connections, not the file table, is what refuses a flood."""
    host = broker_host(broker)
    pid = host.check_output("systemctl show -p MainPID --value mosquitto").strip()
    assert pid not in ("", "0"), "mosquitto has no main process"
    limits = host.check_output(f"cat /proc/{pid}/limits").splitlines()
    line = next(ln for ln in limits if ln.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert (int(soft), int(hard)) == (int(broker["limit_nofile"]),) * 2, line
    assert int(soft) > int(broker["max_connections"]) * len(broker["listeners"])


def test_a_publish_above_max_qos_disconnects_the_client_and_is_not_delivered(broker, connect, publisher, admin):
    """The QoS ceiling (guide 000: no abuse of high QoS levels): a client that publishes above max_qos is
    disconnected and its message goes nowhere; at max_qos it is delivered (positive control)."""
    ceiling = int(broker["max_qos"])
    assert ceiling < 2, "the deployment allows QoS 2, so there is no publish above the ceiling to try"
    watcher = connect(admin)
    topic = concrete(publisher["publish"][0])
    watcher.subscribe(topic)
    sender = connect(publisher)
    assert sender.connack_properties.MaximumQoS == ceiling
    assert sender.publish(topic, b"at-the-ceiling", qos=ceiling) == 0
    sender.client.publish(topic, b"above-the-ceiling", qos=ceiling + 1)
    assert sender.disconnected.wait(5), "the broker kept a client that published above max_qos"
    got = watcher.received(2)
    assert (topic, b"at-the-ceiling") in got
    assert (topic, b"above-the-ceiling") not in got
