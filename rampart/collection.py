"""How the tools reach the collection's Python (its module_utils), one way for every tool.

The tools (lab, benchmarks, probes, custody commands) reuse the logic the rampart.mqtt collection
ships; the collection never imports the tools. In this repository the collection is the repository
itself, linked as ``.collections/ansible_collections/rampart/mqtt`` by scripts/bootstrap; elsewhere (a
user's own repository, AWX) it is wherever ``ansible-galaxy collection install`` put it. Ansible's own
collection loader finds either through the configured collections paths; when none of them holds it,
the project directory's ``.collections`` link (rampart.project) is used, so the tools of a bootstrapped
checkout work from any directory.

``module_utils(name)`` returns the module lazily: it is imported on first use, so a tool's ``--help``
works where the collection is not installed, and the error says how to install it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "ansible_collections.rampart.mqtt.plugins.module_utils"
RELATIVE = ("ansible_collections", "rampart", "mqtt")


def load(name: str) -> ModuleType:
    """``ansible_collections.rampart.mqtt.plugins.module_utils.<name>``, imported from the installed collection."""
    try:
        return importlib.import_module(f"{PACKAGE}.{name}")
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("ansible_collections"):
            raise
    from ansible import constants
    from ansible.plugins.loader import init_plugin_loader  # Ansible's finder over COLLECTIONS_PATHS

    # The plain import may have left a namespace package for ansible_collections (the ansible package's
    # bundled collections) that would shadow Ansible's finder: forget it, then import through the finder.
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        for loaded in [m for m in sys.modules
                       if m == "ansible_collections" or m.startswith("ansible_collections.rampart")]:
            del sys.modules[loaded]
        configured = [p for p in constants.COLLECTIONS_PATHS if Path(p, *RELATIVE).is_dir()]
        init_plugin_loader(None if configured else _project_link())
    try:
        return importlib.import_module(f"{PACKAGE}.{name}")
    except ModuleNotFoundError as exc:
        raise SystemExit(f"rampart: the rampart.mqtt collection is not installed where Ansible looks for collections "
                         f"({exc}); run scripts/bootstrap in the checkout, or `ansible-galaxy collection install` "
                         "the release tarball and point ANSIBLE_COLLECTIONS_PATH (or ansible.cfg) at it") from None


def _project_link() -> list[str] | None:
    """The project's .collections link (a bootstrapped checkout, see rampart.project), when there is one."""
    from rampart import project

    try:
        link = project.find() / ".collections"
    except SystemExit:
        return None
    return [str(link)] if (link / Path(*RELATIVE)).is_dir() else None


class _Lazy(ModuleType):
    """Stands for a module_utils module until an attribute is used, then forwards to the real module."""

    def __getattr__(self, attr: str):
        module = load(self.__name__.rsplit(".", 1)[-1])
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def module_utils(name: str) -> ModuleType:
    """The collection's ``module_utils.<name>``, imported on first use (see the module docstring)."""
    return _Lazy(f"{PACKAGE}.{name}")
