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
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest

from tests.support.hardening import HARDENED_SYSCTLS, SYSCTL_DROP_IN
from tests.support.wait import wait_for

from .conftest import DESC, GUESTS, INVENTORY_DIR, Guest, converge

MQTT_PORTS = (8883, 8884)


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


# This machine, claiming an address inside the segment's subnet of each family, untagged; how each family finds the
# segment address's MAC (the request the outsider sends, the answer it must never get).
OUTSIDER = {
    "ipv4": {"address": "10.42.0.99/24", "bpf": "arp or tcp", "target": lambda g: segment(g),
             "asks": "who-has {target} tell {me}", "answer": "Reply {target} is-at"},
    "ipv6": {"address": "fd42:42::99/64", "bpf": "icmp6 or tcp", "target": lambda g: segment6(g),
             "asks": "{me} > ", "asked_for": "who has {target}", "answer": "neighbor advertisement, tgt is {target}"},
}


@pytest.fixture(params=sorted(OUTSIDER))
def outsider_on_the_segment_subnet(request):
    """This machine takes an address inside the segment's subnet on the trunk, untagged: an attacker plugged
    into the same wire who knows the segment's addressing (IPv4, then IPv6)."""
    bridge, family = DESC["trunk_bridge"], OUTSIDER[request.param]
    if request.param == "ipv6":
        Path(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6").write_text("0\n")
    # nodad: usable at once (IPv6 would hold a new address back for duplicate address detection first).
    nodad = ["nodad"] if request.param == "ipv6" else []
    subprocess.run(["ip", "addr", "add", family["address"], "dev", bridge, *nodad], check=True)
    try:
        yield {**family, "me": family["address"].split("/")[0]}
    finally:
        subprocess.run(["ip", "addr", "del", family["address"], "dev", bridge], check=False)
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
    no MQTT port answers and the broker never tells it the segment address's MAC (no ARP or neighbour
    advertisement answer), over IPv4 and over IPv6."""
    out = outsider_on_the_segment_subnet
    target, me = out["target"](broker12), out["me"]
    port = broker12.entry["taps"][0]
    pcap = tmp_path / "outsider.pcap"
    with capture(port, pcap, out["bpf"]):
        results = {p: _connect_from_here(target, p) for p in MQTT_PORTS}
    assert all(r != "connected" for r in results.values()), results
    lines = frames(pcap)
    asked = [f for f in lines if out["asks"].format(target=target, me=me) in f
             and out.get("asked_for", "").format(target=target) in f]
    assert asked, f"the outsider's requests for {target} never reached {broker12.name}'s port (positive control): " \
                  f"{lines[:5]}"
    # Only answers on the untagged wire, or to this machine, count: the capture also sees the segment's own
    # tagged ARP and neighbour discovery between the brokers (VLAN 42), which is how it should be.
    here = Path(f"/sys/class/net/{DESC['trunk_bridge']}/address").read_text().strip()
    answered = [f for f in lines if out["answer"].format(target=target) in f
                and ("802.1Q" not in f or f"> {here}," in f)]
    assert not answered, f"{broker12.name} told the untagged wire where {target} is: {answered}"
    neigh = subprocess.run(["ip", "neigh", "show", target, "dev", DESC["trunk_bridge"]], capture_output=True,
                           text=True).stdout
    assert "lladdr" not in neigh, neigh
    print(f"\noutsider {me}: {results}; {len(asked)} requests for {target} delivered to {port}, none answered")


def segment6(guest: Guest) -> str:
    return guest.entry["vmlab_segment_address6"]


# A device's MQTT 3.1.1 over TLS in the standard library (the brokers have no MQTT client package), run on a
# broker VM as the other's device on the segment. argv: mode host user password [topic [message]]. The client id
# is the username (the broker sets use_username_as_clientid: a device's session is its user's).
#   login: connect (clean session) and print the TLS version and the CONNACK code;
#   subscribe: connect with a persistent session (clean session off), subscribe to topic at QoS 1, disconnect;
#   publish: publish message to topic at QoS 1 and wait for its PUBACK;
#   receive: resume the persistent session, print "present" if the broker kept it, then the first message's payload.
MQTT_SCRIPT = """
import socket, ssl, sys
mode, host, user, password = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
topic = sys.argv[5].encode() if len(sys.argv) > 5 else b""
def s(b): return len(b).to_bytes(2, "big") + b
def packet(kind, body):
    n, size = len(body), b""
    while True:
        n, digit = n // 128, n % 128
        size += bytes([digit | (0x80 if n else 0)])
        if not n: return bytes([kind]) + size + body
