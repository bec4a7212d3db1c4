"""Rampart's log pipeline: the senders' view of the collectors.

``targets`` turns the inventory's collectors into the list the log_shipping role takes (the
``rampart.mqtt.log_targets`` filter); ``client_name`` names each sender's certificate. The probes that
test the pipeline (RELP client, login attacker) live in the tools package (``rampart.logprobe``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Must equal log_collector_port in roles/log_collector/defaults/main.yml (a unit test checks it).
DEFAULT_PORT = 2514
# The prefix of every sender's client certificate name: "log-<inventory_hostname>".
CLIENT_PREFIX = "log-"


def client_name(host: str) -> str:
    """The client certificate name a host ships its logs with."""
    return f"{CLIENT_PREFIX}{host}"


def targets(collectors: Iterable[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One {host, address, name, port} per collector host, from its inventory variables.

    address: log_collector_bind_address, else ansible_host, else the host name; name (the TLS name
    the senders verify): log_collector_tls_server_name, else the host name; port: log_collector_port.
    """
    rows = []
    for host in collectors:
        hv = hostvars[host]
        address = hv.get("log_collector_bind_address") or hv.get("ansible_host") or host
        rows.append({
            "host": host,
            "address": str(address),
            "name": str(hv.get("log_collector_tls_server_name") or host),
            "port": int(hv.get("log_collector_port") or DEFAULT_PORT),
        })
    return rows


_SIZE_RE = re.compile(r"^[1-9][0-9]*[kmg]$")


def size_bytes(value: str) -> int:
    """rsyslog's size notation ("512m", "64k", "2g": binary units) in bytes; ValueError otherwise."""
    if not isinstance(value, str) or not _SIZE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a size like 512m, 64k or 2g")
    return int(value[:-1]) * {"k": 1024, "m": 1024**2, "g": 1024**3}[value[-1]]
