"""Behavioural tests against a deployed broker, from the control node.

What to test comes from the deployment description (tests/support/lab.py, the .lab/lab.json schema):
  RAMPART_TARGET     path of the description (default .lab/lab.json)
  RAMPART_INVENTORY  Ansible inventory of the same hosts (testinfra checks when a broker is no container)
  RAMPART_CONVERGE   JSON list: the command that converges the brokers (tests add -e @extra-vars);
                     default: the lab's (tests/support/ansible.py), which converges only what the tests change
scripts/test sets these for the lab; molecule/default/verify.yml for Molecule.
"""

from __future__ import annotations

import os
import time

import pytest
import testinfra

from rampart import mqttprobe
from tests.support import INVENTORIES, ansible, mqtt
from tests.support import lab as description
from tests.support.docker import container_host
from tests.support.mqtt import concrete

LAB = description.load()

# The broker the converging tests change (marker converges): one, the last of the description (Debian 13 in
# Molecule default, the lab's only broker). They prove the roles' change paths (reload, restart, rollback,
# revocation, renewal, the CA's rotation and restore), the same code on both releases with the same Mosquitto
# (2.0.21: Debian 13's, and Debian 12's from backports, the default), and a converge of one broker costs about a
# third less than of two. The read-only tests run on every broker; the scheduled CRL refresh runs as its unit runs
# it, on every host.
CONVERGED = LAB["brokers"][-1:]


def converge(extra_vars: dict | None, tmp_path, *args: str):
    """Converge the CONVERGED broker (with ``-e @extra_vars`` and ``args``). The collectors stay in the run:
    validation refuses a --limit that leaves out a collector its senders need."""
    limit = ",".join([*(b["name"] for b in CONVERGED), "collectors"])
    return ansible.converge(extra_vars, tmp_path, "--limit", limit, *args)


def open_session(broker: dict, client: dict, protocol: int = mqttprobe.MQTT5, password: str | None = None,
                 **tls) -> mqttprobe.Session:
    return mqtt.open_session(LAB["ca_file"], broker, client, protocol, password, **tls)


def probe(broker: dict, port: int, **kw) -> mqttprobe.ConnectResult:
    return mqtt.probe(LAB["ca_file"], broker, port, **kw)


@pytest.fixture
def connect(broker):
    """Open sessions for clients of the description; closes them after the test."""
    opened: list[mqttprobe.Session] = []

    def _connect(client: dict, **kw) -> mqttprobe.Session:
        s = open_session(broker, client, **kw)
        opened.append(s)
        return s

    yield _connect
    for s in opened:
        s.close()


def broker_host(broker: dict):
    """The broker host: through Docker when it is one of our containers (lab, Molecule), else through Ansible."""
    if broker.get("container"):
        return container_host(broker["container"])
    inventory = os.environ.get("RAMPART_INVENTORY", str(INVENTORIES / "lab"))
    return testinfra.get_host(f"ansible://{broker['name']}", ansible_inventory=inventory)


@pytest.fixture(scope="module")
def host(broker):
    return broker_host(broker)


def inventory_clients() -> list[dict]:
    return description.inventory_clients(LAB)


def leave_durable_subscription(broker: dict, client: dict, topic: str, expiry: int) -> None:
    """Subscribe ``client`` to ``topic`` at QoS 1 in a session the broker keeps ``expiry`` seconds, then go away."""
    away = open_session(broker, client, session_expiry=expiry)
    try:
        assert away.subscribe(topic, qos=1) is not None
    finally:
        away.close()


DURABLE_EXPIRY = 600  # seconds the broker keeps a test's durable session after the disconnect


def queued_while_away(broker, publisher, reader, payloads: list[bytes], expected: int) -> list[bytes]:
    """Leave a durable QoS 1 subscription, publish ``payloads`` at QoS 1 while it is away, and return what the
    session gets when it comes back: ``expected`` messages or what came in 20 s, and anything a second later."""
    topic = concrete(publisher["publish"][0])
    leave_durable_subscription(broker, reader, topic, DURABLE_EXPIRY)
    sender = open_session(broker, publisher)
    try:
        assert [sender.publish(topic, payload, qos=1) for payload in payloads] == [0] * len(payloads)
    finally:
        sender.close()

    return collect_durable(broker, reader, topic, expected)


def collect_durable(broker: dict, reader: dict, topic: str, expected: int, wait: float = 20) -> list[bytes]:
    """Come back to ``reader``'s durable session (dialling again while the broker is still starting) and return what
    it gets on ``topic``: ``expected`` messages or what came within ``wait`` s, and anything a second later; then end
    the session with a clean start."""
    deadline = time.monotonic() + wait
    back = None
    while back is None:
        try:
            back = open_session(broker, reader, session_expiry=DURABLE_EXPIRY)
        except OSError:  # refused or reset while the broker starts
            assert time.monotonic() < deadline, f"{broker['name']} did not take the session back within {wait} s"
            time.sleep(0.5)
    try:
        got: list[bytes] = []
        while len(got) < expected and time.monotonic() < deadline:
            got += [payload for t, payload in back.received(0.5) if t == topic]
        got += [payload for t, payload in back.received(1) if t == topic]  # and nothing beyond the limit
    finally:
        back.close()
        open_session(broker, reader).close()  # a clean start ends the durable session
    return got


def padded_payloads(tag: str, count: int, size: int) -> list[bytes]:
    """``count`` payloads of exactly ``size`` bytes, numbered in order (the first 12 bytes tell them apart)."""
    return [f"{tag[:5]}-{i:05d}-".encode().ljust(size, b".") for i in range(count)]