def exactly(tls, n):
    data = b""
    while len(data) < n:
        chunk = tls.recv(n - len(data))
        if not chunk: raise SystemExit(f"closed by the broker after {data!r}")
        data += chunk
    return data
def read(tls):
    kind, n, shift = exactly(tls, 1)[0], 0, 0
    while True:
        digit = exactly(tls, 1)[0]
        n, shift = n | (digit & 0x7F) << shift, shift + 7
        if digit < 0x80: return kind, exactly(tls, n)
clean = 0x02 if mode in ("login", "publish") else 0
ctx = ssl.create_default_context(cafile="/tmp/rampart-vm-ca.pem")
with socket.create_connection((host, 8883), 10) as raw, ctx.wrap_socket(raw, server_hostname=host) as tls:
    tls.settimeout(30)
    tls.sendall(packet(0x10, s(b"MQTT") + bytes([4, 0xC0 | clean]) + (60).to_bytes(2, "big") + s(user) + s(user)
                       + s(password)))
    kind, body = read(tls)
    if mode == "login":
        print(tls.version(), body[1] if kind == 0x20 else f"{kind:#x}")
        raise SystemExit(0)
    assert kind == 0x20 and body[1] == 0, f"CONNACK {kind:#x} {body.hex()}"
    if mode == "subscribe":
        tls.sendall(packet(0x82, (1).to_bytes(2, "big") + s(topic) + bytes([1])))
        kind, body = read(tls)
        assert kind == 0x90 and body[2] == 1, f"SUBACK {kind:#x} {body.hex()}"
        print("subscribed")
    elif mode == "publish":
        tls.sendall(packet(0x32, s(topic) + (1).to_bytes(2, "big") + sys.argv[6].encode()))
        kind, body = read(tls)
        assert kind == 0x40, f"PUBACK {kind:#x} {body.hex()}"
        print("published")
    elif mode == "receive":
        print("present" if body[0] & 1 else "new")
        if not body[0] & 1: raise SystemExit(0)
        kind, body = read(tls)
        assert kind >> 4 == 3, f"PUBLISH {kind:#x} {body.hex()}"
        at = 2 + int.from_bytes(body[:2], "big")
        pid, payload = body[at:at + 2], body[at + 2:] if kind & 0x06 else body[at:]
        if kind & 0x06: tls.sendall(packet(0x40, pid))
        print(payload.decode())
    tls.sendall(bytes([0xE0, 0]))
"""


def mqtt_on(device: Guest, *args: str) -> list[str]:
    """MQTT_SCRIPT on ``device``; the lines it printed."""
    return device.sh(f"python3 -c {quote(MQTT_SCRIPT)} {' '.join(quote(a) for a in args)}", timeout=90).splitlines()


def put_device_ca(device: Guest) -> None:
    """The CA the devices verify the broker with (the one the mqtt_client role deploys), copied from the VM lab's
    pki to ``device``, a broker VM acting as the other's device on the segment."""
    pem = (INVENTORY_DIR / "../../.vmlab/pki/ca/ca.crt").read_text()
    device.sh(f"cat > /tmp/rampart-vm-ca.pem <<'EOF'\n{pem}EOF")


@pytest.fixture(scope="module")
def device_ca_on_broker13(broker13):
    put_device_ca(broker13)


