"""The broker host itself: kernel hardening in force, listening sockets, the firewall table."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.support.docker import tcp
from tests.support.hardening import HARDENED_SYSCTLS, SYSCTL_DROP_IN

from .conftest import OUTSIDER, SEGMENT_CLIENT, mqtt_ports


@pytest.mark.parametrize("key", sorted(HARDENED_SYSCTLS))
def test_sysctl_value_in_force(broker_host, key):
    # Read the live value, not the drop-in file.
    value = broker_host.run(f"cat /proc/sys/{key.replace('.', '/')}")
    assert value.rc == 0, value.stderr
    assert int(value.stdout.strip()) == HARDENED_SYSCTLS[key], f"{key} is {value.stdout.strip()}"


def test_sysctl_drop_in_read_at_boot_holds_the_hardened_values(broker_host):
    """The same values are in the drop-in systemd-sysctl applies at boot. No reboot here: the containers share
    this machine's kernel and are never rebooted; the VM lab proves the values in force after a reboot
    (tests/vm/test_kernel.py::test_after_a_reboot_the_kernel_hardening_is_in_force)."""
    text = broker_host.file(SYSCTL_DROP_IN).content_string
    for key, value in HARDENED_SYSCTLS.items():
        assert f"{key}={value}" in text.replace(" ", ""), f"{key} missing from the sysctl drop-in"


def test_broker_listens_only_on_segment_and_vpn_addresses(broker_host, broker):
    ports = set(mqtt_ports(broker))
    listening = broker_host.run("ss -Hltn")
    assert listening.rc == 0
    seen = set()
    for line in listening.stdout.splitlines():
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        if int(port) in ports:
            seen.add((addr.strip("[]"), int(port)))
    expected = {(a, p) for a in (broker["segment_address"], broker["vpn_address"]) for p in ports}
    assert seen == expected, f"broker ports listen on {sorted(seen)}, expected {sorted(expected)}"
    assert broker["wan_address"] not in {a for a, _ in seen}


def test_networkd_reports_the_segment_configured_from_a_file_without_a_gateway(broker_host, broker):
    """networkctl's state of the segment interface and the text of Rampart's .network file (no Gateway=); the
    routing table itself is not read here."""
    status = broker_host.run("networkctl status eth0 --no-pager")
    assert status.rc == 0, status.stderr
    assert "configured" in status.stdout, status.stdout
    network = broker_host.file("/etc/systemd/network/20-rampart-eth0.network").content_string
    assert f"Address={broker['segment_address']}/" in network
    assert "Gateway=" not in network


def test_firewall_table_defaults_to_drop(broker_host):
    table = broker_host.run("nft list table inet rampart")
    assert table.rc == 0, table.stderr
    assert "hook input priority filter; policy drop;" in table.stdout
    assert "hook forward priority filter; policy drop;" in table.stdout


def test_drops_are_logged_with_the_prefix_in_the_journal(broker_host, broker, desc):
    outsider = OUTSIDER["container"]
    time.sleep(10)  # the drop log is rate-limited: let its bucket refill after earlier probes
    assert tcp(outsider, broker["wan_address"], 2222, timeout=1.5) == "timeout"
    log = broker_host.run(f"journalctl --no-pager -q -n 400 -g '{broker['log_prefix'].strip()}'")
    assert "DPT=2222" in log.stdout, f"no drop log line for the probe:\n{log.stdout[-2000:]}"


# 150 SYNs at once from one source (non-blocking connects, closed when the script ends).
_SYN_BURST = ("import socket, sys, time\n"
              "socks = []\n"
              "for _ in range(150):\n"
              "    s = socket.socket(); s.setblocking(False); socks.append(s)\n"
              "    s.connect_ex((sys.argv[1], int(sys.argv[2])))\n"
              "time.sleep(4)\n")


def test_one_noisy_source_does_not_hide_another_sources_drops(broker_host, broker):
    """Review L9: the drop log's budget is per source (and a larger total), so an outsider flooding closed ports
    gets a few lines logged, not all, and a drop from another source in the middle of that flood is still logged.
    With one global budget the flood used it all up."""
    started = broker_host.run("date +%s").stdout.strip()
    flood = subprocess.Popen(["docker", "exec", OUTSIDER["container"], "python3", "-c", _SYN_BURST,
                              broker["wan_address"], "2224"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        time.sleep(1)
        assert tcp(SEGMENT_CLIENT["container"], broker["segment_address"], 2223, timeout=1.5) == "timeout"
    finally:
        assert flood.wait(timeout=30) == 0
    log = broker_host.run(f"journalctl --no-pager -q --since @{started} -g '{broker['log_prefix'].strip()}'").stdout
    noisy = log.count("DPT=2224")
    assert noisy <= 20, f"{noisy} drop lines for one source's 150 SYNs (its budget is a burst of 5):\n{log[-2000:]}"
    assert "DPT=2223" in log, f"the other source's drop was not logged during the flood:\n{log[-2000:]}"


def test_fail2ban_guards_the_broker_without_a_collector(broker_host, broker, desc):
    """Review M8/L17: this scenario has no log collector, and fail2ban still runs on the broker; its MQTT jails
    close only the listener ports; the management networks and the broker's own addresses are never banned."""
    assert "collector" not in desc, "this test needs a scenario without a collector"
    status = broker_host.run("fail2ban-client status")
    assert status.rc == 0, status.stderr
    for jail in ("rampart-mosquitto-auth", "rampart-mosquitto-flood", "sshd"):
        assert jail in status.stdout, f"jail {jail} is not running:\n{status.stdout}"
    ignored = broker_host.run("fail2ban-client get rampart-mosquitto-auth ignoreip")
    assert ignored.rc == 0, ignored.stderr
    for net in [*broker["management_cidrs"], broker["segment_address"], broker["vpn_address"]]:
        assert net.removesuffix("/32") in ignored.stdout, f"{net} is not in the ignore list:\n{ignored.stdout}"
    # The configured actions (fail2ban 1.1, Debian 13, starts a jail's actions only at its first ban, so the running
    # jail has none to show yet): -d prints the configuration the server was given.
    config = broker_host.run("fail2ban-client -d")
    assert config.rc == 0, config.stderr
    for jail, action in (("rampart-mosquitto-auth", "nftables-multiport"),
                         ("rampart-mosquitto-flood", "nftables-multiport"), ("sshd", "nftables-allports")):
        assert f"['set', '{jail}', 'addaction', '{action}']" in config.stdout, f"{jail} does not ban with {action}"
