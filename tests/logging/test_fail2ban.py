"""Brute force and connection floods get the source banned (nftables), others stay unaffected, bans expire; a
ban closes only the MQTT ports; the control node is never banned."""

from __future__ import annotations

import ipaddress
import subprocess
import time

import pytest

from rampart import logprobe, mqttprobe
from tests.support.docker import docker_exec_ok, sh
from tests.support.wait import wait_for

from .conftest import marker

pytestmark = pytest.mark.floods

JAILS = {"login": "rampart-mosquitto-auth", "connect": "rampart-mosquitto-flood"}


def _banned(broker: dict, jail: str) -> list[str]:
    out = sh(broker["container"], f"fail2ban-client get {jail} banip")
    return out.split()


def _f2b_table(broker: dict) -> str:
    """fail2ban's nftables table on the broker, or "" while it does not exist yet."""
    return sh(broker["container"], "nft list table inet f2b-table 2>/dev/null || true")


@pytest.fixture
def unban(broker, attacker):
    """Whatever happens in the test, its ban does not outlive it (a leftover ban would fail the next test)."""
    yield
    for jail in JAILS.values():
        sh(broker["container"], f"fail2ban-client set {jail} unbanip {attacker['address']} >/dev/null 2>&1 || true")


def _ssh_port_open(attacker: dict, address: str) -> bool:
    """A TCP connection from the attacker's container to the broker's SSH port."""
    res = subprocess.run(["docker", "exec", attacker["container"], "timeout", "5", "bash", "-c",
                          f"exec 3<>/dev/tcp/{address}/22"], capture_output=True, text=True, check=False)
    return res.returncode == 0


def _control_node_address(broker: dict) -> str:
    """The control node's own address as the broker sees it (the source of the kernel's route to the broker)."""
    route = subprocess.run(["ip", "-o", "route", "get", broker["address"]], capture_output=True, text=True,
                           check=True).stdout
    return route.split(" src ", 1)[1].split()[0]


def _legit_connects(lab: dict, broker: dict, publisher: dict) -> bool:
    ctx = mqttprobe.tls_context(lab["ca_file"])
    res = mqttprobe.raw_connect(broker["address"], broker["port"], ctx, broker["tls_server_name"],
                                username=publisher["username"], password=publisher["password"])
    return res.accepted


@pytest.mark.parametrize("mode", ["login", "connect"])
def test_attacker_is_banned_others_are_not_and_the_ban_expires(lab, broker, attacker, publisher, mode, unban):
    f2b = lab["fail2ban"]
    if mode == "connect":
        assert f2b["flood_enabled"], "the scenario must enable the flood jail"
    jail = JAILS[mode]
    tries = f2b["auth_maxretry"] if mode == "login" else f2b["flood_maxretry"] + 1
    name = marker("attacker")
    assert _legit_connects(lab, broker, publisher), "the legitimate client cannot connect before the attack"
    assert attacker["address"] not in _banned(broker, jail)
    assert _ssh_port_open(attacker, broker["address"]), "the attacker cannot reach SSH even before the attack"

    out = docker_exec_ok(attacker["container"], *logprobe.attacker_argv(
        mode, broker["address"], broker["port"], tries, username=name, password="wrong-" + name, client_id=name)).stdout
    results = logprobe.attacker_results(out)
    expected = "connack:5" if mode == "login" else "connected"
    assert results.count(expected) >= min(tries, f2b["auth_maxretry"]), out

    started = time.monotonic()
    wait_for(lambda: attacker["address"] in _banned(broker, jail), timeout=30, what=f"a ban in {jail}")
    print(f"\nBENCHMARK {jail} banned {attacker['address']} on {broker['name']} "
          f"{time.monotonic() - started:.1f} s after the last try")
    # fail2ban lists the ban before its action has run (the first ban also creates the table): wait for nftables.
    wait_for(lambda: attacker["address"] in _f2b_table(broker), timeout=15, what="the ban in table inet f2b-table")

    blocked = logprobe.attacker_results(docker_exec_ok(attacker["container"], *logprobe.attacker_argv(
        "login", broker["address"], broker["port"], 1, username=name, password="x", client_id=name)).stdout)
    assert blocked[0].startswith("error:"), f"the banned attacker still reached the broker: {blocked}"
    # Review M8/L17: the MQTT jails close the MQTT ports only (nftables-multiport); SSH and replies stay.
    assert _ssh_port_open(attacker, broker["address"]), "an MQTT ban closed SSH too (allports instead of multiport)"
    assert _legit_connects(lab, broker, publisher), "the legitimate client was locked out by the attacker's ban"

    banned_at = time.monotonic()
    wait_for(lambda: attacker["address"] not in _banned(broker, jail), timeout=f2b["bantime"] + 30, interval=1,
             what="the ban to expire")
    print(f"BENCHMARK ban lifted after {time.monotonic() - banned_at:.1f} s (bantime {f2b['bantime']} s)")
    again = logprobe.attacker_results(docker_exec_ok(attacker["container"], *logprobe.attacker_argv(
        "connect", broker["address"], broker["port"], 1)).stdout)
    assert again == ["connected"], f"the attacker is still blocked after the ban expired: {again}"


def test_the_control_node_is_never_banned(lab, broker, publisher):
    """Review M8: the management networks (nftables_management_cidrs, where the control node is) are wired into
    fail2ban's ignore list. More failed logins from the control node than the threshold are seen and ignored."""
    me = _control_node_address(broker)
    f2b = lab["fail2ban"]
    assert any(ipaddress.ip_address(me) in ipaddress.ip_network(net, strict=False) for net in f2b["ignore_ips"]), \
        f"the control node {me} is not in the wired ignore list {f2b['ignore_ips']}"
    jail = JAILS["login"]
    ignored = f"[{jail}] Ignore {me} by ip"
    seen_before = int(sh(broker["container"], f"grep -c -F -- '{ignored}' /var/log/fail2ban.log || true").strip() or 0)
    ctx = mqttprobe.tls_context(lab["ca_file"])
    name = marker("control-node")
    for _ in range(f2b["auth_maxretry"] + 2):
        res = mqttprobe.raw_connect(broker["address"], broker["port"], ctx, broker["tls_server_name"],
                                    username=name, password="wrong-" + name, client_id=name)
        assert res.outcome == "connack" and res.code == 5, res
    wait_for(lambda: int(sh(broker["container"], f"grep -c -F -- '{ignored}' /var/log/fail2ban.log || true").strip()
                         or 0) > seen_before, timeout=30, what=f"fail2ban to ignore {me}")
    assert me not in _banned(broker, jail), f"the control node {me} was banned"
    assert _legit_connects(lab, broker, publisher), "the control node was locked out"
