"""Filters over a managed host's apt sources (the mosquitto role's backports source); logic in module_utils."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

_apt_sources = LazyModule("apt_sources")


def apt_sources(listing):
    """The host's apt sources files, {path: text} in the order apt reads them, from the output of
    ``grep -rH '' /etc/apt/sources.list /etc/apt/sources.list.d`` (one command for every file)."""
    return _apt_sources.from_listing(listing)


def debian_archive(files, suite):
    """The archive URI serving ``suite`` in the apt sources files ({path: text}, as apt_sources gives), or ''."""
    return _apt_sources.debian_archive(files, suite) or ""


class FilterModule:
    def filters(self):
        return {"apt_sources": apt_sources, "debian_archive": debian_archive}
