"""Filters for the mosquitto role: thin wrappers over module_utils.mosquitto and .passwords (unit-tested there)."""

from __future__ import annotations

import base64

from ansible.errors import AnsibleFilterError
from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

mosquitto = LazyModule("mosquitto")
passwords = LazyModule("passwords")


def mosquitto_problems(settings: dict) -> list[str]:
    """Every problem in the role's variables and what the wiring gives it (empty when valid)."""
    settings = dict(settings)
    return mosquitto.validate(settings) + mosquitto.wiring_problems(settings)


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


def mosquitto_acl_lines(clients: list, patterns: list | None = None) -> list[str]:
    """The ACL file body, one string per line."""
    return mosquitto.acl_lines(list(clients), list(patterns or []))


class FilterModule:
    def filters(self):
        return {
            "certificate_client_names": certificate_client_names,
            "mosquitto_problems": mosquitto_problems,
            "mqtt_client_problems": mqtt_client_problems,
            "mosquitto_password_file": mosquitto_password_file,
            "mosquitto_acl_lines": mosquitto_acl_lines,
        }
