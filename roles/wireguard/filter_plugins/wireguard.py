"""Jinja filters for the wireguard role: thin wrappers around rampart.perimeter (unit-tested there)."""

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
            f"the wireguard role needs Rampart's Python package on the control node ({_IMPORT_ERROR}); "
            "run scripts/bootstrap and use .venv/bin/ansible-playbook")


def rampart_wireguard_problems(settings: dict, inventory_hosts: list) -> list[str]:
    _need_rampart()
    return _perimeter.wireguard_problems(dict(settings), [str(h) for h in inventory_hosts])


def rampart_network(value: str) -> str:
    _need_rampart()
    return _perimeter.network(str(value))


def rampart_address(value: str) -> str:
    _need_rampart()
    return _perimeter.address(str(value))


def rampart_host_cidr(value: str) -> str:
    """10.86.0.2/24 -> 10.86.0.2/32 (what a hub routes to one peer)."""
    _need_rampart()
    addr = _perimeter.address(str(value))
    return f"{addr}/{128 if ':' in addr else 32}"


class FilterModule:
    def filters(self):
        return {
            "rampart_wireguard_problems": rampart_wireguard_problems,
            "rampart_network": rampart_network,
            "rampart_address": rampart_address,
            "rampart_host_cidr": rampart_host_cidr,
        }
