"""MQTT over TLS from the control node: exact CONNACK probes (raw packets) and paho-mqtt sessions.

Used by the behavioural tests and by ``rampart-probe`` (the lab's copy-paste client).
Every connection goes to an address from a deployment description (lab.json), i.e. to the project's
own containers, with timeouts.
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import ssl
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MQTT311 = 4
MQTT5 = 5


class NamedContext(ssl.SSLContext):
    """An SSLContext that verifies a fixed server name, whatever address the client connects to.

    paho-mqtt verifies the certificate against the host it connects to; the lab connects to an IP
    address and must still verify the broker's DNS name.
    """

    server_name: str | None = None

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
        return super().wrap_socket(sock, *args, server_hostname=self.server_name or server_hostname, **kwargs)


def tls_context(ca_file: str | None, certfile: str | None = None, keyfile: str | None = None,
                minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None,
                ciphers: str | None = None, verify: bool = True) -> ssl.SSLContext:
    ctx = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile=ca_file)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def _utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, username: str | None = None, password: str | None = None,
                   protocol: int = MQTT311, keepalive: int = 30) -> bytes:
    flags = 0x02  # clean session / clean start
    payload = _utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
    if password is not None:
        flags |= 0x40
        payload += _utf8(password)
    variable = _utf8("MQTT") + bytes([protocol, flags]) + keepalive.to_bytes(2, "big")
    if protocol == MQTT5:
        variable += b"\x00"  # no properties
    body = variable + payload
    return b"\x10" + _remaining_length(len(body)) + body


@dataclass
class ConnectResult:
    """What a raw CONNECT got back: a CONNACK code, or the connection closed/refused at TLS level."""

    outcome: str  # "connack" | "closed" | "tls-error" | "refused"
    code: int | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome == "connack" and self.code == 0


def raw_connect(address: str, port: int, ctx: ssl.SSLContext | None, server_name: str | None,
                username: str | None = None, password: str | None = None, protocol: int = MQTT311,
                client_id: str | None = None, timeout: float = 5.0, keepalive: int = 30) -> ConnectResult:
    """Send one CONNECT (TLS unless ctx is None) and report the CONNACK code exactly."""
    client_id = client_id if client_id is not None else f"probe-{uuid.uuid4().hex[:8]}"
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        return ConnectResult("refused", detail=str(exc))
    try:
        sock = ctx.wrap_socket(raw, server_hostname=server_name) if ctx else raw
        sock.sendall(connect_packet(client_id, username, password, protocol, keepalive))
        head = sock.recv(2)
        if len(head) < 2:
            return ConnectResult("closed", detail="connection closed without CONNACK")
        body = b""
        while len(body) < head[1]:
            chunk = sock.recv(head[1] - len(body))
            if not chunk:
                break
            body += chunk
        if head[0] != 0x20 or len(body) < 2:
            return ConnectResult("closed", detail=f"unexpected reply {head + body!r}")
        return ConnectResult("connack", code=body[1])
    except ssl.SSLError as exc:
        return ConnectResult("tls-error", detail=str(exc))
    except (ConnectionResetError, BrokenPipeError, TimeoutError, OSError) as exc:
        return ConnectResult("closed", detail=str(exc))
    finally:
        raw.close()


@dataclass
class Session:
    """A connected paho-mqtt client that records what it receives and the broker's acks."""

    client: paho.Client
    messages: queue.Queue = field(default_factory=queue.Queue)
    acks: dict[int, Any] = field(default_factory=dict)
    subacks: list[Any] = field(default_factory=list)
    connect_code: Any = None
    connack_properties: Any = None  # MQTT 5: the broker's CONNACK properties (e.g. ReceiveMaximum)
    disconnect_code: Any = None
    connected: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    # With manual_ack: the (mid, qos) of each received message not acknowledged yet (see ack_all).
    unacked: queue.Queue = field(default_factory=queue.Queue)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, timeout: float = 5.0, retain: bool = False,
                expiry: int | None = None) -> Any:
        """Publish and wait for the PUBACK; returns the reason code (v5) or 0 (v3). ``expiry`` (MQTT 5): the
        message expiry interval in seconds."""
        props = None
        if expiry is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = expiry
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos:
            info.wait_for_publish(timeout)
            deadline = time.monotonic() + timeout
            while info.mid not in self.acks and time.monotonic() < deadline:
                time.sleep(0.01)
            return self.acks.get(info.mid)
        return None

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> Any:
        before = len(self.subacks)
        self.client.subscribe(topic, qos=qos)
        deadline = time.monotonic() + timeout
        while len(self.subacks) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.subacks[-1] if len(self.subacks) > before else None

    def received(self, wait: float = 2.0) -> list[tuple[str, bytes]]:
        """Everything received within ``wait`` seconds from now."""
        out = []
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                break
        return out

    def ack_all(self) -> int:
        """With manual_ack: acknowledge every message received so far; returns how many."""
        count = 0
        while True:
            try:
                mid, qos = self.unacked.get_nowait()
            except queue.Empty:
                return count
            self.client.ack(mid, qos)
            count += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _record_events(s: Session, manual_ack: bool) -> None:
    """Wire the client's callbacks to the session's records."""
    client = s.client

    def on_connect(_c, _u, _flags, reason, props):
        s.connect_code = reason
        s.connack_properties = props
        s.connected.set()

    def on_disconnect(_c, _u, _flags, reason, _props):
        s.disconnect_code = reason
        s.disconnected.set()

    def on_message(_c, _u, msg):
        s.messages.put((msg.topic, msg.payload))
        if manual_ack and msg.qos:
            s.unacked.put((msg.mid, msg.qos))

    def on_publish(_c, _u, mid, reason, _props):
        s.acks[mid] = reason

    def on_subscribe(_c, _u, _mid, reasons, _props):
        s.subacks.append(reasons)

    client.on_connect, client.on_disconnect, client.on_message = on_connect, on_disconnect, on_message
    client.on_publish, client.on_subscribe = on_publish, on_subscribe


