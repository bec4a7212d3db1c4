"""Jinja filters for the nftables role: thin wrappers around rampart.perimeter (unit-tested there)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from rampart import perimeter as _perimeter
except ImportError as exc:  # pragma: no cover - only without scripts/bootstrap
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None


def _need_rampart() -> None:
    if _IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            f"the nftables role needs Rampart's Python package on the control node ({_IMPORT_ERROR}); "
            "run scripts/bootstrap and use .venv/bin/ansible-playbook")


def rampart_nftables_problems(settings: dict) -> list[str]:
    _need_rampart()
    return _perimeter.nftables_problems(dict(settings))


def rampart_nftables_rules(rules: list) -> list[dict]:
    _need_rampart()
    return _perimeter.nftables_rules([dict(r) for r in rules])


def rampart_cidrs_by_family(values: list) -> dict:
    _need_rampart()
    return _perimeter.cidrs_by_family([str(v) for v in values])


class FilterModule:
    def filters(self):
        return {
            "rampart_nftables_problems": rampart_nftables_problems,
            "rampart_nftables_rules": rampart_nftables_rules,
            "rampart_cidrs_by_family": rampart_cidrs_by_family,
        }
