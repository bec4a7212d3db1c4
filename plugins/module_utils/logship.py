"""Rampart's log pipeline: the senders' view of the collectors, and the collectors' view of the senders.

``targets`` turns the inventory's collectors into the list the log_shipping role takes (the
``rampart.mqtt.log_targets`` filter); ``senders`` turns the senders into the list the collector files lines by
(``rampart.mqtt.log_senders``: each sender's name and the address its lines arrive from); ``client_name`` names
each sender's certificate. The probes that test the pipeline (RELP client, login attacker) live in the tools
package (``rampart.logprobe``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.addresses import is_ip_address, is_unspecified_address
from ansible_collections.rampart.mqtt.plugins.module_utils.pki.names import is_valid_dns_name
from ansible_collections.rampart.mqtt.plugins.module_utils.values import as_int, json_text

# Must equal log_collector_port in roles/log_collector/defaults/main.yml (a unit test checks it).
DEFAULT_PORT = 2514
# The prefix of every sender's client certificate name: "log-<inventory_hostname>".
CLIENT_PREFIX = "log-"
# The quarantine's folder for lines from an address no sender has (roles/log_collector's rsyslog rules).
UNKNOWN_ADDRESS = "unknown-address"


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


def senders(hosts: Iterable[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """One {name, address} per sender: the inventory name its lines are filed under, and the address they arrive
    from at the collector (logs_source_address, else ansible_host, else the host name; validation refuses one
    that is not a literal IP address). Addresses are written as rsyslog writes a peer's address (compressed)."""
    rows = []
    for host in hosts:
        hv = hostvars[host]
        address = str(hv.get("logs_source_address") or hv.get("ansible_host") or host)
        if is_ip_address(address):
            address = str(ipaddress.ip_address(address))
        rows.append({"name": str(host), "address": address})
    return rows


_SIZE_RE = re.compile(r"^[1-9][0-9]*[kmg]$")


def size_bytes(value: str) -> int:
    """rsyslog's size notation ("512m", "64k", "2g": binary units) in bytes; ValueError otherwise."""
    if not isinstance(value, str) or not _SIZE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a size like 512m, 64k or 2g")
    return int(value[:-1]) * {"k": 1024, "m": 1024**2, "g": 1024**3}[value[-1]]


def is_size(value: Any) -> bool:
    """True for rsyslog's size notation (see :func:`size_bytes`)."""
    try:
        size_bytes(value)
    except ValueError:
        return False
    return True


_SHA1_RE = re.compile(r"SHA1(?::[0-9A-F]{2}){20}")
_PEER_RE = re.compile(r"[A-Za-z0-9*][A-Za-z0-9_.*-]*")
_MODE_RE = re.compile(r"0[0-7][0-7]0")
_PATH_RE = re.compile(r"/[!-~]+")
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def collector_problems(s: Mapping[str, Any]) -> list[str]:
    """Cross-field checks of the log_collector role's variables the argument spec cannot express, each naming the
    variable (empty when valid). ``s`` maps the role's variable names to their values."""
    problems = []
    address = s.get("log_collector_bind_address")
    if not is_ip_address(address) or is_unspecified_address(address):
        problems.append(f"log_collector_bind_address '{address}' must be one literal IP address of the collector "
                        "(not a name, not an address meaning every address such as 0.0.0.0, :: or ::ffff:0.0.0.0).")
    port = s.get("log_collector_port")
    if not 1 <= as_int(port) <= 65535:
        problems.append(f"log_collector_port ({port}) must be a port between 1 and 65535.")
    peers = list(s.get("log_collector_permitted_peers") or [])
    if not peers or any(not _PEER_RE.fullmatch(str(p)) for p in peers):
        problems.append(f"log_collector_permitted_peers ({peers}) must list at least one client certificate name, "
                        "each of letters, digits, '.', '-', '_' or a '*' wildcard.")
    pins = s.get("log_collector_permitted_fingerprints")
    if pins is not None and (not isinstance(pins, list) or any(not _SHA1_RE.fullmatch(str(p)) for p in pins)):
        problems.append(f"log_collector_permitted_fingerprints ({pins}) must be a list of SHA-1 certificate "
                        "fingerprints written as librelp reads them, SHA1: and 20 upper-case hex pairs joined by ':' "
                        "(openssl x509 -noout -fingerprint -sha1 prints them after 'SHA1 Fingerprint='), or null to "
                        "admit by name.")
    file_mode, dir_mode, log_dir = (s.get(k) for k in ("log_collector_file_mode", "log_collector_dir_mode",
                                                       "log_collector_dir"))
    if not (_MODE_RE.fullmatch(str(file_mode)) and _MODE_RE.fullmatch(str(dir_mode))
            and _PATH_RE.fullmatch(str(log_dir))):
        problems.append(f"log_collector_file_mode ({file_mode}) and log_collector_dir_mode ({dir_mode}) must be octal "
                        'strings like "0640" that give others nothing, and log_collector_dir '
                        f"({log_dir}) an absolute path of printable ASCII without spaces or line breaks.")
    problems += _sender_problems(list(s.get("log_collector_senders") or []))
    cap = s.get("log_collector_max_file_size")
    if not is_size(cap) or size_bytes(cap) < 1024**2:
        problems.append(f"log_collector_max_file_size ('{cap}') must be an rsyslog size of at least 1m, like 256m "
                        "or 1g.")
    quarantine = s.get("log_collector_quarantine_dir")
    if not _PATH_RE.fullmatch(str(quarantine)) or _inside(str(quarantine), str(log_dir)):
        problems.append(f"log_collector_quarantine_dir ({quarantine}) must be an absolute path of printable ASCII "
                        f"without spaces, outside log_collector_dir ({log_dir}): a sender's folder must never be "
                        "mistaken for it.")
    retention = s.get("log_collector_retention_days")
    if not 1 <= as_int(retention) <= 3650:
        problems.append(f"log_collector_retention_days ({retention}) must be between 1 and 3650.")
    name = s.get("log_collector_tls_server_name")
    if not is_valid_dns_name(name):
        problems.append(f"log_collector_tls_server_name {json_text(name)} must be a DNS name (not an IP address): it "
                        "goes into the collector's certificate, and every sender verifies it.")
    if not all(s.get(f"log_collector_tls_{k}_src") for k in ("ca", "cert", "key")):
        problems.append("log_collector_tls_ca_src, log_collector_tls_cert_src and log_collector_tls_key_src must "
                        "name files on the control node (roles/wiring/vars/main.yml sets them from the pki role's "
                        "layout).")
    return problems


