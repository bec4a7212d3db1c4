"""Filters for the security profiles: thin wrappers over module_utils.profiles (unit-tested there)."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

profiles = LazyModule("profiles")


def profile_problems(profile, settings: dict) -> list[str]:
    """Why the settings do not meet the declared profile (empty when they do)."""
    return profiles.problems(profile, dict(settings))


class FilterModule:
    def filters(self):
        return {"profile_problems": profile_problems}
