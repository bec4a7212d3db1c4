"""Changes to a converged perimeter (marked converges: they re-converge the hosts, after the other tests).

- foreign nftables tables (Docker's and fail2ban's, both real) survive a converge that replaces the firewall;
- a ruleset that cuts the control path is reverted by the host itself, which stays reachable;
- a candidate ruleset nft cannot parse is never installed or loaded, and the running rules stay;
- a revert left armed by an interrupted run, or a failed revert unit, never outlives the next run (review L4);
- adding and removing a WireGuard peer keeps the existing peer's tunnel up (wg syncconf); a peer may bring its own
  public key, and a peer handed over loses its private key on the control node (review L11).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import perimeter

from tests.support import qr

from .conftest import (
    BROKERS,
    CA_IN_CONTAINERS,
    DESC,
    OUTSIDER,
    PERIMETER,
    VPN_CLIENT,
    converge,
    docker_exec,
    host_of,
    mqtt_roundtrip,
    wait_until,
)

pytestmark = pytest.mark.converges

BROKER = BROKERS[0]
# Docker's own tables: the broker host also runs Docker (Debian's docker.io, which the test installs and starts),
# whose daemon makes them at start through iptables-nft. Compared without their counters (nft -s).
DOCKER_TABLES = (("ip", "nat"), ("ip", "filter"))
START_DOCKER = "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null " \
               "&& systemctl start docker.service"


def _ssh_works(address: str) -> bool:
    ssh = PERIMETER["ssh"]
    cmd = ["ssh", "-i", ssh["key"], "-o", f"UserKnownHostsFile={ssh['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
           "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ControlMaster=no", f"root@{address}", "true"]
    return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0


def _live_table(container: str) -> str:
    res = docker_exec(container, "nft", "list", "table", "inet", "rampart")
    assert res.returncode == 0, res.stderr
    return res.stdout


# A real ban by the broker's real fail2ban (TEST-NET-1, nobody's address), so fail2ban's own table exists with a ban
# in it (fail2ban makes its table at a jail's first ban).
BANNED, F2B_JAIL = "192.0.2.77", "rampart-mosquitto-auth"


def _fail2ban_table(container: str) -> str:
    table = docker_exec(container, "nft", "list", "table", "inet", "f2b-table")
    assert table.returncode == 0 and BANNED in table.stdout, f"fail2ban's table holds no ban of {BANNED}: {table}"
    return table.stdout


def _docker_tables(container: str) -> dict[str, str]:
    tables = {}
    for family, name in DOCKER_TABLES:
        res = docker_exec(container, "nft", "-s", "list", "table", family, name)
        assert res.returncode == 0 and "DOCKER" in res.stdout, f"Docker made no table {family} {name}: {res}"
        tables[f"{family} {name}"] = res.stdout
    return tables


def test_foreign_table_survives_a_converge_that_replaces_the_firewall():
    """Foreign tables survive, unchanged: Docker's (a real daemon on the broker host: its nat and filter tables) and
    fail2ban's (with a real ban in it, to the byte)."""
    before, bans, docker_tables = {}, {}, {}
    for broker in BROKERS:
        started = docker_exec(broker["container"], "sh", "-c", START_DOCKER, timeout=300)
        assert started.returncode == 0, started.stdout + started.stderr
        docker_tables[broker["name"]] = _docker_tables(broker["container"])
        ban = docker_exec(broker["container"], "fail2ban-client", "set", F2B_JAIL, "banip", BANNED)
        assert ban.returncode == 0, ban.stdout + ban.stderr
        bans[broker["name"]] = _fail2ban_table(broker["container"])
        before[broker["name"]] = _live_table(broker["container"])
        # Without its table the role must load the whole ruleset again (the same nft -f transaction as a change).
        gone = docker_exec(broker["container"], "nft", "delete", "table", "inet", "rampart")
        assert gone.returncode == 0, gone.stderr
    try:
        run = converge("--tags", "nftables")
        assert run.rc == 0, run.output[-4000:]
        loaded = {t.host: t.status for t in run.tasks if t.task == "Load the candidate ruleset"}
        for broker in BROKERS:
            assert loaded.get(broker["name"]) == "changed", f"the ruleset was not loaded again: {loaded}"
            assert _live_table(broker["container"]).replace(" ", "").count("policydrop") == 2
            assert _docker_tables(broker["container"]) == docker_tables[broker["name"]], "Docker's tables changed"
            assert _fail2ban_table(broker["container"]) == bans[broker["name"]], "fail2ban's table changed"
    finally:
        for broker in BROKERS:
            docker_exec(broker["container"], "systemctl", "stop", "docker.service", "docker.socket")
            docker_exec(broker["container"], "fail2ban-client", "set", F2B_JAIL, "unbanip", BANNED)


