"""Filters for the perimeter roles (vlan, nftables, wireguard) and their wiring; logic in module_utils.perimeter."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

perimeter = LazyModule("perimeter")


def vlan_problems(settings: dict) -> list[str]:
    return perimeter.vlan_problems(dict(settings))


def nftables_problems(settings: dict) -> list[str]:
    return perimeter.nftables_problems(dict(settings))


def nftables_rules(rules: list) -> list[dict]:
    return perimeter.nftables_rules([dict(r) for r in rules])


def cidrs_by_family(values: list) -> dict:
    return perimeter.cidrs_by_family([str(v) for v in values])


def wireguard_problems(settings: dict, inventory_hosts: list) -> list[str]:
    return perimeter.wireguard_problems(dict(settings), [str(h) for h in inventory_hosts])


def network(value: str) -> str:
    """10.86.0.2/24 -> 10.86.0.0/24."""
    return perimeter.network(str(value))


def address(value: str) -> str:
    """10.86.0.2/24 -> 10.86.0.2."""
    return perimeter.address(str(value))


def host_cidr(value: str) -> str:
    """10.86.0.2/24 -> 10.86.0.2/32 (what a hub routes to one peer)."""
    return perimeter.host_cidr(str(value))


def peer_allowed_ips(peer: dict, managed: dict | None = None) -> list[str]:
    """What this host routes to a wireguard_peers entry (its AllowedIPs); ``managed``: a managed peer's hostvars."""
    managed = managed or {}
    return perimeter.peer_allowed_ips(dict(peer), {k: managed.get(k) for k in
                                                   ("wireguard_addresses", "wireguard_routed_networks")})


class FilterModule:
    def filters(self):
        return {
            "vlan_problems": vlan_problems,
            "nftables_problems": nftables_problems,
            "nftables_rules": nftables_rules,
            "cidrs_by_family": cidrs_by_family,
            "wireguard_problems": wireguard_problems,
            "network": network,
            "address": address,
            "host_cidr": host_cidr,
            "peer_allowed_ips": peer_allowed_ips,
        }
