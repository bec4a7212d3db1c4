"""Filters of the pki role: validation (module_utils.pki.settings), what a RELP listener pins (.revocation)."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

settings = LazyModule("pki.settings")
revocation = LazyModule("pki.revocation")


def pki_problems(values: dict) -> list[str]:
    """The run's CA settings and certificate lists: custody, lifetimes, names (empty when valid)."""
    return settings.problems(dict(values))


def pki_server_problems(values: dict, host: str) -> list[str]:
    """This host's own server certificate settings (empty when valid or when it has none)."""
    return settings.server_problems(str(host), dict(values))


def pinned_fingerprints(pki_dir: str, names: list) -> list[str]:
    """SHA-1 fingerprints of every valid, unrevoked certificate the clients ``names`` hold in ``pki_dir`` (review
    L5: what a RELP listener admits, since librelp checks no CRL)."""
    return revocation.pinned_fingerprints(str(pki_dir), [str(n) for n in names])


class FilterModule:
    def filters(self):
        return {"pki_problems": pki_problems, "pki_server_problems": pki_server_problems,
                "pinned_fingerprints": pinned_fingerprints}
