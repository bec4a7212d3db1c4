"""Filters for playbooks/describe.yml (the deployment description, .lab/lab.json); logic in module_utils.describe."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

_describe = LazyModule("describe")


def describe(brokers, clients, ca_file, client_cert_dir, include_passwords=False, vantage_points=None,
             pkcs12_passphrase=""):
    return _describe.describe(list(brokers), list(clients), ca_file, client_cert_dir, bool(include_passwords),
                              None if vantage_points is None else [dict(v) for v in vantage_points],
                              str(pkcs12_passphrase or ""))


def vantage_containers(points, prefix="rampart-lab-"):
    """Add each lab vantage point's container name (the lab's naming rule, see rampart.lab)."""
    return [{**dict(p), "container": p.get("container") or prefix + p["name"]} for p in points]


class FilterModule:
    def filters(self):
        return {"describe": describe, "vantage_containers": vantage_containers}