def session(address: str, port: int, ctx: NamedContext | None, server_name: str, username: str | None = None,
            password: str | None = None, protocol: int = MQTT5, client_id: str | None = None,
            timeout: float = 10.0, session_expiry: int = 0, manual_ack: bool = False) -> Session:
    """Connect with paho-mqtt; raises ConnectionError when the broker does not accept.

    ``manual_ack``: QoS 1/2 messages are acknowledged only by :meth:`Session.ack_all` (to watch the broker's
    in-flight window).

    ``session_expiry`` > 0 (MQTT 5): resume the client id's session if the broker kept one, and ask the broker to
    keep it that many seconds after the disconnect (its subscriptions and the QoS 1/2 messages queued for it).
    """
    proto = paho.MQTTv5 if protocol == MQTT5 else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"s-{uuid.uuid4().hex[:8]}",
                         protocol=proto, manual_ack=manual_ack)
    s = Session(client)
    if ctx is not None:  # None: plaintext (only to audit a broker that offers it)
        ctx.server_name = server_name
        client.tls_set_context(ctx)
    if username is not None:
        client.username_pw_set(username, password)

    _record_events(s, manual_ack)
    props = None
    if protocol == MQTT5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry
    clean_start = session_expiry == 0 if protocol == MQTT5 else 3
    client.connect_async(address, port, keepalive=30, clean_start=clean_start, properties=props)
    client.loop_start()
    if not s.connected.wait(timeout) or getattr(s.connect_code, "is_failure", True):
        client.loop_stop()
        raise ConnectionError(f"{username or 'anonymous'}: connect failed ({s.connect_code})")
    return s


def load_description(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def client_session(lab: dict, name: str, protocol: int = MQTT5, broker: int = 0) -> Session:
    """A session for a client of the description (password or certificate)."""
    b = lab["brokers"][broker]
    c = next(c for c in lab["clients"] if c["name"] == name)
    ctx = tls_context(lab["ca_file"], c.get("certfile"), c.get("keyfile"))
    port = c.get("port", b["port"])
    return session(b["address"], port, ctx, b["tls_server_name"],
                   username=c["username"] if c["auth"] == "password" else None,
                   password=c.get("password"), protocol=protocol, client_id=c["username"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rampart-probe",
                                     description="Talk to a broker described by lab.json as one of its clients.")
    parser.add_argument("--lab", default=".lab/lab.json")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sub")
    p.add_argument("client")
    p.add_argument("topic")
    p.add_argument("--seconds", type=float, default=30.0)
    p = sub.add_parser("pub")
    p.add_argument("client")
    p.add_argument("topic")
    p.add_argument("message")
    args = parser.parse_args(argv)
    lab = load_description(args.lab)
    s = client_session(lab, args.client)
    try:
        if args.cmd == "pub":
            print(f"PUBACK: {s.publish(args.topic, args.message)}")
        else:
            print(f"SUBACK: {s.subscribe(args.topic)}")
            for topic, payload in s.received(args.seconds):
                print(f"{topic} {payload.decode(errors='replace')}")
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
