"""Filters for the pki role's validation; logic in module_utils.pki.custody."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.pki import custody


def pki_custody_problems(settings: dict) -> list[str]:
    """Where and how the CA key may be kept (pki_dir, pki_ca_key_passphrase, pki_disposable)."""
    return custody.custody_problems(str(settings.get("pki_dir", "")), str(settings.get("pki_ca_key_passphrase") or ""),
                                    bool(settings.get("pki_disposable")))


class FilterModule:
    def filters(self):
        return {"pki_custody_problems": pki_custody_problems}
