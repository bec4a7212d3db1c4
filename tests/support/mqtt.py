"""MQTT sessions and single connects against a broker of the description, from the control node."""

from __future__ import annotations

import uuid

from rampart import mqttprobe


def concrete(topic_filter: str, tag: str | None = None) -> str:
    """A concrete topic that the filter matches, unique per call."""
    tag = tag or uuid.uuid4().hex[:8]
    levels = [("x" if lvl == "+" else lvl) for lvl in topic_filter.split("/")]
    if levels[-1] == "#":
        levels[-1] = f"probe-{tag}"
    return "/".join(levels)  # a filter without '#' names its topic (with '+' levels filled in)


def accepted(puback) -> bool:
    """A PUBACK reason code of success (with nobody subscribed it is 16, "no matching subscribers")."""
    return puback is not None and not puback.is_failure


def port_for(broker: dict, client: dict) -> int:
    """The port of the listener that serves the client's authentication (lab.json keys listeners by it)."""
    return broker["listeners"][client["auth"]]


def open_session(ca_file: str, broker: dict, client: dict, protocol: int = mqttprobe.MQTT5,
                 password: str | None = None, session_expiry: int = 0, manual_ack: bool = False,
                 **tls) -> mqttprobe.Session:
    """A connected session of a client of the description (its certificate or password)."""
    ctx = mqttprobe.tls_context(ca_file, client.get("certfile"), client.get("keyfile"), **tls)
    pw = password if password is not None else client.get("password")
    return mqttprobe.session(broker["address"], port_for(broker, client), ctx, broker["tls_server_name"],
                             username=None if client["auth"] == "certificate" else client["username"],
                             password=pw, protocol=protocol, client_id=client["username"],
                             session_expiry=session_expiry, manual_ack=manual_ack)


def probe(ca_file: str, broker: dict, port: int, username=None, password=None, protocol=mqttprobe.MQTT311,
          ctx=None, server_name=None, certfile=None, keyfile=None) -> mqttprobe.ConnectResult:
    """One CONNECT and its outcome (CONNACK code, TLS error, closed)."""
    ctx = ctx or mqttprobe.tls_context(ca_file, certfile, keyfile)
    return mqttprobe.raw_connect(broker["address"], port, ctx, server_name or broker["tls_server_name"],
                                 username=username, password=password, protocol=protocol)


def topic_in(filter_: str, leaf: str) -> str:
    """A concrete topic under a bridge rule's filter ('readings/#' -> 'readings/<leaf>')."""
    assert filter_.endswith("/#"), f"a bridge rule of the tests ends with '/#': {filter_}"
    return filter_[:-1] + leaf


def crossed(sender, topic: str, watcher, expected_topic: str, tries: int = 20) -> bool:
    """Publish on one broker until the message shows on the other as ``expected_topic`` (a bridge may still be
    dialling after a restart: restart_timeout backs off from 2 s)."""
    for i in range(tries):
        payload = f"probe-{uuid.uuid4().hex[:6]}-{i}".encode()
        assert accepted(sender.publish(topic, payload, qos=1))
        if (expected_topic, payload) in watcher.received(1):
            return True
    return False