def test_mqtt_over_ipv6_on_the_segment_is_tagged_and_authenticated(broker12, broker13, device_ca_on_broker13,
                                                                    tmp_path):
    """The segment is dual-stack: a device on it logs in over IPv6 (TLS with the certificate's IPv6 name checked,
    then a password), and every frame of that connection on the wire carries the VLAN's tag."""
    vlan_id, target = broker12.entry["vlan_id"], segment6(broker12)
    password = _passwords()["dashboard"]
    pcap = tmp_path / "segment6.pcap"
    with capture(DESC["trunk_bridge"], pcap, "ip6"):
        out = mqtt_on(broker13, "login", target, "dashboard", password)[0].split()
    assert out[-1] == "0", f"the broker did not accept the login over IPv6: {out}"
    seen = [f for f in frames(pcap) if f"{segment6(broker13)}." in f and f"{target}.8883" in f]
    assert seen, "no frame of the IPv6 connection was captured on the trunk (positive control)"
    untagged = [f for f in seen if f"vlan {vlan_id}," not in f or "ethertype IPv6" not in f]
    assert not untagged, f"IPv6 frames of the segment crossed the wire without the tag {vlan_id}: {untagged[:3]}"
    print(f"\n{out[0]} login over IPv6 accepted; {len(seen)} frames, each tagged vlan {vlan_id}: {seen[0]}")


@pytest.fixture
def foreign_ipv6_source_on_the_segment(broker12, broker13):
    """vmbroker13 takes a second IPv6 address outside the segment's prefix on its tagged segment interface, and
    vmbroker12 routes that prefix back onto the segment: the reverse-path rule lets it pass, so only the firewall's
    MQTT rule, which admits the segment's own prefix, stands between it and the broker."""
    iface, source = broker13.entry["vlan_interface"], "fd43:42::13"
    broker13.sh(f"ip addr add {source}/64 dev {iface} nodad")
    broker12.sh(f"ip -6 route add fd43:42::/64 dev {broker12.entry['vlan_interface']}")
    try:
        yield source
    finally:
        broker13.run(f"ip addr del {source}/64 dev {iface}")
        broker12.run(f"ip -6 route del fd43:42::/64 dev {broker12.entry['vlan_interface']}")


def _drops(guest: Guest, source: str, port: int) -> list[str]:
    """The firewall's drop log lines (kernel log) for TCP from ``source`` to ``port``."""
    import ipaddress

    out = guest.sh("journalctl -k -q --no-pager -o cat -g rampart-drop")
    return [line for line in out.splitlines()
            if (m := re.search(r"SRC=(\S+)", line)) and ipaddress.ip_address(m.group(1)) == ipaddress.ip_address(source)
            and "PROTO=TCP" in line and f"DPT={port} " in line]


def test_the_firewalls_ipv6_rules_drop_a_source_outside_the_segment(broker12, broker13,
                                                                     foreign_ipv6_source_on_the_segment):
    """Same wire, same tag, a source outside the segment's IPv6 prefix: the connection fails, and the broker's
    firewall logged dropping its SYNs (the packets arrived: the positive control). From the segment's own address
    the same connection succeeds (the test above)."""
    source, target = foreign_ipv6_source_on_the_segment, segment6(broker12)
    script = (f"import socket\ns = socket.socket(socket.AF_INET6)\ns.settimeout(5)\ns.bind(({source!r}, 0))\n"
              f"try:\n    s.connect(({target!r}, 8883))\n    print('connected')\n"
              f"except OSError as e:\n    print(type(e).__name__)")
    result = broker13.sh(f"python3 -c {quote(script)}").strip()
    assert result != "connected", f"{source} reached {target}:8883 from outside the segment's prefix"
    drops = wait_for(lambda: _drops(broker12, source, 8883), timeout=20, interval=2,
                     what=f"the firewall's drop log line for {source} -> {target}:8883")
    print(f"\n{source} -> [{target}]:8883: {result}; dropped by the firewall: {drops[0]}")


