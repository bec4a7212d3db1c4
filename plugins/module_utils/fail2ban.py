"""The fail2ban role's cross-field checks (the argument spec cannot express them), kept here to be unit-tested."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.values import as_int

_SOURCE_RE = re.compile(r"[0-9A-Fa-f:.]+(/[0-9]{1,3})?")


def problems(s: Mapping[str, Any]) -> list[str]:
    """Every problem in the role's variables, each naming the variable (empty when valid). ``s`` maps the role's
    variable names to their values; ``fail2ban_wired_ignore_ips`` is what roles/wiring/vars/main.yml adds."""
    out = []
    bantime, auth_find, flood_find = (s.get(k) for k in (
        "fail2ban_bantime", "fail2ban_mosquitto_auth_findtime", "fail2ban_mosquitto_flood_findtime"))
    if min(as_int(bantime), as_int(auth_find), as_int(flood_find)) < 1:
        out.append(f"fail2ban_bantime ({bantime}), fail2ban_mosquitto_auth_findtime ({auth_find}) and "
                   f"fail2ban_mosquitto_flood_findtime ({flood_find}) must be at least 1 second (fail2ban reads a "
                   "negative ban time as a permanent ban).")
    auth_max, flood_max = s.get("fail2ban_mosquitto_auth_maxretry"), s.get("fail2ban_mosquitto_flood_maxretry")
    if as_int(auth_max) < 2:
        out.append(f"fail2ban_mosquitto_auth_maxretry ({auth_max}) must be at least 2: one mistyped password must not "
                   "ban a device.")
    elif as_int(flood_max) <= as_int(auth_max):
        out.append(f"fail2ban_mosquitto_flood_maxretry ({flood_max}) must be above fail2ban_mosquitto_auth_maxretry "
                   f"({auth_max}): every login is also a new connection.")
    ports = list(s.get("fail2ban_ports") or [])
    if not ports or any(not 1 <= as_int(p) <= 65535 for p in ports):
        out.append(f"fail2ban_ports ({ports}) must list TCP ports between 1 and 65535.")
    ignore, wired = list(s.get("fail2ban_ignore_ips") or []), list(s.get("fail2ban_wired_ignore_ips") or [])
    if any(not _SOURCE_RE.fullmatch(str(v)) for v in ignore + wired):
        wired_note = (f" So must the wired ones ({wired}: nftables_management_cidrs, the collectors and the broker "
                      "addresses).") if wired else ""
        out.append(f"fail2ban_ignore_ips ({ignore}) must hold IP addresses or networks (CIDR) only; fail2ban would "
                   f"resolve names at every start.{wired_note}")
    return out
