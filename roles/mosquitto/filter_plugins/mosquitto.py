"""Jinja filters for the mosquitto role: thin wrappers around rampart.mosquitto and rampart.passwords.

The logic (and its unit tests) lives in the repo's Python package; scripts/bootstrap puts it on the
control node's path.
"""

from __future__ import annotations

import base64

from ansible.errors import AnsibleFilterError

try:
    from rampart import mosquitto as _mosquitto
    from rampart import passwords as _passwords
except ImportError as exc:  # pragma: no cover - only without scripts/bootstrap
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None


def _need_rampart() -> None:
    if _IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            f"the mosquitto role needs Rampart's Python package on the control node ({_IMPORT_ERROR}); "
            "run scripts/bootstrap and use .venv/bin/ansible-playbook")


def mosquitto_problems(settings: dict) -> list[str]:
    """Every problem in the role's variables (empty when valid)."""
    _need_rampart()
    return _mosquitto.validate(dict(settings))


def mosquitto_password_file(clients: list, existing_b64: str = "", iterations: int = 10000) -> str:
    """The password file: unchanged users keep their line, changed ones get a new hash."""
    _need_rampart()
    existing = base64.b64decode(existing_b64).decode() if existing_b64 else ""
    try:
        return _passwords.render_file(_mosquitto.password_users(list(clients)), existing, int(iterations))
    except ValueError as exc:
        raise AnsibleFilterError(f"mosquitto_clients: {exc}") from None


def mosquitto_acl_lines(clients: list, patterns: list | None = None) -> list[str]:
    """The ACL file body, one string per line."""
    _need_rampart()
    return _mosquitto.acl_lines(list(clients), list(patterns or []))


class FilterModule:
    def filters(self):
        return {
            "mosquitto_problems": mosquitto_problems,
            "mosquitto_password_file": mosquitto_password_file,
            "mosquitto_acl_lines": mosquitto_acl_lines,
        }