@pytest.mark.vm_client
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
    # The guest may go down under the SSH session; back() below tells whether it rebooted.
    with suppress(subprocess.TimeoutExpired):
        guest.run("systemctl reboot", timeout=30)

    def back() -> bool:
        # One SSH call per look: while the guest goes down and comes up, sshd may take a connection and then drop
        # it, so a failed or timed-out call means "not yet", never an error.
        try:
            res = guest.run("cat /proc/sys/kernel/random/boot_id", timeout=15)
        except subprocess.TimeoutExpired:
            return False
        return res.returncode == 0 and res.stdout.strip() not in ("", before)

    wait_for(back, timeout=300, interval=3, what=f"{guest.name} back on SSH after its reboot")


def _mqtt(client: Guest, broker: Guest, tool: str, user: str, password: str, args: str) -> subprocess.CompletedProcess:
    return client.run(f"{tool} -h {segment(broker)} -p 8883 --cafile /etc/rampart/mqtt/ca.crt "
                      f"-u {user} -P {password} {args}", timeout=90)


def _passwords() -> dict[str, str]:
    """The VM lab's MQTT clients' passwords, by client name (from its inventory)."""
    import yaml

    data = yaml.safe_load((INVENTORY_DIR / "group_vars" / "all" / "vmlab.yml").read_text())
    return {c["name"]: c["password"] for c in data["mosquitto_clients"]}


def _wait_for_mosquitto(guest: Guest) -> None:
    wait_for(lambda: guest.run("systemctl is-active mosquitto").stdout.strip() == "active", timeout=120,
             what=f"mosquitto active on {guest.name} after the reboot")


REBOOTED = ("vmbroker12", "vmbroker13")


def _queue_for_the_device(device: Guest, target: str, passwords: dict[str, str]) -> str:
    """The device logs in clean on ``target`` (which drops whatever session an earlier run left), subscribes with a
    persistent session at QoS 1 and goes away; a sensor publishes a message the broker queues for it."""
    queued = f"queued-{uuid.uuid4().hex}"
    put_device_ca(device)
    assert mqtt_on(device, "login", target, "dashboard", passwords["dashboard"])[0].split()[-1] == "0"
    assert mqtt_on(device, "subscribe", target, "dashboard", passwords["dashboard"], "sensors/#") == ["subscribed"]
    assert mqtt_on(device, "publish", target, "sensor-01", passwords["sensor-01"], "sensors/sensor-01/reboot",
                   queued) == ["published"]
    return queued


def _probe_until(stop: threading.Event, target: str, outcomes: list[str]) -> None:
    while not stop.is_set():
        outcomes.append(_connect_from_here(target, 8883, timeout=1))
        time.sleep(0.2)


def _reboot_and_settle(guest: Guest) -> dict[str, float]:
    rebooted = time.time()
    _reboot(guest)
    # When the new kernel started, on this machine's clock: an upper bound, as the uptime is read before the SSH call
    # returns.
    booted = time.time() - float(guest.sh("cut -d' ' -f1 /proc/uptime"))
    _wait_for_mosquitto(guest)
    time.sleep(10)  # and on into the booted system, so that SYNs surely reach it
    return {"rebooted": rebooted, "booted": booted}


