"""Filters for the mosquitto role: thin wrappers over module_utils.mosquitto and .passwords (unit-tested there)."""

from __future__ import annotations

import base64

from ansible.errors import AnsibleFilterError
from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

bridges = LazyModule("bridges")
mosquitto = LazyModule("mosquitto")
passwords = LazyModule("passwords")


def mosquitto_problems(settings: dict) -> list[str]:
    """Every problem in the role's variables and what the wiring gives it (empty when valid)."""
    settings = dict(settings)
    return mosquitto.validate(settings) + bridges.validate(settings) + mosquitto.wiring_problems(settings)


def mqtt_client_problems(names: list, clients: list) -> list[str]:
    """A client host's names that are no client of the inventory (empty when all are)."""
    return mosquitto.client_host_problems(list(names), [dict(c) for c in clients])


def certificate_client_names(clients: list) -> list[str]:
    """The names of the certificate clients in a mosquitto_clients list (review M3 and the certificates play)."""
    return mosquitto.certificate_client_names([dict(c) if hasattr(c, "keys") else c for c in clients or []])


def mosquitto_password_file(clients: list, existing_b64: str = "", iterations: int = 10000) -> str:
    """The password file: unchanged users keep their line, changed ones get a new hash."""
    existing = base64.b64decode(existing_b64).decode() if existing_b64 else ""
    try:
        return passwords.render_file(mosquitto.password_users(list(clients)), existing, int(iterations))
    except ValueError as exc:
        raise AnsibleFilterError(f"mosquitto_clients: {exc}") from None


def mosquitto_acl_lines(clients: list, patterns: list | None = None, bridge_clients: list | None = None) -> list[str]:
    """The ACL file body, one string per line; ``bridge_clients``: the sections of the bridges that dial this broker."""
    return mosquitto.acl_lines([*clients, *(bridge_clients or [])], list(patterns or []))


def mosquitto_bridge_problems(bridge_list: list, host: str, brokers: list, play_hosts: list, hostvars) -> list[str]:
    """The far end of each of a broker's bridges (run after every broker published its listeners), and the bridges
    that dial it from brokers outside the run."""
    return (bridges.remote_problems(str(host), list(bridge_list or []), list(brokers), list(play_hosts), hostvars)
            + bridges.incoming_problems(str(host), list(brokers), list(play_hosts), hostvars))


def bridge_identities(bridge_list: list, host: str, revoked: bool | None = None) -> list[str]:
    """The certificate names of a broker's bridges (all, or only the revoked or the active ones)."""
    return bridges.identities(str(host), bridge_list, revoked)


def bridge_identity(name: str, host: str) -> str:
    """The certificate name (and username on the remote broker) of a broker's bridge."""
    return bridges.identity(str(host), str(name))


def active_bridges(bridge_list: list) -> list[dict]:
    """The bridges a broker dials: every one not revoked, in order."""
    return bridges.active(bridge_list)


def mosquitto_bridge_clients(brokers: list, me: str, hostvars) -> list[dict]:
    """The ACL entries of the bridges that dial this broker, from the edges' mosquitto_bridges."""
    return bridges.acl_clients(str(me), list(brokers), hostvars)


def mosquitto_bridge_sources(brokers: list, me: str, hostvars) -> list[str]:
    """The addresses of the edges that bridge to this broker (its firewall admits them)."""
    return bridges.sources(str(me), list(brokers), hostvars)


def mosquitto_bridge_conf(bridge: dict, host: str, endpoint: dict, files: dict, tls_version: str) -> list[str]:
    """One bridge's section of mosquitto.conf, one string per line."""
    return bridges.conf_lines(str(host), dict(bridge), dict(endpoint), dict(files), str(tls_version))


class FilterModule:
    def filters(self):
        return {
            "certificate_client_names": certificate_client_names,
            "mosquitto_problems": mosquitto_problems,
            "mqtt_client_problems": mqtt_client_problems,
            "mosquitto_password_file": mosquitto_password_file,
            "mosquitto_acl_lines": mosquitto_acl_lines,
            "mosquitto_bridge_problems": mosquitto_bridge_problems,
            "bridge_identities": bridge_identities,
            "bridge_identity": bridge_identity,
            "active_bridges": active_bridges,
            "mosquitto_bridge_clients": mosquitto_bridge_clients,
            "mosquitto_bridge_sources": mosquitto_bridge_sources,
            "mosquitto_bridge_conf": mosquitto_bridge_conf,
        }
