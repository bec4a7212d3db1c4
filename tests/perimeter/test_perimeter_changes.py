"""Changes to a converged perimeter (marked converges: they re-converge the hosts, after the other tests).

- a foreign nftables table (Docker's, fail2ban's) survives a converge that replaces the firewall;
- a ruleset that cuts the control path is reverted by the host itself, which stays reachable;
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

from .conftest import BROKERS, PERIMETER, VPN_CLIENT, converge, docker_exec, host_of, mqtt_roundtrip

pytestmark = pytest.mark.converges

BROKER = BROKERS[0]
# Like Docker's or fail2ban's: another table with its own base chain on the input hook.
FOREIGN = "add table ip rampart_foreign_test; add chain ip rampart_foreign_test input " \
          "{ type filter hook input priority 10; policy accept; }"


def _ssh_works(address: str) -> bool:
    ssh = PERIMETER["ssh"]
    cmd = ["ssh", "-i", ssh["key"], "-o", f"UserKnownHostsFile={ssh['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
           "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ControlMaster=no", f"root@{address}", "true"]
    return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0


def _live_table(container: str) -> str:
    res = docker_exec(container, "nft", "list", "table", "inet", "rampart")
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_foreign_table_survives_a_converge_that_replaces_the_firewall():
    before = {}
    for broker in BROKERS:
        res = docker_exec(broker["container"], "nft", FOREIGN)
        assert res.returncode == 0, res.stderr
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
            foreign = docker_exec(broker["container"], "nft", "list", "table", "ip", "rampart_foreign_test")
            assert foreign.returncode == 0, f"the foreign table is gone from {broker['name']}"
            assert "priority filter + 10; policy accept;" in foreign.stdout
    finally:
        for broker in BROKERS:
            docker_exec(broker["container"], "nft", "delete", "table", "ip", "rampart_foreign_test")


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
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
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
