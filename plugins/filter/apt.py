"""Filters over a managed host's apt sources (the mosquitto role's backports source) and over what it has installed
and running (playbooks/prepare.yml); logic in module_utils."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

_apt_sources = LazyModule("apt_sources")
_host_state = LazyModule("host_state")


def apt_sources(listing):
    """The host's apt sources files, {path: text} in the order apt reads them, from the output of
    ``grep -rH '' /etc/apt/sources.list /etc/apt/sources.list.d`` (one command for every file)."""
    return _apt_sources.from_listing(listing)


def debian_archive(files, suite):
    """The archive URI serving ``suite`` in the apt sources files ({path: text}, as apt_sources gives), or ''."""
    return _apt_sources.debian_archive(files, suite) or ""


def host_state(listing):
    """{'packages': [...], 'enabled': [...], 'running': [...], 'apt_index_age': seconds}: the packages installed,
    the services enabled, those both active and enabled, and the package index's age, from the output of
    playbooks/prepare.yml's one command (module_utils/host_state.py)."""
    return _host_state.parse(listing)


class FilterModule:
    def filters(self):
        return {"apt_sources": apt_sources, "debian_archive": debian_archive, "host_state": host_state}