def test_ruleset_that_cuts_the_control_path_is_reverted():
    container = BROKER["container"]
    before = _live_table(container)
    # TEST-NET-1 as the only management network: the new ruleset drops the control node's new SSH connections.
    run = converge("--tags", "nftables", "--limit", BROKER["name"],
                   "-e", json.dumps({"nftables_management_cidrs": ["192.0.2.1/32"]}))
    assert run.rc != 0, f"the run accepted a ruleset that cuts the control path:\n{run.output[-4000:]}"
    assert "reverted to the previous ruleset" in " ".join(run.output.split()), run.output[-4000:]
    # The host reverted by itself: the previous table is back, SSH works, the candidate is forgotten.
    assert _live_table(container) == before
    assert _ssh_works(BROKER["segment_address"]), "SSH to the broker fails after the revert"
    host = host_of(container)
    assert not host.file("/etc/rampart/nftables/candidate.nft").exists
    assert host.run("journalctl --no-pager -q -t rampart-nftables").stdout.count("reverted table inet rampart") >= 1
    # And the next normal run converges cleanly again.
    again = converge("--tags", "nftables", "--limit", BROKER["name"])
    assert again.rc == 0, again.output[-4000:]


# One rule nft cannot parse, in the shape of the role's rendered rules. Validation refuses every bad input an
# operator can write, so the test goes past it the way a bug in the role's rendering would: an extra var replaces
# the role's internal __nftables_rules_rendered.
UNPARSABLE = [{"name": "broken", "protocol": "tcp", "ports": [9], "rate": 0, "burst": 0, "max_connections": 0,
               "families": [], "matches": [{"expr": "tcp dport 9 rampart-not-a-keyword", "family": "v4",
                                            "saddr": "ip saddr"}]}]


def test_a_candidate_nft_rejects_is_never_installed_and_the_running_rules_stay():
    """A candidate ruleset with a syntax error fails the run at its nft -c check: the files under
    /etc/rampart/nftables, the live table and the revert timer are all as they were, and nothing was loaded."""
    container, unit = BROKER["container"], "rampart-nftables-revert"
    host = host_of(container)
    files = "sha256sum /etc/rampart/nftables/*"
    before = (_live_table(container), host.check_output(files))
    run = converge("--tags", "nftables", "--limit", BROKER["name"],
                   "-e", json.dumps({"__nftables_rules_rendered": UNPARSABLE}))
    assert run.rc != 0, f"a candidate nft cannot parse was accepted:\n{run.output[-4000:]}"
    failed = run.failures[0]
    assert failed.task.startswith("Install the revert script, the boot unit and the candidate ruleset"), failed.name
    assert any("failed to validate /etc/rampart/nftables/candidate.nft" in m and "rampart-not-a-keyword" in m
               for m in failed.messages), failed.messages
    assert run.statuses("Load the candidate ruleset") == set(), "a rejected candidate reached the load step"
    assert (_live_table(container), host.check_output(files)) == before, "the live table or its files changed"
    assert docker_exec(container, "systemctl", "is-active", f"{unit}.timer").stdout.strip() != "active", \
        "a revert timer was armed for a candidate that was never loaded"


def test_an_interrupted_apply_is_finished_and_a_failed_revert_unit_blocks_nothing():
    """Review L4. (1) A run interrupted after arming the revert leaves its timer armed while the table is live and
    the candidate unchanged: the next run must apply and confirm again (the timer gone after it), not report success
    and let the old timer revert the table later. (2) A revert service that failed stays loaded and made every later
    systemd-run of that name fail: the next run that applies a change must still succeed."""
    container, unit = BROKER["container"], "rampart-nftables-revert"
    # (1) What an interrupted run leaves: the timer armed (its payload harmless, and far off).
    armed = docker_exec(container, "systemd-run", f"--unit={unit}", "--on-active=900", "/bin/true")
    assert armed.returncode == 0, armed.stderr
    run = converge("--tags", "nftables", "--limit", BROKER["name"])
    assert run.rc == 0, run.output[-4000:]
    assert run.statuses("Load the candidate ruleset") == {"changed"}, "the pending revert was not treated as a change"
    assert docker_exec(container, "systemctl", "is-active", f"{unit}.timer").stdout.strip() != "active", \
        "the old revert timer outlived the run"

    # (2) A failed revert unit left loaded, then a change to apply (the candidate file lost).
    docker_exec(container, "systemd-run", f"--unit={unit}", "--wait", "/bin/false")
    failed = docker_exec(container, "systemctl", "is-failed", f"{unit}.service")
    assert failed.stdout.strip() == "failed", failed.stdout
    assert docker_exec(container, "rm", "/etc/rampart/nftables/candidate.nft").returncode == 0
    run = converge("--tags", "nftables", "--limit", BROKER["name"])
    assert run.rc == 0, run.output[-4000:]
    assert run.statuses("Arm the automatic revert") == {"changed"}
    assert run.statuses("Cancel the automatic revert") == {"changed"}
    assert _live_table(container).replace(" ", "").count("policydrop") == 2