def _inside(path: str, parent: str) -> bool:
    path, parent = path.rstrip("/"), parent.rstrip("/")
    return path == parent or path.startswith(parent + "/") or parent.startswith(path + "/")


def _sender_problems(rows: list) -> list[str]:
    """The collector's sender table: one literal address per sender, no address or name twice (review H1: a line is
    filed under the sender its connection came from, so two senders on one address could write as each other)."""
    problems = []
    for row in rows:
        name, address = row.get("name"), row.get("address")
        if not (isinstance(name, str) and _HOST_RE.fullmatch(name)) or name == UNKNOWN_ADDRESS:
            problems.append(f"log_collector_senders: the sender name {json_text(name)} must be an inventory host name "
                            f"of letters, digits, '.', '-' or '_', other than {UNKNOWN_ADDRESS} (the quarantine's "
                            "folder for lines from unknown addresses).")
        if not is_ip_address(address) or is_unspecified_address(address):
            problems.append(f"host {name}: the address its logs come from, '{address}', is not one literal IP "
                            f"address; set logs_source_address on {name} to the address it reaches the collector "
                            "from (by default it is ansible_host).")
    by_address: dict[str, str] = {}
    for row in rows:
        name, address = str(row.get("name")), str(row.get("address"))
        if address in by_address:
            problems.append(f"hosts {by_address[address]} and {name} would send their logs from the same address "
                            f"{address}; the collector tells senders apart by it: give each its own "
                            "logs_source_address.")
        by_address.setdefault(address, name)
    names = [str(row.get("name")) for row in rows]
    problems += [f"log_collector_senders lists host {n} more than once; list each sender once."
                 for n in sorted({n for n in names if names.count(n) > 1})]
    return problems


def shipping_problems(s: Mapping[str, Any]) -> list[str]:
    """Cross-field checks of the log_shipping role's variables the argument spec cannot express, each naming the
    variable (empty when valid)."""
    problems = []
    targets_ = list(s.get("log_shipping_targets") or [])
    for i, target in enumerate(targets_):
        address, port = target.get("address"), target.get("port")
        if not is_ip_address(address) or not 1 <= as_int(port) <= 65535:
            problems.append(f"log_shipping_targets[{i}].address '{address}' must be a literal IP address and "
                            f"log_shipping_targets[{i}].port ({port}) a port between 1 and 65535 (set "
                            f"log_collector_bind_address / log_collector_port on collector {target.get('host')}).")
    hosts = [t.get("host") for t in targets_]
    if len(set(hosts)) != len(hosts):
        problems.append("log_shipping_targets names a collector host more than once; list each collector once.")
    source = s.get("log_shipping_source_address")
    if not is_ip_address(source) or is_unspecified_address(source):
        problems.append(f"log_shipping_source_address '{source}' must be one literal IP address of this host (set "
                        "logs_source_address on it; by default it is ansible_host): its lines leave from it, and the "
                        "collector files them by it.")
    hostname = s.get("log_shipping_hostname")
    if not (isinstance(hostname, str) and _HOST_RE.fullmatch(hostname)):
        problems.append(f"log_shipping_hostname {json_text(hostname)} must be a host name of letters, digits, '.', '-' "
                        "or '_' (the inventory name: the collector knows the sender by it).")
    disk, file_ = s.get("log_shipping_queue_max_disk_space"), s.get("log_shipping_queue_max_file_size")
    if not (is_size(disk) and is_size(file_)):
        problems.append(f"log_shipping_queue_max_disk_space ('{disk}') and log_shipping_queue_max_file_size "
                        f"('{file_}') must be rsyslog sizes like 512m, 64k or 2g.")
    elif size_bytes(file_) >= size_bytes(disk):
        problems.append(f"log_shipping_queue_max_file_size ({file_}) must be below log_shipping_queue_max_disk_space "
                        f"({disk}).")
    size, checkpoint, retry, retry_max = (s.get(k) for k in (
        "log_shipping_queue_size", "log_shipping_queue_checkpoint_interval", "log_shipping_retry_interval",
        "log_shipping_retry_interval_max"))
    if not (as_int(size) >= 100 and as_int(checkpoint) >= 1 and as_int(retry) >= 1
            and as_int(retry_max) >= as_int(retry)):
        problems.append(f"log_shipping_queue_size ({size}) must be at least 100, "
                        f"log_shipping_queue_checkpoint_interval ({checkpoint}) at least 1, "
                        f"log_shipping_retry_interval ({retry}) at least 1 second and "
                        f"log_shipping_retry_interval_max ({retry_max}) not below it.")
    if not all(s.get(f"log_shipping_tls_{k}_src") for k in ("ca", "cert", "key")):
        problems.append("log_shipping_tls_ca_src, log_shipping_tls_cert_src and log_shipping_tls_key_src must name "
                        "files on the control node (roles/wiring/vars/main.yml sets them from the pki role's layout).")
    return problems
