"""The reachability matrix: segment client in, outsider out, VPN client in only through the tunnel."""

from __future__ import annotations

import time

import pytest

from tests.support.docker import tcp

from .conftest import (
    BROKERS,
    OUTSIDER,
    SEGMENT_CLIENT,
    VPN_CLIENT,
    docker_exec,
    latest_handshakes,
    mqtt_ports,
    mqtt_roundtrip,
    wait_until,
)


def test_segment_client_tls_mqtt_works(broker, desc):
    result = mqtt_roundtrip(SEGMENT_CLIENT["container"], broker, broker["segment_address"])
    assert result == {"connack": 0, "roundtrip": True}, result


def test_outsider_syn_to_mqtt_gets_no_answer(broker, desc):
    outsider = OUTSIDER["container"]
    for port in mqtt_ports(broker):
        assert tcp(outsider, broker["wan_address"], port) == "timeout", f"port {port} answered the outsider"


@pytest.mark.parametrize("port", [1883, 80, 443, 8080, 51821])
def test_outsider_other_ports_closed(broker, desc, port):
    assert tcp(OUTSIDER["container"], broker["wan_address"], port, timeout=1.5) != "open"


def test_outsider_ssh_refused(broker, desc):
    assert tcp(OUTSIDER["container"], broker["wan_address"], 22, timeout=2) != "open"


def test_outsider_cannot_reach_the_segment_address(broker, desc):
    assert tcp(OUTSIDER["container"], broker["segment_address"], broker["listeners"]["password"], timeout=2) != "open"


def _hub_key(broker) -> str:
    res = docker_exec(broker["container"], "wg", "show", "wg0", "public-key")
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_vpn_handshake_recent(broker, desc):
    key = _hub_key(broker)
    handshakes = wait_until(lambda: latest_handshakes(VPN_CLIENT["container"]).get(key) or None,
                            timeout=30, what="a handshake with the hub")
    assert time.time() - handshakes < 180, "the latest handshake is older than 3 minutes"


def test_vpn_client_mqtt_over_the_tunnel(broker, desc):
    result = mqtt_roundtrip(VPN_CLIENT["container"], broker, broker["vpn_address"])
    assert result == {"connack": 0, "roundtrip": True}, result


def test_vpn_client_cannot_reach_mqtt_outside_the_tunnel(broker, desc):
    assert tcp(VPN_CLIENT["container"], broker["wan_address"], broker["listeners"]["password"]) == "timeout"


def test_tunnel_down_means_no_broker(desc):
    """With the tunnel down the VPN client cannot reach the broker, even by routing the VPN address via the wan.

    Probes go only to the scenario's own containers: the VPN addresses are routed to the brokers' wan
    addresses explicitly (never out through this machine's default route).
    """
    vpn = VPN_CLIENT["container"]
    stop = docker_exec(vpn, "systemctl", "stop", "wg-quick@wg0")
    assert stop.returncode == 0, stop.stderr
    routes = [(b["vpn_address"], b["wan_address"]) for b in BROKERS]
    try:
        assert docker_exec(vpn, "ip", "link", "show", "wg0").returncode != 0, "wg0 still exists"
        for vpn_address, wan_address in routes:
            res = docker_exec(vpn, "ip", "route", "replace", f"{vpn_address}/32", "via", wan_address)
            assert res.returncode == 0, res.stderr
        for broker in BROKERS:
            for address in (broker["vpn_address"], broker["wan_address"]):
                for port in mqtt_ports(broker):
                    assert tcp(vpn, address, port) == "timeout", f"{address}:{port} answered with the tunnel down"
    finally:
        for vpn_address, _ in routes:
            docker_exec(vpn, "ip", "route", "del", f"{vpn_address}/32")
        start = docker_exec(vpn, "systemctl", "start", "wg-quick@wg0")
        assert start.returncode == 0, start.stderr
    for broker in BROKERS:
        key = _hub_key(broker)
        wait_until(lambda k=key: latest_handshakes(vpn).get(k, 0) > time.time() - 60, timeout=60,
                   what=f"a new handshake with {broker['name']}")
        assert mqtt_roundtrip(vpn, broker, broker["vpn_address"]) == {"connack": 0, "roundtrip": True}


def _preshared_keys(container: str) -> dict[str, str]:
    """Peer public key -> the pre-shared key `wg` has in force for it ("(none)" when there is none)."""
    res = docker_exec(container, "wg", "show", "wg0", "preshared-keys")
    assert res.returncode == 0, res.stderr
    return dict(line.split()[:2] for line in res.stdout.splitlines() if line.strip())


def test_a_preshared_key_is_in_force_on_both_ends_of_the_tunnel(broker, desc):
    """The tunnel between a hub and the managed VPN client uses a pre-shared key: the interface itself (not the
    config file) has one for the peer on each side, and it is the same key on both ends, so the handshake (and a
    round trip) shows it is the one in use."""
    hub, vpn = broker["container"], VPN_CLIENT["container"]
    vpn_key = docker_exec(vpn, "wg", "show", "wg0", "public-key").stdout.strip()
    on_hub, on_vpn = _preshared_keys(hub), _preshared_keys(vpn)
    assert on_hub.get(vpn_key, "(none)") != "(none)", f"the hub has no pre-shared key for the VPN client: {on_hub}"
    assert on_vpn.get(_hub_key(broker)) == on_hub[vpn_key], "the two ends hold different pre-shared keys"
    assert mqtt_roundtrip(vpn, broker, broker["vpn_address"])["roundtrip"], "no round trip through the tunnel"
