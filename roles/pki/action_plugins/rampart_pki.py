"""Action plugin ``rampart_pki``: the pki role's private CA, run inside the controller process.

All logic lives in :mod:`rampart.pki` (unit-tested there); this file only validates the task
arguments, calls it and shapes the result. It never contacts the target host: no module is
executed, nothing is transferred, so it works while the host is unreachable. Documentation for
ansible-doc and ansible-lint is the stub in ``../library/rampart_pki.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ansible.plugins.action import ActionBase

try:
    from rampart import pki
except ImportError:  # pragma: no cover - only outside the repo's venv (which has a .pth for it)
    # The role ships inside the Rampart checkout: roles/pki/action_plugins/ -> repo root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from rampart import pki

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "key_type": {"type": "str", "default": pki.DEFAULT_KEY_TYPE, "choices": list(pki.KEY_TYPES)},
    "ca_common_name": {"type": "str", "default": "Rampart CA"},
    "ca_valid_days": {"type": "int", "default": 3650},
    "cert_valid_days": {"type": "int", "default": 397},
    "renew_before_days": {"type": "int", "default": 30},
    "ensure_ca": {"type": "bool", "default": True},
    "certificates": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "name": {"type": "str", "required": True},
            "profile": {"type": "str", "required": True, "choices": list(pki.PROFILES)},
            "dns_names": {"type": "list", "elements": "str", "default": []},
            "ip_addresses": {"type": "list", "elements": "str", "default": []},
        },
    },
}


class ActionModule(ActionBase):
    """Ensure the CA and issue leaf certificates on the control node."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        # Raises AnsibleActionFail (failed, msg) on bad arguments, in check mode too.
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        check_mode = bool(self._task.check_mode)

        result.update(changed=False, issued=[], renewed=[], unchanged=[], repaired=[], paths={})
        warnings: list[str] = []
        try:
            if args["ensure_ca"]:
                ca = pki.ensure_ca(
                    args["dir"],
                    common_name=args["ca_common_name"],
                    key_type=args["key_type"],
                    valid_days=args["ca_valid_days"],
                    check_mode=check_mode,
                )
                result["changed"] = ca["changed"]
                result["ca"] = {k: ca[k] for k in ("changed", "created", "key_type", "paths")}
                warnings += ca["warnings"]
            if args["certificates"]:
                leaves = pki.issue(
                    args["dir"],
                    args["certificates"],
                    key_type=args["key_type"],
                    valid_days=args["cert_valid_days"],
                    renew_before_days=args["renew_before_days"],
                    check_mode=check_mode,
                )
                warnings += leaves.pop("warnings")
                result.update({k: v for k, v in leaves.items() if k != "changed"})
                result["changed"] = result["changed"] or leaves["changed"]
        except (ValueError, pki.PkiError, OSError) as exc:
            # rampart.pki messages name the field and the fix and never contain key material.
            return {**result, "changed": False, "failed": True, "msg": str(exc)}
        if warnings:
            result["warnings"] = warnings
        if self._task.diff and result["changed"]:
            result["diff"] = [{"prepared": _summary(args["dir"], result)}]
        return result


def _summary(pki_dir: str, result: dict) -> str:
    """What changed (or would change) under pki_dir, one line each, for --diff; no key material."""
    lines = [f"pki_dir: {pki_dir}"]
    if result.get("ca", {}).get("created"):
        lines.append(f"+ ca: create ({result['ca']['key_type']})")
    elif result.get("ca", {}).get("changed"):
        lines.append("~ ca: repair chain.pem or modes")
    lines += [f"+ {name}: issue" for name in result["issued"]]
    lines += [f"~ {item['name']}: re-issue ({item['reason']})" for item in result["renewed"]]
    lines += [f"~ {item['name']}: repair ({item['reason']})" for item in result["repaired"]]
    return "\n".join(lines) + "\n"
