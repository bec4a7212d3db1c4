"""rampart.mqttload's packets, against the MQTT 3.1.1 specification's encodings, and its receive path: a stream cut
anywhere parses into the same packets, and a lost or reordered message is counted (scripts/bench-broker fails the run
on it). The generator against real brokers runs in scripts/test's lab step (scripts/bench --quick, which runs
scripts/bench-broker --quick)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from rampart import mqttload


@pytest.mark.parametrize(("value", "encoded"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"), (268_435_455, b"\xff\xff\xff\x7f"),  # the spec's table 2.4
])
def test_remaining_length_is_the_specs_variable_byte_integer(value, encoded):
    assert mqttload.varint(value) == encoded


def test_connect_carries_protocol_level_4_clean_session_and_the_credentials():
    packet = mqttload.connect_packet("pub-1", "pub-1", "s3cret", keepalive=60)
    body = (b"\x00\x04MQTT\x04" + bytes([0x80 | 0x40 | 0x02]) + b"\x00\x3c" + b"\x00\x05pub-1" + b"\x00\x05pub-1"
            + b"\x00\x06s3cret")
    assert packet == b"\x10" + bytes([len(body)]) + body
    anonymous = mqttload.connect_packet("sub-1", None, None)
    assert anonymous[9] == 0x02 and anonymous.endswith(b"\x00\x05sub-1")


def test_subscribe_has_the_reserved_flags_and_the_requested_qos():
    assert mqttload.subscribe_packet("bench/a", 1, packet_id=7) == b"\x82\x0c\x00\x07\x00\x07bench/a\x01"


@pytest.mark.parametrize("qos", [0, 1])
def test_a_publish_template_is_a_whole_packet_with_sequence_time_and_packet_id(qos):
    template = mqttload.Template("bench/bench-pub-0001", qos, payload=200)  # remaining length > 127: two bytes
    packet = template.packet(70_000, 123_456_789)
    (first, start, end), (rest, at, _) = list(mqttload.packets(packet))
    assert (first, start, end, rest, at) == (0x30 | qos << 1, 3, len(packet), None, len(packet))
    assert packet[3:5] == struct.pack(">H", len("bench/bench-pub-0001"))
    p = 5 + len("bench/bench-pub-0001")
    if qos:
        assert packet[p:p + 2] == struct.pack(">H", 70_000 % 65535 + 1)
        p += 2
    assert mqttload.PAYLOAD_HEADER.unpack_from(packet, p) == (70_000, 123_456_789)
    assert len(packet) - p == 200


def test_a_stream_cut_anywhere_parses_into_the_same_packets():
    template = mqttload.Template("t/x", 1, payload=300)
    stream = b"".join(template.packet(i, i) for i in range(3)) + b"\x40\x02\x00\x01"
    whole = [(f, stream[s:e]) for f, s, e in mqttload.packets(stream) if f is not None]
    assert len(whole) == 4
    for cut in range(1, len(stream)):
        got, buf = [], b""
        for chunk in (stream[:cut], stream[cut:]):
            buf += chunk
            for first, start, end in mqttload.packets(buf):
                if first is None:
                    buf = buf[start:]
                    break
                got.append((first, buf[start:end]))
        assert got == whole, cut


class _Transport:
    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(data)


def _subscriber_receives(qos: int, sequence: list[int]) -> tuple[mqttload.PairState, list[bytes]]:
    async def scenario():
        load = mqttload.Load("h", 1, (), qos=qos, window=len(sequence), warmup=0, seconds=60)
        pair = mqttload.Pair("p", "s", "t/x")
        state = mqttload.PairState(pair, load, mqttload.Clock(0, load))
        state.publisher = mqttload.Session(state, "publisher")
        state.publisher.connection_made(_Transport())
        state.sending, state.sent = True, len(sequence)
        session = mqttload.Session(state, "subscriber")
        transport = _Transport()
        session.connection_made(transport)
        template = mqttload.Template("t/x", qos, payload=64)
        session.data_received(b"".join(template.packet(s, 0) for s in sequence))
        return state, transport.written
    return asyncio.run(scenario())


def test_messages_received_in_order_are_counted_and_acknowledged():
    state, written = _subscriber_receives(1, [0, 1, 2])
    assert (state.got, state.disorder) == (3, 0)
    assert written == [b"\x40\x02\x00\x01\x40\x02\x00\x02\x40\x02\x00\x03"]


def test_a_lost_or_reordered_message_is_counted():
    state, written = _subscriber_receives(0, [0, 2, 1])
    assert (state.got, state.disorder) == (3, 2)
    assert written == []
