"""The one support package of the test suites: paths, the deployment description, Docker, converges, MQTT, waiting.

Every suite (unit, inventory, behaviour, perimeter, logging) imports its shared helpers from here
(``from tests.support import REPO``, ``from tests.support.lab import LAB``...); a suite's own conftest keeps
only what is specific to it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "roles"
PLAYBOOKS = REPO / "playbooks"
INVENTORIES = REPO / "inventories"
VENV_BIN = REPO / ".venv" / "bin"
ANSIBLE_PLAYBOOK = VENV_BIN / "ansible-playbook"


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment for Ansible runs from the tests: the repo's ansible.cfg unless one is set, no colour."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", **extra)
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    return env
