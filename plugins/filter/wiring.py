"""Filter for the checks of roles/wiring/vars/main.yml; logic in module_utils.wiring (unit-tested there)."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

wiring = LazyModule("wiring")


def wiring_problems(settings: dict) -> list[str]:
    """Every wiring problem of one host (empty when valid)."""
    return wiring.problems(dict(settings))


class FilterModule:
    def filters(self):
        return {"wiring_problems": wiring_problems}
