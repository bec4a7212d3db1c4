"""A module_utils module imported on its first use, for the filter and test plugins.

Ansible loads every filter file of the collection to find one filter, in every worker process (one per task and
host), and its collection loader compiles module_utils from source each time, since it keeps no bytecode. A filter
file that imported its module_utils at the top would make every task that uses any rampart.mqtt filter compile all
of them; through :class:`LazyModule` a task pays only for the modules it calls.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

PACKAGE = "ansible_collections.rampart.mqtt.plugins.module_utils"


class LazyModule:
    """Stands for ``module_utils.<name>``; imports it when an attribute is first read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(f"{PACKAGE}.{self._name}")
        return getattr(self._module, attribute)
