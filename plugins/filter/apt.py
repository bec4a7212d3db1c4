"""Filter over a managed host's apt sources (the mosquitto role's backports source); logic in module_utils."""

from __future__ import annotations

import base64

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

_apt_sources = LazyModule("apt_sources")


def debian_archive(slurped, suite):
    """The archive URI serving ``suite`` in the slurped apt sources files (ansible.builtin.slurp results), or ''."""
    files = {r["source"]: base64.b64decode(r["content"]).decode("utf-8", "replace")
             for r in slurped if "content" in r}
    return _apt_sources.debian_archive(files, suite) or ""


class FilterModule:
    def filters(self):
        return {"debian_archive": debian_archive}
