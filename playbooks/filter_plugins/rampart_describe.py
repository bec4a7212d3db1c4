"""Jinja filter for playbooks/describe.yml; the logic lives in rampart.describe."""

from rampart.describe import describe


def rampart_describe(brokers, clients, ca_file, client_cert_dir, include_passwords=False, vantage_points=None):
    return describe(list(brokers), list(clients), ca_file, client_cert_dir, bool(include_passwords),
                    None if vantage_points is None else [dict(v) for v in vantage_points])


def rampart_vantage_containers(points, prefix="rampart-lab-"):
    """Add each lab vantage point's container name (the lab's naming rule, see rampart.lab)."""
    return [{**dict(p), "container": p.get("container") or prefix + p["name"]} for p in points]


class FilterModule:
    def filters(self):
        return {"rampart_describe": rampart_describe, "rampart_vantage_containers": rampart_vantage_containers}
