"""Action plugin ``rampart.mqtt.pki``: the pki role's private two-tier CA, run inside the controller process.

All logic lives in the module_utils/pki/ package (unit-tested in tests/unit/test_pki.py); this file
only validates the task arguments, calls it and shapes the result. It never contacts the target host: no module is
executed, nothing is transferred, so it works while the host is unreachable. Documentation for
ansible-doc and ansible-lint is the stub in ``../modules/pki.py``.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.rampart.mqtt.plugins.module_utils import pki

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
    # Client names: the same as {name, profile: client} entries in certificates, checked as one list of strings
    # (a role passing thousands of names skips building and validating thousands of dicts).
    "clients": {"type": "list", "elements": "str", "default": []},
    "intermediate_valid_days": {"type": "int", "default": 1825},
    "intermediate_generation": {"type": "int"},
    "intermediate_overlap_days": {"type": "int", "default": 30},
    "ca_key_passphrase": {"type": "str", "default": "", "no_log": True},
    "update_crl": {"type": "bool", "default": True},
    "revoked": {"type": "list", "elements": "str", "default": []},
    # Every client name the deployment still has; with update_crl, any other client folder is retired (review M3).
    "keep_clients": {"type": "list", "elements": "str"},
    "crl_valid_days": {"type": "int", "default": 30},
    "crl_renew_before_days": {"type": "int", "default": 15},
    "pkcs12_passphrase": {"type": "str", "default": "", "no_log": True},
}


class ActionModule(ActionBase):
    """On the control node, in this order: ensure the CA hierarchy, issue leaves, revoke and refresh the CRLs.

    Issuing comes before revoking so a client declared revoked from the start first gets the
    certificate its revocation then lists; a revoked client that has one is skipped.
    """

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
        result.update(changed=False, issued=[], renewed=[], unchanged=[], repaired=[], revoked=[], paths={})
        warnings: list[str] = []
        try:
            for step in (_ensure_ca, _issue, _update_crl):
                warnings += step(args, check_mode, result)
        except (ValueError, pki.PkiError, OSError) as exc:
            # The pki package's messages name the field and the fix and never contain key material or passphrases.
            return {**result, "changed": False, "failed": True, "msg": str(exc)}
        if warnings:
            result["warnings"] = warnings
        if self._task.diff and result["changed"]:
            result["diff"] = [{"prepared": _summary(args["dir"], result)}]
        return result


# Which task argument feeds which keyword of each pki call. Every call also gets dir, check mode,
# the CA key passphrase and intermediate_generation (_call).
CA_KEYWORDS = {
    "ca_common_name": "common_name",
    "key_type": "key_type",
    "ca_valid_days": "valid_days",
    "intermediate_valid_days": "intermediate_valid_days",
    "intermediate_overlap_days": "intermediate_overlap_days",
}
ISSUE_KEYWORDS = {
    "certificates": "certificates",
    "key_type": "key_type",
    "cert_valid_days": "valid_days",
    "renew_before_days": "renew_before_days",
    "revoked": "revoked",
    "pkcs12_passphrase": "pkcs12_passphrase",
}
CRL_KEYWORDS = {
    "revoked": "revoked",
    "keep_clients": "keep_clients",
    "crl_valid_days": "valid_days",
    "crl_renew_before_days": "renew_before_days",
    "intermediate_overlap_days": "intermediate_overlap_days",
}


def _call(function, keywords: dict, args: dict, check_mode: bool) -> dict:
    """``function(dir, ...)`` with the task arguments ``keywords`` names (a passphrase "" means none to pki)."""
    return function(
        args["dir"],
        check_mode=check_mode,
        passphrase=args["ca_key_passphrase"],
        intermediate_generation=args["intermediate_generation"],
        **{keyword: args[name] for name, keyword in keywords.items()},
    )


def _ensure_ca(args: dict, check_mode: bool, result: dict) -> list[str]:
    """The CA hierarchy (unless ensure_ca is false): result["ca"]; returns the warnings."""
    if not args["ensure_ca"]:
        return []
    ca = _call(pki.ensure_ca, CA_KEYWORDS, args, check_mode)
    result["changed"] = ca["changed"]
    keys = ("changed", "created", "key_type", "paths", "intermediate", "root_key_present", "encrypted")
    result["ca"] = {k: ca[k] for k in keys}
    return ca["warnings"]


def _issue(args: dict, check_mode: bool, result: dict) -> list[str]:
    """The leaves in certificates and clients (if any): issued, renewed, unchanged, repaired, revoked, paths."""
    if not args["certificates"] and not args["clients"]:
        return []
    certificates = [*args["certificates"], *({"name": name, "profile": "client"} for name in args["clients"])]
    leaves = _call(pki.issue, ISSUE_KEYWORDS, {**args, "certificates": certificates}, check_mode)
    warnings = leaves.pop("warnings")
    result.update({k: v for k, v in leaves.items() if k != "changed"})
    result["changed"] = result["changed"] or leaves["changed"]
    return warnings


def _update_crl(args: dict, check_mode: bool, result: dict) -> list[str]:
    """Revocations and the CRLs (unless update_crl is false): result["crl"]; returns the warnings."""
    if not args["update_crl"]:
        return []
    crl = _call(pki.update_crl, CRL_KEYWORDS, args, check_mode)
    warnings = crl.pop("warnings")
    result["crl"] = crl
    result["changed"] = result["changed"] or crl["changed"]
    return warnings


def _summary(pki_dir: str, result: dict) -> str:
    """What changed (or would change) under pki_dir, one line each, for --diff; no key material."""
    lines = [f"pki_dir: {pki_dir}"]
    ca = result.get("ca", {})
    inter = ca.get("intermediate") or {}
    if ca.get("created"):
        lines.append(f"+ ca: create the root ({ca['key_type']})")
    if inter.get("created"):
        lines.append(f"+ ca: issuing CA generation {inter['generation']}: {inter['reason']}")
    lines += [f"~ ca: encrypt {path} with the CA key passphrase" for path in ca.get("encrypted", [])]
    if ca.get("changed") and not ca.get("created") and not inter.get("created") and not ca.get("encrypted"):
        lines.append("~ ca: update chain.pem or repair modes")
    lines += [f"+ {name}: issue" for name in result["issued"]]
    lines += [f"~ {item['name']}: re-issue ({item['reason']})" for item in result["renewed"]]
    lines += [f"~ {item['name']}: repair ({item['reason']})" for item in result["repaired"]]
    crl = result.get("crl") or {}
    retired = crl.get("retired", [])
    lines += [f"- {name}: revoke" for name in crl.get("newly_revoked", []) if name not in retired]
    lines += [f"- {name}: retire (not in the inventory: revoke every certificate, move the folder to "
              "retired-clients/)" for name in retired]
    for name, item in (("crl.pem", crl), ("root-crl.pem", crl.get("root") or {})):
        if item.get("reason") == "new":
            lines.append(f"+ {name}: sign")
        elif item.get("reason"):
            lines.append(f"~ {name}: re-sign ({item['reason']})")
    return "\n".join(lines) + "\n"
