"""Filters for the pki role's validation; logic in module_utils.pki.settings."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

settings = LazyModule("pki.settings")


def pki_problems(values: dict) -> list[str]:
    """The run's CA settings and certificate lists: custody, lifetimes, names (empty when valid)."""
    return settings.problems(dict(values))


def pki_server_problems(values: dict, host: str) -> list[str]:
    """This host's own server certificate settings (empty when valid or when it has none)."""
    return settings.server_problems(str(host), dict(values))


class FilterModule:
    def filters(self):
        return {"pki_problems": pki_problems, "pki_server_problems": pki_server_problems}
