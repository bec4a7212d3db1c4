"""The kernel-bound promises on Debian's own kernels (issue 12): the tagged segment on the wire, the untagged
outsider shut out, WireGuard in the kernel, and everything back after a reboot with no converge in between.

Frames are captured on this machine's bridges (the wire between the VMs), never read from configuration.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.wait import wait_for

from .conftest import DESC, Guest, converge

MQTT_PORTS = (8883, 8884)
OUTSIDER_ADDRESS = "10.42.0.99/24"  # this machine, claiming an address in the segment, untagged


@contextmanager
def capture(interface: str, path: Path, bpf: str = ""):
    """tcpdump on ``interface`` (a bridge or one guest's port on it) for the duration of the block; the frames
    are left in ``path`` (pcap) for ``frames``."""
    argv = ["tcpdump", "-i", interface, "-U", "-n", "-w", str(path), *([bpf] if bpf else [])]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # tcpdump says "listening on ..." once the capture is open.
        line = proc.stderr.readline()
        assert "listening on" in line, f"tcpdump did not start: {line}"
        yield
        time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def frames(path: Path) -> list[str]:
    """One line per captured frame, with its link-level header (``-e``: the 802.1Q tag when there is one) after
    its time in seconds since the epoch (``-tt``)."""
    out = subprocess.run(["tcpdump", "-r", str(path), "-tt", "-nn", "-e"], capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


def at(frame: str) -> float:
    return float(frame.split()[0])


def tcp_connect(guest: Guest, address: str, port: int) -> str:
    """From inside ``guest``: 'connected' or the error of one TCP connection."""
    script = (f"import socket\ntry:\n    socket.create_connection(({address!r}, {port}), 5).close()\n"
              f"    print('connected')\nexcept OSError as e:\n    print(type(e).__name__, e)")
    return guest.sh(f"python3 -c {quote(script)}").strip()


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def segment(guest: Guest) -> str:
    return guest.entry["vmlab_segment_address"]


def test_segment_traffic_is_tagged_with_the_inventory_vlan_id_on_the_wire(broker12, broker13, tmp_path):
    """A connection from one broker to the other's MQTT port over the segment: every frame of it on the wire
    carries an 802.1Q tag with the inventory's VLAN id, and none of it crosses untagged."""
    vlan_id = broker12.entry["vlan_id"]
    pcap = tmp_path / "segment.pcap"
    with capture(DESC["trunk_bridge"], pcap):
        assert tcp_connect(broker13, segment(broker12), 8883) == "connected"
    seen = [f for f in frames(pcap) if f"{segment(broker13)}." in f and f"{segment(broker12)}.8883" in f]
    assert seen, "no frame of the connection was captured on the trunk (positive control)"
    untagged = [f for f in seen if f"vlan {vlan_id}," not in f]
    assert not untagged, f"frames of the segment crossed the wire without the tag {vlan_id}: {untagged[:3]}"
    assert all("ethertype 802.1Q" in f for f in seen)
    print(f"\n{len(seen)} frames of the connection, each tagged vlan {vlan_id}: {seen[0]}")


@pytest.fixture
def outsider_on_the_segment_subnet():
    """This machine takes an address inside the segment's subnet on the trunk, untagged: an attacker plugged
    into the same wire who knows the segment's addressing."""
    bridge = DESC["trunk_bridge"]
    subprocess.run(["ip", "addr", "add", OUTSIDER_ADDRESS, "dev", bridge], check=True)
    try:
        yield OUTSIDER_ADDRESS.split("/")[0]
    finally:
        subprocess.run(["ip", "addr", "del", OUTSIDER_ADDRESS, "dev", bridge], check=False)
        subprocess.run(["ip", "neigh", "flush", "dev", bridge], check=False)


def _connect_from_here(address: str, port: int, timeout: float = 3) -> str:
    import socket

    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__


def test_an_untagged_outsider_on_the_wire_cannot_reach_mqtt_or_learn_the_segment(broker12,
                                                                                  outsider_on_the_segment_subnet,
                                                                                  tmp_path):
    """The outsider's frames reach the broker's port on the switch (captured there: the positive control), yet
    no MQTT port answers and the broker never tells it the segment address's MAC (no ARP answer)."""
    target = segment(broker12)
    port = broker12.entry["taps"][0]
    pcap = tmp_path / "outsider.pcap"
    with capture(port, pcap, "arp or tcp"):
        results = {p: _connect_from_here(target, p) for p in MQTT_PORTS}
    assert all(r != "connected" for r in results.values()), results
    lines = frames(pcap)
    asked = [f for f in lines if f"who-has {target} tell {outsider_on_the_segment_subnet}" in f]
    assert asked, f"the outsider's ARP requests never reached {broker12.name}'s port (positive control): {lines[:5]}"
    # Only answers on the untagged wire, or to this machine, count: the capture also sees the segment's own
    # tagged ARP between the brokers (VLAN 42), which is how it should be.
    here = Path(f"/sys/class/net/{DESC['trunk_bridge']}/address").read_text().strip()
    answered = [f for f in lines if f"Reply {target} is-at" in f and ("802.1Q" not in f or f"> {here}," in f)]
    assert not answered, f"{broker12.name} answered ARP for its segment address on the untagged wire: {answered}"
    neigh = subprocess.run(["ip", "neigh", "show", target, "dev", DESC["trunk_bridge"]], capture_output=True,
                           text=True).stdout
    assert "lladdr" not in neigh, neigh
    print(f"\noutsider: {results}; {len(asked)} ARP requests delivered to {port}, none answered")


def test_wireguard_runs_in_the_kernel_and_a_vpn_peer_reaches_the_broker_through_it(broker12, client):
    for guest in (broker12, client):
        assert re.search(r"^wireguard\s", guest.sh("lsmod"), re.M), f"{guest.name}: no wireguard module loaded"
        assert "wireguard" in guest.sh("ip -d link show wg0"), f"{guest.name}: wg0 is not a kernel WireGuard link"
        assert guest.run("pgrep -x wireguard-go").returncode == 1, f"{guest.name}: wireguard-go is running"
    # Off the segment, on the wan: the broker's segment address is reachable only through the tunnel.
    assert tcp_connect(client, segment(broker12), 8883) == "connected"
    route = client.sh(f"ip route get {segment(broker12)}")
    assert "dev wg0" in route, route


def _booted_since(guest: Guest) -> str:
    return guest.sh("cat /proc/sys/kernel/random/boot_id").strip()


def _reboot(guest: Guest) -> None:
    before = _booted_since(guest)
    guest.run("systemctl reboot", timeout=30)
    wait_for(lambda: guest.answers() and _booted_since(guest) != before, timeout=300, interval=3,
             what=f"{guest.name} back on SSH after its reboot")


def _mqtt(client: Guest, broker: Guest, tool: str, user: str, password: str, args: str) -> subprocess.CompletedProcess:
    return client.run(f"{tool} -h {segment(broker)} -p 8883 --cafile /etc/rampart/mqtt/ca.crt "
                      f"-u {user} -P {password} {args}", timeout=90)


def test_a_persistent_session_keeps_its_queued_qos1_message_across_a_reboot(broker12, client):
    """A QoS 1 subscriber with a persistent session goes away, a message is queued for it, the broker host
    reboots (no converge): the subscriber comes back and receives that message (over the VPN, as a device)."""
    passwords = {c["name"]: c["password"] for c in _clients()}
    sid, text = f"vm-persist-{uuid.uuid4().hex[:8]}", f"queued-{uuid.uuid4().hex}"
    sub = f"-i {sid} -c -q 1 -t sensors/# -C 1"
    first = _mqtt(client, broker12, "mosquitto_sub", "dashboard", passwords["dashboard"], sub + " -W 5")
    assert "Timed out" in first.stderr + first.stdout or first.returncode != 0, first  # subscribed, nothing yet
    pub = _mqtt(client, broker12, "mosquitto_pub", "sensor-01", passwords["sensor-01"],
                f"-q 1 -t sensors/sensor-01/reboot -m {text}")
    assert pub.returncode == 0, pub
    _reboot(broker12)
    wait_for(lambda: tcp_connect(client, segment(broker12), 8883) == "connected", timeout=90, interval=3,
             what="the broker reachable again over the VPN")
    again = _mqtt(client, broker12, "mosquitto_sub", "dashboard", passwords["dashboard"], sub + " -W 30")
    assert again.returncode == 0 and again.stdout.strip() == text, again


def _clients() -> list[dict]:
    import yaml

    data = yaml.safe_load((Path(DESC["inventory"]) / "group_vars" / "all" / "vmlab.yml").read_text())
    return data["mosquitto_clients"]


def test_mqtt_is_never_reachable_from_the_wan_while_the_broker_boots(broker12, tmp_path):
    """This machine sits on the wan and routes the segment address to the broker's wan address, then tries to
    connect to MQTT (1 s per attempt, 0.2 s apart) through the broker's whole reboot and 10 s beyond. Without the
    firewall the broker's kernel would accept those (the weak host model; reverse-path filtering passes them).
    Evidence that the probes reached the booting system: it answered ARP on the wan, and SYNs came after that.
    Nothing from the segment address may come back: no SYN-ACK, no reset (a closed port would answer with a
    reset)."""
    target = segment(broker12)
    wan_address = broker12.entry["vmlab_wan_address"].split("/")[0]
    subprocess.run(["ip", "route", "replace", f"{target}/32", "via", wan_address], check=True)
    stop, outcomes = threading.Event(), []

    def probe():
        while not stop.is_set():
            outcomes.append(_connect_from_here(target, 8883, timeout=1))
            time.sleep(0.2)

    pcap = tmp_path / "boot.pcap"
    try:
        with capture(broker12.entry["taps"][1], pcap, f"arp or host {target}"):
            thread = threading.Thread(target=probe, daemon=True)
            thread.start()
            rebooted = time.time()
            _reboot(broker12)
            wait_for(lambda: broker12.run("systemctl is-active mosquitto").stdout.strip() == "active",
                     timeout=120, what="mosquitto active after the reboot")
            time.sleep(10)  # and on into the booted system, so that SYNs surely reach it
            stop.set()
            thread.join(timeout=10)
    finally:
        subprocess.run(["ip", "route", "del", f"{target}/32"], check=False)
    lines = frames(pcap)
    assert "connected" not in outcomes, f"MQTT answered from the wan during boot: {outcomes.count('connected')}"
    # The old system is gone within seconds of the reboot; a guest takes longer than that to boot again, so an
    # ARP reply 10 s after the reboot comes from the booting system, and SYNs after it reached that system.
    arp_replies = [f for f in lines if f"Reply {wan_address} is-at" in f and at(f) > rebooted + 10]
    syns = [f for f in lines if f"> {target}.8883: Flags [S]" in f and arp_replies and at(f) >= at(arp_replies[0])]
    answers = [f for f in lines if f"{target}.8883 >" in f]
    assert arp_replies and syns, f"the probes never reached the booting broker (positive control): {lines[:5]}"
    assert not answers, f"the broker answered MQTT probes from the wan: {answers[:3]}"
    print(f"\n{len(outcomes)} probes during the reboot; after the booting broker's first ARP reply "
          f"({at(arp_replies[0]) - rebooted:.1f} s after the reboot) {len(syns)} SYNs reached it; "
          f"no answer from {target}:8883")


def test_after_a_reboot_the_vlan_firewall_vpn_and_broker_come_back_by_themselves(broker12, broker13, client):
    """Reboot vmbroker12 and converge nothing: the tagged segment interface, the firewall table, the WireGuard
    tunnel and the broker are back, and the segment and the VPN path work again."""
    before = _booted_since(broker12)
    broker12.run("systemctl reboot", timeout=30)
    wait_for(lambda: broker12.answers() and _booted_since(broker12) != before, timeout=300, interval=3,
             what=f"{broker12.name} back on SSH after its reboot")
    vlan_id = broker12.entry["vlan_id"]
    link = broker12.sh(f"ip -d addr show {broker12.entry['vlan_interface']}")
    assert f"vlan protocol 802.1Q id {vlan_id}" in link and f"inet {segment(broker12)}/" in link, link
    assert "table inet rampart" in broker12.sh("nft list tables")
    assert "wireguard" in broker12.sh("ip -d link show wg0")
    wait_for(lambda: broker12.run("systemctl is-active mosquitto").stdout.strip() == "active", timeout=120,
             what="mosquitto active after the reboot")
    listening = broker12.sh("ss -Hltn")
    assert f"{segment(broker12)}:8883" in listening, listening
    assert tcp_connect(broker13, segment(broker12), 8883) == "connected"
    wait_for(lambda: tcp_connect(client, segment(broker12), 8883) == "connected", timeout=60, interval=3,
             what="the VPN path to the broker after the reboot")
    # Log shipping: a line logged now reaches the collector's file for this broker.
    line = f"rampart-vm-after-reboot-{uuid.uuid4().hex[:12]}"
    broker12.sh(f"logger -t rampart-vm-test {line}")
    log = f"/var/log/rampart/{broker12.name}/syslog.log"
    wait_for(lambda: client.run(f"grep -c -F {line} {log}").stdout.strip() == "1", timeout=60, interval=2,
             what=f"{line} in {log} on the collector")


def _table(guest: Guest) -> str:
    """The table's rules and sets, without counters or the dynamic sets' elements (they change with traffic)."""
    return guest.sh("nft -s -t list table inet rampart")


def test_a_ruleset_that_cuts_the_ssh_path_is_reverted_by_the_host(broker12, client):
    """The anti-lockout revert on a real kernel, over the VM's real SSH path: a converge that makes TEST-NET-1 the
    only management network cuts this machine's SSH; the run fails, the host reverts to the previous ruleset by
    itself, and SSH works again. (The collector, vmclient, is in the run: validation requires a sender's
    collectors in its --limit; it has no firewall, so nothing changes there.)"""
    limit = f"{broker12.name},{client.name}"
    before = _table(broker12)
    run = converge("--tags", "nftables", "--limit", limit,
                   "-e", json.dumps({"nftables_management_cidrs": ["192.0.2.1/32"]}))
    assert run.rc != 0, f"the run accepted a ruleset that cuts the control path:\n{run.output[-3000:]}"
    assert "reverted to the previous ruleset" in " ".join(run.output.split()), run.output[-3000:]
    wait_for(broker12.answers, timeout=180, interval=3, what="SSH to the broker after the revert")
    assert _table(broker12) == before
    assert "reverted table inet rampart" in broker12.sh("journalctl --no-pager -q -t rampart-nftables")
    again = converge("--tags", "nftables", "--limit", limit)
    assert again.rc == 0, again.output[-3000:]
