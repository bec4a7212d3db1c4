"""The checks of roles/wiring/vars/main.yml: the contracts between the roles and the inventory knobs that belong to
no role, each problem naming the variable the operator wrote (never the role variable it becomes).

playbooks/validate.yml runs :func:`problems` on every host, before any role's own checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.logship import client_name
from ansible_collections.rampart.mqtt.plugins.module_utils.values import as_bool, as_int, git_checkout_of, json_text

_CIDR_RE = re.compile(r"[0-9A-Fa-f:.]+/[0-9]{1,3}")

# The perimeter's per-source limits: (knob, minimum, meaning).
LIMITS = (
    ("perimeter_mqtt_rate", 0, "new MQTT connections per minute from one source, 0 for no limit"),
    ("perimeter_mqtt_burst", 1, "connections one source may open at once before the rate applies"),
    ("perimeter_mqtt_max_connections", 0, "concurrent MQTT connections from one source, 0 for no limit"),
)


def problems(s: Mapping[str, Any]) -> list[str]:
    """Every wiring problem of one host. ``s``: ``host``; ``groups`` (the inventory's groups: brokers, perimeter,
    collectors); ``play_hosts`` (the hosts of this run); ``rampart_perimeter`` (false: the broker's firewall and
    segment are managed elsewhere); ``perimeter`` (the knobs, named as in LIMITS and perimeter_mqtt_extra_sources,
    perimeter_wireguard_sources, with their defaults); ``senders`` (the hosts that ship logs);
    ``mosquitto_clients``; ``pki_disposable`` (true: a throw-away test deployment, such as the lab's and
    Molecule's), ``vlan_remount_proc_sys`` and ``wireguard_export_dir``."""
    host, groups = s["host"], s["groups"]
    in_group = {name: host in (groups.get(name) or []) for name in ("brokers", "perimeter", "wireguard")}
    out = []
    if in_group["brokers"] and not in_group["perimeter"] and as_bool(s.get("rampart_perimeter", True)):
        out.append(f"{host} is in brokers but not in perimeter, so site.yml would give it no firewall and no isolated "
                   "segment. Add it to the perimeter group (with vlan_* and nftables_management_cidrs, as in "
                   "inventories/example), or set rampart_perimeter: false for it when its firewall and segment are "
                   "managed elsewhere.")
    if in_group["perimeter"]:
        out += _perimeter_problems(s.get("perimeter") or {})
    if not as_bool(s.get("pki_disposable")):
        out += _production_problems(s, in_group)
    collectors = list(groups.get("collectors") or [])
    if collectors and host in (s.get("senders") or []):
        missing = [c for c in collectors if c not in (s.get("play_hosts") or [])]
        if missing:
            out.append(f"log_shipping_targets: the collectors {json_text(missing)} are outside this run (--limit), so "
                       "the senders cannot learn their address, name and port; add them to --limit.")
    if collectors and in_group["brokers"]:
        sender_names = {client_name(h) for h in s.get("senders") or []}
        for i, client in enumerate(s.get("mosquitto_clients") or []):
            if not isinstance(client, Mapping):
                continue  # the mosquitto role's argument spec names it
            name = client.get("name")
            if name in sender_names:
                out.append(f"mosquitto_clients[{i}].name {json_text(name)} is the name of a log sender's certificate "
                           "(log-<host>, from the infrastructure CA); rename the client, so that a name in the "
                           "broker's log, its ACL and the audit means one thing (review M4).")
    return out


def _perimeter_problems(knobs: Mapping[str, Any]) -> list[str]:
    out = []
    for name, minimum, meaning in LIMITS:
        value = knobs.get(name)
        if not re.fullmatch(r"[0-9]+", str(value)) or as_int(value) < minimum:
            out.append(f"{name} ({json_text(value)}) must be an integer >= {minimum}: {meaning}.")
    for name in ("perimeter_mqtt_extra_sources", "perimeter_wireguard_sources"):
        value = knobs.get(name)
        if (not isinstance(value, (list, tuple))
                or any(not _CIDR_RE.fullmatch(str(v)) for v in value)):
            out.append(f"{name} ({json_text(value)}) must be a list of networks in CIDR notation (e.g. 10.20.0.0/24).")
    return out


def _production_problems(s: Mapping[str, Any], in_group: Mapping[str, bool]) -> list[str]:
    """What only a throw-away test deployment (pki_disposable: true) may do (review L15, L11), on the hosts whose
    roles read the variable (vlan on the perimeter, wireguard on the VPN)."""
    out = []
    if in_group["perimeter"] and as_bool(s.get("vlan_remount_proc_sys")):
        out.append("vlan_remount_proc_sys is true outside a throw-away test deployment (pki_disposable is not true): "
                   "it remounts /proc/sys read-write, which in a container exposes the host kernel's global sysctls "
                   "(kernel.core_pattern) to root in the container; it is for the lab's containers only. Remove it on "
                   "a real server.")
    export_dir = str(s.get("wireguard_export_dir") or "") if in_group["wireguard"] else ""
    if export_dir:
        checkout = git_checkout_of(export_dir) if export_dir.startswith("/") else None
        if not export_dir.startswith("/"):
            out.append(f"wireguard_export_dir ({export_dir!r}) is relative: the exported peers' private keys would "
                       "land wherever ansible-playbook runs from; give an absolute path outside any git checkout.")
        elif checkout is not None:
            out.append(f"wireguard_export_dir ({export_dir}) is inside the git checkout {checkout}: one "
                       "'git add -A' would commit the exported peers' private keys; move it outside.")
    return out
