"""Jinja filters for the vlan role: thin wrappers around rampart.perimeter (unit-tested there)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from rampart import perimeter as _perimeter
except ImportError as exc:  # pragma: no cover - only without scripts/bootstrap
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None


def rampart_vlan_problems(settings: dict) -> list[str]:
    if _IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            f"the vlan role needs Rampart's Python package on the control node ({_IMPORT_ERROR}); "
            "run scripts/bootstrap and use .venv/bin/ansible-playbook")
    return _perimeter.vlan_problems(dict(settings))


class FilterModule:
    def filters(self):
        return {"rampart_vlan_problems": rampart_vlan_problems}