@pytest.fixture(scope="module")
def reboots_watched_from_the_wan(tmp_path_factory) -> dict[str, dict]:
    """Both broker VMs rebooted at once (Debian 12's kernel and 13's; no converge; one reboot's wait for both, about
    75 s of the vm step) while this machine, on the wan, routes each one's segment address to its wan address and
    tries to connect to MQTT (1 s per attempt, 0.2 s apart) through the whole reboot and 10 s beyond, capturing each
    broker's wan port. The tests below read what it saw, and what came back; each broker is the other's device on
    the segment: before the reboot that device queues a message on it (_queue_for_the_device)."""
    guests = {name: Guest(GUESTS[name]) for name in REBOOTED}
    passwords = _passwords()
    seen = {}
    for name, guest in guests.items():
        peer = next(g for n, g in guests.items() if n != name)
        target = segment(guest)
        seen[name] = {"guest": guest, "peer": peer, "target": target, "outcomes": [],
                      "wan_address": guest.entry["vmlab_wan_address"].split("/")[0],
                      "queued": _queue_for_the_device(peer, target, passwords), "password": passwords["dashboard"],
                      "pcap": tmp_path_factory.mktemp(f"reboot-{name}") / "boot.pcap"}
    stop = threading.Event()
    with ExitStack() as stack:
        for s in seen.values():
            subprocess.run(["ip", "route", "replace", f"{s['target']}/32", "via", s["wan_address"]], check=True)
            stack.callback(subprocess.run, ["ip", "route", "del", f"{s['target']}/32"], check=False)
            stack.enter_context(capture(s["guest"].entry["taps"][1], s["pcap"], f"arp or host {s['target']}"))
        threads = [threading.Thread(target=_probe_until, args=(stop, s["target"], s["outcomes"]), daemon=True)
                   for s in seen.values()]
        for thread in threads:
            thread.start()
        with ThreadPoolExecutor(max_workers=len(seen)) as pool:
            for s, times in zip(seen.values(), pool.map(_reboot_and_settle, guests.values()), strict=True):
                s.update(times)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    for s in seen.values():
        s["frames"] = frames(s.pop("pcap"))
        put_device_ca(s["peer"])  # its /tmp went with its own reboot
    return seen


@pytest.fixture(scope="module", params=REBOOTED)
def reboot_watched_from_the_wan(request, reboots_watched_from_the_wan):
    """One broker VM's reboot, as reboots_watched_from_the_wan saw it."""
    return reboots_watched_from_the_wan[request.param]


def test_mqtt_is_never_reachable_from_the_wan_while_the_broker_boots(reboot_watched_from_the_wan):
    """Without the firewall the booting broker's kernel would accept the wan's probes for its segment address (the
    weak host model; reverse-path filtering passes them). Evidence that the probes reached the booting system: it
    answered ARP on the wan, and SYNs came after that. Nothing from the segment address may come back: no SYN-ACK,
    no reset (a closed port would answer with a reset)."""
    seen = reboot_watched_from_the_wan
    target, lines, rebooted, outcomes = seen["target"], seen["frames"], seen["rebooted"], seen["outcomes"]
    assert "connected" not in outcomes, f"MQTT answered from the wan during boot: {outcomes.count('connected')}"
    # An ARP reply after the new kernel started comes from the booting system (the old one had stopped), and SYNs
    # after it reached that system.
    arp_replies = [f for f in lines if f"Reply {seen['wan_address']} is-at" in f and at(f) > seen["booted"]]
    syns = [f for f in lines if f"> {target}.8883: Flags [S]" in f and arp_replies and at(f) >= at(arp_replies[0])]
    answers = [f for f in lines if f"{target}.8883 >" in f]
    assert arp_replies and syns, f"the probes never reached the booting broker (positive control): {lines[:5]}"
    assert not answers, f"the broker answered MQTT probes from the wan: {answers[:3]}"
    first = at(arp_replies[0])
    print(f"\n{seen['guest'].name}: {len(outcomes)} probes during the reboot; after the booting broker's first ARP "
          f"reply ({first - rebooted:.1f} s after the reboot, {first - seen['booted']:.1f} s after its kernel "
          f"started) {len(syns)} SYNs reached it; no answer from {target}:8883")


