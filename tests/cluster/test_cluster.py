"""The multi-site lab (topologies/multi-site.yml; scripts/lab up --topology multi-site): two edge sites, each with its
broker on its own segment, bridged through a WireGuard tunnel to the core broker over mutual TLS.

What the single-site suites cannot show: a reading from each edge reaches the dashboard on the core under its own
site's prefix; a command from the core reaches only its device, at its site; the tunnel cut for a minute while an edge
keeps publishing QoS 1 loses nothing up to the edge's bound and delivers in order, while the other edge keeps
flowing; each edge unreachable from the other edge's segment and from the wan, so the bridge's certificate is of use
only where the core's firewall admits it; one bridge revoked through the inventory is refused at its next
handshake while the other edge keeps flowing. tests/bridge runs against this lab too (the mapping's limits in both
directions, the certificate's grants on the core, a revoked bridge refused at the handshake).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.behaviour.conftest import (
    broker_host,
    open_session,
    probe,
)
from tests.support import ANSIBLE_PLAYBOOK, PLAYBOOKS, ansible
from tests.support import lab as description
from tests.support.docker import tcp
from tests.support.mqtt import accepted, crossed, topic_in

LAB = description.require("sites", "bridges", "vantage_points")
BROKERS = {b["name"]: b for b in description.brokers(LAB)}
CLIENTS = {c["name"]: c for c in LAB["clients"]}
ACTIVE = [b for b in LAB["bridges"] if b["expect"] == "allowed"]
CUT_SECONDS = 60


def site_of(host: str) -> str:
    return next(site for site, spec in LAB["sites"].items() if host in spec["hosts"])


def test_the_description_has_two_edge_sites_bridged_to_the_core():
    assert len(LAB["sites"]) == 3, LAB["sites"]
    edges = {b["edge"] for b in ACTIVE}
    assert len(edges) == 2 and len({b["remote"] for b in ACTIVE}) == 1, ACTIVE
    for b in ACTIVE:
        assert site_of(b["edge"]) != site_of(b["remote"]), f"{b['identity']} does not leave its site"
    # Every broker has its own vantage points: its segment's clients, the other sites' clients, the outsider.
    for name in BROKERS:
        roles = {p["role"] for p in LAB["vantage_points"] if p.get("broker") == name}
        assert {"segment_client", "other_site_client", "outsider"} <= roles, (name, roles)


@pytest.mark.parametrize("bridge", ACTIVE, ids=[b["edge"] for b in ACTIVE])
def test_a_reading_from_each_edge_reaches_the_dashboard_under_its_sites_prefix(bridge):
    edge, core = BROKERS[bridge["edge"]], BROKERS[bridge["remote"]]
    out = bridge["out"][0]
    leaf = f"sensor-01/{uuid.uuid4().hex[:8]}"
    dashboard, sensor = open_session(core, CLIENTS["dashboard"]), open_session(edge, CLIENTS["sensor-01"])
    try:
        dashboard.subscribe("sites/+/sensors/#")
        arrives = topic_in(out["remote"], leaf)
        assert crossed(sensor, topic_in(out["local"], leaf), dashboard, arrives), \
            f"a reading on {edge['name']} never reached the dashboard on {core['name']} as {arrives}"
    finally:
        dashboard.close()
        sensor.close()


def test_a_command_from_the_core_reaches_only_its_device_at_its_site():
    """ops-admin on the core commands sensor-01 at the first edge's site: sensor-01 there gets it under its own
    commands/ tree; sensor-01 at the other edge (same name, other site) and device-cert-01 at the same site get
    nothing."""
    target, other = ACTIVE[0], ACTIVE[1]
    core = BROKERS[target["remote"]]
    here, there, device = (open_session(BROKERS[target["edge"]], CLIENTS["sensor-01"]),
                           open_session(BROKERS[other["edge"]], CLIENTS["sensor-01"]),
                           open_session(BROKERS[target["edge"]], CLIENTS["device-cert-01"]))
    admin = open_session(core, CLIENTS["ops-admin"])
    try:
        here.subscribe("commands/sensor-01/#")
        there.subscribe("commands/sensor-01/#")
        device.subscribe("commands/device-cert-01/#")
        assert crossed(admin, topic_in(target["in"][0]["remote"], "sensor-01/set"), here, "commands/sensor-01/set")
        assert there.received(1) == [], f"{other['edge']} got a command for {target['edge']}'s site"
        assert device.received(0.2) == []
    finally:
        for s in (here, there, device, admin):
            s.close()


def reaches(container: str, address: str, port: int) -> bool:
    return tcp(container, address, port, timeout=3) == "open"


def wan_address(broker: str) -> str:
    return next(p["broker_address"] for p in LAB["vantage_points"]
                if p["role"] == "outsider" and p.get("broker") == broker)


def test_each_edge_is_unreachable_from_the_other_edges_segment_the_wan_and_the_tunnel():
    """From the other edge's client (its segment), from the other edge's broker (on the wan, and a peer of the same
    tunnel) and from the outsider: no TCP connection to an edge's MQTT ports, at any of its addresses. The edge's
    own client and the core (its bridge's far end, through the tunnel) are the controls."""
    a, b = (BROKERS[bridge["edge"]] for bridge in ACTIVE)
    ports = sorted(set(a["listeners"].values()))
    outsider = next(p["container"] for p in LAB["vantage_points"] if p["role"] == "outsider")
    client_of = {p.get("broker"): p["container"] for p in LAB["vantage_points"] if p["role"] == "segment_client"}
    wrong = []
    for edge, other in ((a, b), (b, a)):
        for port in ports:
            wan = wan_address(edge["name"])
            for source, address in ((client_of[other["name"]], edge["address"]), (other["container"], edge["address"]),
                                    (other["container"], wan), (outsider, wan)):
                if reaches(source, address, port):
                    wrong.append(f"{source} reaches {edge['name']} at {address}:{port}")
        assert reaches(client_of[edge["name"]], edge["address"], ports[0]), f"{edge['name']}'s own client is cut off"
    core = BROKERS[ACTIVE[0]["remote"]]
    assert reaches(a["container"], core["address"], core["listeners"]["certificate"]), "the tunnel carries no bridge"
    assert not wrong, wrong


def tunnel(edge: dict, action: str) -> None:
    broker_host(edge).run_expect([0], f"systemctl {action} wg-quick@wg0")


def since(host) -> str:
    """The host's clock now, for journalctl --since."""
    return "@" + host.check_output("date +%s")


def bridge_log(host, start: str) -> str:
    return host.check_output(f"journalctl -u mosquitto --since={start} --no-pager -o cat")


@pytest.mark.outage
def test_a_tunnel_cut_for_a_minute_keeps_the_oldest_readings_up_to_the_bound_and_the_other_edge_keeps_flowing():
    """WireGuard stopped on the first edge for a minute while sensor-01 publishes there twice the edge's queue bound
    and more at QoS 1, spread over the minute, and ops-admin stays subscribed on the core. When the tunnel is back
    the reader gets the oldest readings, in order, with no gap: the edge's bound and at most two in-flight windows
    more (measured: 1,040 of 2,025 with a bound of 1,000 and a window of 20, twice the same); the rest are lost.
    Mosquitto 2.0.21 logs nothing on the edge for this loss: the bridge never found the link dead (it pings only
    after a keepalive interval without sending, and it kept sending); the core dropped the silent connection at its
    keepalive, and the edge dialled again when the tunnel was back. Meanwhile the other edge's readings keep reaching
    the core."""
    bridge, other = ACTIVE
    edge, far, core = BROKERS[bridge["edge"]], BROKERS[other["edge"]], BROKERS[bridge["remote"]]
    bound, window = edge["max_queued_messages"], edge["max_inflight_messages"]
    leaf = f"sensor-01/cut-{uuid.uuid4().hex[:8]}"
    remote_topic = topic_in(bridge["out"][0]["remote"], leaf)
    payloads = [f"c-{i:05d}".encode() for i in range(2 * bound + 25)]
    batches, flowed, edge_host = 10, False, broker_host(edge)
    chunk = -(-len(payloads) // batches)
    reader = open_session(core, CLIENTS["ops-admin"])
    got: list[bytes] = []
    try:
        reader.subscribe(remote_topic, qos=1)
        start = since(edge_host)
        tunnel(edge, "stop")
        try:
            started = time.monotonic()
            sender = open_session(edge, CLIENTS["sensor-01"])
            try:
                for k in range(batches):  # in order, a tenth of them every tenth of the minute
                    assert all([accepted(sender.publish(topic_in(bridge["out"][0]["local"], leaf), p, qos=1))
                                for p in payloads[k * chunk:(k + 1) * chunk]])
                    if k == batches // 2:
                        flowed = other_edge_flows(other, far, core)
                    time.sleep(max(0.0, started + (k + 1) * CUT_SECONDS / batches - time.monotonic()))
            finally:
                sender.close()
            got += [p for t, p in reader.received(0.1) if t == remote_topic]
        finally:
            tunnel(edge, "start")
        deadline = time.monotonic() + 120
        while len(got) < bound and time.monotonic() < deadline:
            got += [p for t, p in reader.received(1) if t == remote_topic]
        got += [p for t, p in reader.received(5) if t == remote_topic]  # and nothing beyond
    finally:
        reader.close()
    assert flowed, f"{far['name']}'s readings stopped while {edge['name']}'s tunnel was cut"
    assert got == payloads[:len(got)], f"not the oldest in order: {len(got)}, first {got[:3]}, last {got[-3:]}"
    assert bound <= len(got) <= bound + 2 * window, \
        f"{len(got)} of {len(payloads)} delivered; bound {bound}, in-flight window {window}"
    assert "Connecting bridge" in bridge_log(edge_host, start), "the edge never dialled the core again"


def other_edge_flows(other: dict, far: dict, core: dict) -> bool:
    watcher, sensor = open_session(core, CLIENTS["dashboard"]), open_session(far, CLIENTS["sensor-01"])
    try:
        watcher.subscribe("sites/+/sensors/#")
        leaf = f"sensor-01/during-cut-{uuid.uuid4().hex[:6]}"
        out = other["out"][0]
        return crossed(sensor, topic_in(out["local"], leaf), watcher, topic_in(out["remote"], leaf))
    finally:
        watcher.close()
        sensor.close()


def converge_brokers(inventory: Path, tmp_path: Path):
    """site.yml on the brokers and the collectors: the hub's WireGuard peers run with it (the wireguard role reads
    their keys from the play), and validation wants the collectors of its senders."""
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(PLAYBOOKS / "site.yml"), "--limit", "brokers,collectors"]
    res = ansible.run(cmd, None, tmp_path)
    assert res.rc == 0, res.output[-3000:]
    return res


@pytest.mark.converges
def test_a_bridge_revoked_in_the_inventory_is_refused_at_its_next_handshake_while_the_other_edge_flows(tmp_path):
    """The first edge's bridge gets revoked: true (a second inventory file beside the generated one, so the inventory
    is read as the lab reads it) and the brokers are converged: the bridge's certificate is on the core's
    CRL and refused at the handshake, the edge no longer dials, and the other edge's readings keep reaching the core.
    Then the file goes and a converge restores the bridge with a new certificate."""
    bridge, other = ACTIVE
    edge, core = BROKERS[bridge["edge"]], BROKERS[bridge["remote"]]
    inventory = Path(os.environ["RAMPART_INVENTORY"])
    declared = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["hosts"][bridge["edge"]]
    name = bridge["identity"].rsplit(".", 1)[1]
    revoked = [{**b, "revoked": True} if b["name"] == name else b for b in declared["mosquitto_bridges"]]
    old = tmp_path / "old"
    old.mkdir()
    certfile, keyfile = (Path(shutil.copy(bridge[k], old / k)) for k in ("certfile", "keyfile"))
    assert probe(core, core["listeners"]["certificate"], certfile=str(certfile), keyfile=str(keyfile)).accepted
    override = inventory / "zz-test-revoked-bridge.yml"
    override.write_text(yaml.safe_dump({"all": {"hosts": {bridge["edge"]: {"mosquitto_bridges": revoked}}}}))
    try:
        converge_brokers(inventory, tmp_path)
        res = probe(core, core["listeners"]["certificate"], certfile=str(certfile), keyfile=str(keyfile))
        assert res.outcome in ("tls-error", "closed"), res
        conf = broker_host(edge).check_output("cat /etc/mosquitto/mosquitto.conf")
        assert f"connection {name}\n" not in conf + "\n", f"{edge['name']} still dials with the revoked bridge"
        assert other_edge_flows(other, BROKERS[other["edge"]], core)
    finally:
        override.unlink()
        converge_brokers(inventory, tmp_path)
    assert other_edge_flows(bridge, edge, core), f"{edge['name']}'s bridge did not come back with a new certificate"