def _wg_state(container: str) -> dict:
    show = docker_exec(container, "wg", "show", "wg0", "dump")
    assert show.returncode == 0, show.stderr
    peers = {}
    for line in show.stdout.splitlines()[1:]:
        f = line.split("\t")
        peers[f[0]] = {"endpoint": f[2], "handshake": int(f[4]), "rx": int(f[5]), "tx": int(f[6])}
    private = docker_exec(container, "wg", "show", "wg0", "private-key")
    assert private.returncode == 0, private.stderr
    assert private.stdout.strip() not in ("", "(none)"), "the interface lost its private key"
    link = docker_exec(container, "cat", "/sys/class/net/wg0/ifindex")
    since = docker_exec(container, "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "wg-quick@wg0")
    return {"peers": peers, "ifindex": link.stdout.strip(), "since": since.stdout.strip()}


# The laptop: the outsider on the wan, given Debian 12's WireGuard tools (wg, wg-quick, wireguard-go), copied from a
# Debian 12 broker that installed the same packages (the outsider has no way to the archive of its own).
LAPTOP = OUTSIDER["container"]
WIREGUARD_TOOLS = ("/usr/bin/wg", "/usr/bin/wg-quick", "/usr/bin/wireguard-go")


def _laptop_roundtrip(config: str) -> dict:
    """Bring up a tunnel on the laptop with ``config`` alone (wg-quick up, falling back to wireguard-go as on any
    machine without the kernel module), do an MQTT round trip to the broker's VPN address through it, take it down.
    Before the tunnel the same round trip must fail: the outsider has no other way to that address. (A bare TCP
    connect proves nothing there: this machine's network answers TCP, and even TLS with its own certificate, for
    addresses outside its own networks; the round trip verifies the broker against the deployment's CA.)"""
    docker_exec(LAPTOP, "sh", "-c", f"cat > {CA_IN_CONTAINERS}", stdin=Path(DESC["ca_file"]).read_text(), check=True)
    assert mqtt_roundtrip_or_none(LAPTOP) is None, "the outsider did an MQTT round trip without a tunnel"
    for tool in WIREGUARD_TOOLS:  # docker cp's tar stream, from one container to the other
        tar = subprocess.run(["docker", "cp", f"{BROKER['container']}:{tool}", "-"], capture_output=True, timeout=60,
                             check=True).stdout
        subprocess.run(["docker", "cp", "-", f"{LAPTOP}:/usr/local/bin/"], input=tar, capture_output=True,
                       timeout=60, check=True)
    docker_exec(LAPTOP, "sh", "-c", "umask 077 && mkdir -p /etc/wireguard && cat > /etc/wireguard/laptop.conf",
                stdin=config, check=True)
    up = docker_exec(LAPTOP, "wg-quick", "up", "laptop", timeout=60)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        result = wait_until(lambda: mqtt_roundtrip_or_none(LAPTOP), timeout=30, what="an MQTT round trip through "
                            "the laptop's tunnel")
        handshake = docker_exec(LAPTOP, "wg", "show", "laptop", "latest-handshakes", check=True).stdout.split()
        assert len(handshake) == 2 and int(handshake[1]) > 0, handshake
        return result
    finally:
        docker_exec(LAPTOP, "wg-quick", "down", "laptop", timeout=60)
        docker_exec(LAPTOP, "rm", "-f", "/etc/wireguard/laptop.conf", CA_IN_CONTAINERS,
                    *(f"/usr/local/bin/{Path(t).name}" for t in WIREGUARD_TOOLS))


def mqtt_roundtrip_or_none(container: str) -> dict | None:
    """The round trip's answer when it went through, None when it did not (a timeout or refusal inside the probe)."""
    try:
        result = mqtt_roundtrip(container, BROKER, BROKER["vpn_address"])
    except AssertionError:
        return None
    return result if result.get("roundtrip") else None


def test_adding_and_removing_a_peer_keeps_the_existing_tunnel_up():
    container, vpn = BROKER["container"], VPN_CLIENT["container"]
    assert mqtt_roundtrip(vpn, BROKER, BROKER["vpn_address"])["roundtrip"]
    before = _wg_state(container)
    assert len(before["peers"]) == 1
    (vpn_key, vpn_peer), = before["peers"].items()
    laptop = {"name": "laptop-test", "addresses": ["10.86.12.50/32"]}
    # Review L11: a peer that made its own key pair; the inventory holds only its public key.
    phone_key = perimeter.wg_public_key(perimeter.wg_private_key())
    phone = {"name": "phone-test", "addresses": ["10.86.12.51/32"], "public_key": phone_key}
    # Both ends of every tunnel run together (a peer reads the other side's keys), so no --limit here.
    limit = ["--tags", "wireguard"]

    added = converge(*limit, "-e", json.dumps({"perimeter_test_extra_peers": [laptop, phone]}))
    assert added.rc == 0, added.output[-4000:]
    after = _wg_state(container)
    assert len(after["peers"]) == 3 and phone_key in after["peers"], after
    # Same interface, never restarted, and the existing peer's counters kept counting (no re-add).
    assert (after["ifindex"], after["since"]) == (before["ifindex"], before["since"])
    assert after["peers"][vpn_key]["rx"] >= vpn_peer["rx"] > 0
    assert after["peers"][vpn_key]["handshake"] >= vpn_peer["handshake"] > 0
    assert mqtt_roundtrip(vpn, BROKER, BROKER["vpn_address"])["roundtrip"]

    # The peer Ansible does not manage got a ready config and a QR code, readable by the owner only.
    export = os.path.join(PERIMETER["export_dir"], BROKER["name"])
    conf = os.path.join(export, "laptop-test.conf")
    png = os.path.join(export, "laptop-test.png")
    assert oct(os.stat(export).st_mode & 0o777) == "0o700"
    for path in (conf, png):
        assert oct(os.stat(path).st_mode & 0o777) == "0o600", path
    text = Path(conf).read_text()
    assert "PrivateKey = " in text and "PresharedKey = " in text
    assert f"Endpoint = {BROKER['wan_address']}:" in text
    # A laptop brings its tunnel up from what it was given (issue 15): the config read back out of the QR code,
    # which is the exported file byte for byte, and nothing else.
    config = qr.decode(png)
    assert config == text
    assert _laptop_roundtrip(config)["connack"] == 0
    # The peer with its own key: a config without any private key, no QR code, no key made here.
    phone_conf = Path(export, "phone-test.conf").read_text()
    assert "\nPrivateKey" not in phone_conf and f"Rampart has only its public key, {phone_key}" in phone_conf
    assert not os.path.exists(os.path.join(export, "phone-test.png"))
    assert not os.path.exists(os.path.join(export, "phone-test.key"))

    # Handed over: the laptop's private key, config and QR code are deleted; its public key stays, so the tunnel
    # keeps the same peer (no new pair, no restart).
    laptop_key = Path(export, "laptop-test.key.pub").read_text().strip()
    assert laptop_key in after["peers"]
    handed_over = [{**laptop, "handed_over": True}, phone]
    handed = converge(*limit, "-e", json.dumps({"perimeter_test_extra_peers": handed_over}))
    assert handed.rc == 0, handed.output[-4000:]
    for suffix in ("key", "conf", "png"):
        assert not os.path.exists(os.path.join(export, f"laptop-test.{suffix}")), suffix
    assert Path(export, "laptop-test.key.pub").read_text().strip() == laptop_key
    kept = _wg_state(container)
    assert set(kept["peers"]) == set(after["peers"]), kept
    assert (kept["ifindex"], kept["since"]) == (before["ifindex"], before["since"])

    removed = converge(*limit)
    assert removed.rc == 0, removed.output[-4000:]
    final = _wg_state(container)
    assert list(final["peers"]) == [vpn_key]
    assert (final["ifindex"], final["since"]) == (before["ifindex"], before["since"])
    assert final["peers"][vpn_key]["rx"] >= after["peers"][vpn_key]["rx"]
    assert mqtt_roundtrip(vpn, BROKER, BROKER["vpn_address"])["roundtrip"]