def test_after_a_reboot_the_vlan_firewall_and_broker_come_back_by_themselves(reboot_watched_from_the_wan):
    """After that reboot, with no converge: the tagged segment interface with both its addresses, the firewall
    table and the broker are back, and a device on the segment (the other broker) reaches the broker over IPv4 and
    IPv6."""
    guest, peer = reboot_watched_from_the_wan["guest"], reboot_watched_from_the_wan["peer"]
    vlan_id = guest.entry["vlan_id"]
    link = guest.sh(f"ip -d addr show {guest.entry['vlan_interface']}")
    assert f"vlan protocol 802.1Q id {vlan_id}" in link and f"inet {segment(guest)}/" in link, link
    assert f"inet6 {segment6(guest)}/64" in link, link
    assert "table inet rampart" in guest.sh("nft list tables")
    _wait_for_mosquitto(guest)
    listening = guest.sh("ss -Hltn")
    assert f"{segment(guest)}:8883" in listening and f"[{segment6(guest)}]:8883" in listening, listening
    assert tcp_connect(peer, segment(guest), 8883) == "connected"
    assert tcp_connect(peer, segment6(guest), 8883) == "connected"


def test_after_a_reboot_the_kernel_hardening_is_in_force(reboot_watched_from_the_wan):
    """systemd-sysctl applied the vlan role's drop-in at boot: after the reboot, with no converge, every value of
    the drop-in is in force on the real kernel (Debian's own defaults differ for most of them: loose rp_filter,
    ICMP redirects accepted and sent, martians not logged), the drop-in holds the hardened set, and the tagged
    segment interface, created at boot after the drop-in was applied, took the hardened per-interface defaults (for
    redirects and source routing the kernel also reads the interface's own value, not only `all`)."""
    guest = reboot_watched_from_the_wan["guest"]
    wanted = dict(line.replace(" ", "").split("=", 1) for line in guest.sh(f"cat {SYSCTL_DROP_IN}").splitlines()
                  if line.strip() and not line.lstrip().startswith(("#", ";")))
    missing = {key: value for key, value in HARDENED_SYSCTLS.items() if wanted.get(key) != str(value)}
    assert not missing, f"{SYSCTL_DROP_IN} on {guest.name} lacks {missing}"
    iface = guest.entry["vlan_interface"]
    for key, value in list(wanted.items()):
        for family in ("ipv4", "ipv6"):
            if key.startswith(f"net.{family}.conf.default."):
                wanted[f"net/{family}/conf/{iface}/{key.rsplit('.', 1)[1]}"] = value
    paths = [key if "/" in key else key.replace(".", "/") for key in wanted]
    read = guest.sh("for p in " + " ".join(paths) + "; do echo \"$p $(cat /proc/sys/$p)\"; done")
    in_force = dict(line.split() for line in read.splitlines())
    wrong = {path: (in_force.get(path), value) for path, value in zip(paths, wanted.values(), strict=True)
             if in_force.get(path) != value}
    assert not wrong, f"{guest.name} after its reboot, (in force, in the drop-in): {wrong}"
    assert len(in_force) > len(HARDENED_SYSCTLS), in_force  # the interface's own values were read too


def test_a_queued_qos1_message_survives_the_reboot(reboot_watched_from_the_wan):
    """The device's persistent session and the QoS 1 message queued for it before the reboot are still there after
    it: the device resumes its session (CONNACK says the session is present) and receives that message."""
    seen = reboot_watched_from_the_wan
    got = mqtt_on(seen["peer"], "receive", seen["target"], "dashboard", seen["password"])
    assert got == ["present", seen["queued"]], f"{seen['guest'].name} lost the queued message or the session: {got}"


@pytest.mark.vm_client
def test_after_a_reboot_the_broker_ships_its_logs_again(reboot_watched_from_the_wan, client):
    """Log shipping comes back after the reboot of each broker by itself: a line the broker logs now reaches the
    collector's file for that broker."""
    guest = reboot_watched_from_the_wan["guest"]
    _assert_shipped(guest, client)


@pytest.mark.vm_client
def test_after_a_reboot_the_vpn_log_shipping_and_a_queued_qos1_message_come_back(broker12, client):
    """A QoS 1 subscriber with a persistent session goes away, a message is queued for it, the broker host
    reboots (no converge): the kernel WireGuard tunnel is back, the subscriber comes back over it and receives
    that message, and a line the broker logs reaches the collector."""
    passwords = _passwords()
    sid, text = f"vm-persist-{uuid.uuid4().hex[:8]}", f"queued-{uuid.uuid4().hex}"
    sub = f"-i {sid} -c -q 1 -t sensors/# -C 1"
    first = _mqtt(client, broker12, "mosquitto_sub", "dashboard", passwords["dashboard"], sub + " -W 5")
    assert "Timed out" in first.stderr + first.stdout or first.returncode != 0, first  # subscribed, nothing yet
    pub = _mqtt(client, broker12, "mosquitto_pub", "sensor-01", passwords["sensor-01"],
                f"-q 1 -t sensors/sensor-01/reboot -m {text}")
    assert pub.returncode == 0, pub
    _reboot(broker12)
    assert "wireguard" in broker12.sh("ip -d link show wg0")
    wait_for(lambda: tcp_connect(client, segment(broker12), 8883) == "connected", timeout=90, interval=3,
             what="the broker reachable again over the VPN")
    assert "dev wg0" in client.sh(f"ip route get {segment(broker12)}")
    again = _mqtt(client, broker12, "mosquitto_sub", "dashboard", passwords["dashboard"], sub + " -W 30")
    assert again.returncode == 0 and again.stdout.strip() == text, again
    _assert_shipped(broker12, client)


def _assert_shipped(broker: Guest, collector: Guest) -> None:
    """A line ``broker`` logs now reaches the collector's file for it."""
    line = f"rampart-vm-after-reboot-{uuid.uuid4().hex[:12]}"
    broker.sh(f"logger -t rampart-vm-test {line}")
    log = f"/var/log/rampart/{broker.name}/syslog.log"
    wait_for(lambda: collector.run(f"grep -c -F {line} {log}").stdout.strip() == "1", timeout=60, interval=2,
             what=f"{line} in {log} on the collector")


def _table(guest: Guest) -> str:
    """The table's rules and sets, without counters or the dynamic sets' elements (they change with traffic)."""
    return guest.sh("nft -s -t list table inet rampart")


@pytest.mark.vm_full  # 3 minutes of scripts/test; Molecule perimeter proves the same revert there (docs/vmlab.md)
def test_a_ruleset_that_cuts_the_ssh_path_is_reverted_by_the_host(broker12):
    """The anti-lockout revert on a real kernel, over the VM's real SSH path: a converge that makes TEST-NET-1 the
    only management network cuts this machine's SSH; the run fails, the host reverts to the previous ruleset by
    itself, and SSH works again. (The collector, vmclient in the full topology, is in the run: validation requires
    a sender's collectors in its --limit; it has no firewall, so nothing changes there.) The run waits 10 s for a
    confirming SSH connection and the host reverts after 40 s, instead of the defaults' 30 s and 90 s: the
    mechanism is the same, the test is shorter (measured: 202 s with the defaults, 134-139 s with a 25 s revert,
    184 s with 40 s), and 40 s leaves a slow emulated guest time to load the candidate and fail the confirmation
    before the revert.
    (A revert during the confirmation would let the run pass, so this test would fail, not pass falsely.)"""
    limit = ",".join(name for name in (broker12.name, "vmclient") if name in GUESTS)
    before = _table(broker12)
    run = converge("--tags", "nftables", "--limit", limit, "-e", json.dumps({
        "nftables_management_cidrs": ["192.0.2.1/32"], "nftables_confirm_timeout": 10, "nftables_revert_after": 40}))
    assert run.rc != 0, f"the run accepted a ruleset that cuts the control path:\n{run.output[-3000:]}"
    assert "reverted to the previous ruleset" in " ".join(run.output.split()), run.output[-3000:]
    wait_for(broker12.answers, timeout=180, interval=3, what="SSH to the broker after the revert")
    assert _table(broker12) == before
    assert "reverted table inet rampart" in broker12.sh("journalctl --no-pager -q -t rampart-nftables")
    again = converge("--tags", "nftables", "--limit", limit)
    assert again.rc == 0, again.output[-3000:]
