"""Bridges between brokers: one declaration on the edge broker (``mosquitto_bridges``) drives both ends.

The edge gets a ``connection`` section in mosquitto.conf (TLS with its own client certificate, the core's name
verified, one ``topic`` line per rule); the core gets an ACL section for the bridge's identity that allows exactly
the remote side of the same rules; the pki issues the identity's certificate (``bridge-<edge>.<name>``) with the
other certificate clients. This module is the one place that knows the declaration's shape.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils import mosquitto, perimeter
from ansible_collections.rampart.mqtt.plugins.module_utils.pki.names import is_valid_name
from ansible_collections.rampart.mqtt.plugins.module_utils.values import json_text

VAR = "mosquitto_bridges"
BRIDGE_KEYS = frozenset({"name", "remote", "out", "in", "qos", "revoked"})
RULE_KEYS = frozenset({"topic", "local_prefix", "remote_prefix"})
DIRECTIONS = ("out", "in")
# The connection name is part of the bridge's client id and of its identity's certificate name.
BRIDGE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Seconds before the edge dials again: 2 after a link that was up, backing off to 30 while the core stays away.
RESTART_TIMEOUT = "2 30"


def identity(host: str, name: str) -> str:
    """The bridge's identity: its certificate's name (CN) and so its username on the core. The '.' keeps it unique:
    a connection name has none, so two (host, name) pairs never give the same identity (with '-', host 'a-b' with
    bridge 'c' and host 'a' with bridge 'b-c' would share one)."""
    return f"bridge-{host}.{name}"


def _rules(bridge: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(d, r) for d in DIRECTIONS for r in (bridge.get(d) or []) if isinstance(r, dict)]


def validate(s: dict[str, Any]) -> list[str]:
    """What is wrong with this broker's own ``mosquitto_bridges`` (its shape, its rules); the other end is checked by
    :func:`remote_problems` once every broker has published its listeners."""
    bridges = s.get(VAR) or []
    if not isinstance(bridges, list):
        return [f"{VAR} must be a list of bridges (name, remote, out, in)."]
    errors, seen = [], set()
    host = s.get("inventory_hostname", "")
    clients = {c.get("name") for c in s.get("mosquitto_clients") or [] if isinstance(c, dict)}
    for i, b in enumerate(bridges):
        where = f"{VAR}[{i}]"
        if not isinstance(b, dict):
            errors.append(f"{where} must be a mapping with name, remote, out and/or in.")
            continue
        errors += _bridge_errors(where, b, host, seen, clients, s)
        for direction in DIRECTIONS:
            errors += _rule_errors(f"{where}.{direction}", b.get(direction))
        if not _rules(b):
            errors.append(f"{where} has no rule in out or in; a bridge that forwards nothing has no reason to exist.")
    if bridges and s.get("mosquitto_debian12_source") == "main":
        errors.append(f"{VAR} is set while mosquitto_debian12_source is main: Debian 12's 2.0.11 has the topic "
                      "remapping double free (CVE-2024-3935, fixed in 2.0.19); use backports.")
    return errors


def _bridge_errors(where: str, b: dict[str, Any], host: str, seen: set, clients: set,
                   s: dict[str, Any]) -> list[str]:
    errors = []
    name, remote, qos = b.get("name"), b.get("remote"), b.get("qos", 1)
    if not isinstance(name, str) or not BRIDGE_NAME_RE.fullmatch(name):
        errors.append(f"{where}.name is {json_text(name)}; use 1-32 characters from a-z 0-9 - (it is the "
                      "connection name and part of the bridge's certificate name).")
    elif name in seen:
        errors.append(f"{where}.name {name!r} is used by another bridge of this broker; give each its own name.")
    else:
        seen.add(name)
        ident = identity(host, name)
        if not is_valid_name(ident):
            errors.append(f"{where}: the bridge's certificate name {ident!r} is longer than 64 characters; "
                          "shorten the bridge's name.")
        elif ident in clients:
            errors.append(f"{where}: mosquitto_clients has a client named {ident!r}, the bridge's identity; "
                          "rename the client (bridge-<host>.<name> names are the bridges').")
    if not isinstance(remote, str) or not remote or remote == host:
        errors.append(f"{where}.remote is {json_text(remote)}; name the inventory host of the broker this one "
                      "bridges to (another host of the group brokers).")
    max_qos = s.get("mosquitto_max_qos", 2)
    if not isinstance(qos, int) or isinstance(qos, bool) or not 0 <= qos <= 2:
        errors.append(f"{where}.qos is {json_text(qos)}; use 0, 1 or 2.")
    elif isinstance(max_qos, int) and qos > max_qos:
        errors.append(f"{where}.qos {qos} is above mosquitto_max_qos ({max_qos}); lower the bridge's qos.")
    if not isinstance(b.get("revoked", False), bool):
        errors.append(f"{where}.revoked must be true or false.")
    unknown = set(b) - BRIDGE_KEYS
    if unknown:
        errors.append(f"{where} has unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(BRIDGE_KEYS))}. "
                      "(TLS is always on, with the core's name verified: there is no bridge_insecure.)")
    return errors


def _prefix_problem(prefix: Any) -> str | None:
    if not isinstance(prefix, str):
        return "must be a string"
    if prefix == "":
        return None
    if mosquitto.has_control_characters(prefix) or " " in prefix or '"' in prefix:
        return "must not contain spaces, quotes or control characters"
    if "#" in prefix or "+" in prefix:
        return "must not contain a wildcard"
    if prefix.startswith("$"):
        return "must not start with '$'"
    if not prefix.endswith("/"):
        return "must end with '/' (it is joined to the topic)"
    return None


def _rule_errors(where: str, rules: Any) -> list[str]:
    if rules is None:
        return []
    if not isinstance(rules, list):
        return [f"{where} must be a list of rules (topic, local_prefix, remote_prefix)."]
    errors = []
    for j, rule in enumerate(rules):
        at = f"{where}[{j}]"
        if not isinstance(rule, dict):
            errors.append(f"{at} must be a mapping with topic and, optionally, local_prefix and remote_prefix.")
            continue
        unknown = set(rule) - RULE_KEYS
        if unknown:
            errors.append(f"{at} has unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(RULE_KEYS))}.")
        topic = rule.get("topic")
        problem = mosquitto.topic_filter_problem(topic)
        if problem:
            errors.append(f"{at}.topic {json_text(topic)} {problem}; write a valid MQTT topic filter.")
            continue
        if any(c in topic for c in ' %"'):
            errors.append(f"{at}.topic {topic!r} contains a space, '%' or '\"': a space ends a topic line's pattern, "
                          "'\"\"' is mosquitto.conf's empty prefix, and '%u'/'%c' would mean the bridge's identity in "
                          "the core's ACL but a literal on the link.")
        for key in ("local_prefix", "remote_prefix"):
            problem = _prefix_problem(rule.get(key, ""))
            if problem:
                errors.append(f"{at}.{key} {json_text(rule.get(key))} {problem}.")
        errors += _broad_errors(at, rule)
    return errors


def _broad_errors(at: str, rule: dict[str, Any]) -> list[str]:
    """The whole filter on each side (prefix + topic) may not be '#', '+/...' or reach '$' topics."""
    errors = []
    for side in ("local", "remote"):
        prefix = rule.get(f"{side}_prefix", "")
        full = (prefix if isinstance(prefix, str) else "") + rule["topic"]
        broad = mosquitto.broad_filter_problem(full)
        if broad:
            errors.append(f"{at}: the {side} side's filter {full!r} {broad}; a bridge forwards a subtree, never "
                          f"everything: narrow the topic or give a {side}_prefix (e.g. 'sites/a/').")
    return errors


def active(bridges: Any) -> list[dict[str, Any]]:
    """The bridges not revoked, in order."""
    return [b for b in bridges or [] if isinstance(b, dict) and not b.get("revoked", False)]


def identities(host: str, bridges: Any, revoked: bool | None = None) -> list[str]:
    """The identities of a broker's bridges (all of them, or only the revoked or the active ones): the pki issues
    and revokes them with the certificate clients."""
    if not isinstance(bridges, list):
        return []
    return [identity(host, b["name"]) for b in bridges
            if isinstance(b, dict) and isinstance(b.get("name"), str) and BRIDGE_NAME_RE.fullmatch(b["name"])
            and (revoked is None or bool(b.get("revoked", False)) == revoked)]


def remote_problems(host: str, bridges: Any, brokers: list[str], play_hosts: list[str], hostvars: Any) -> list[str]:
    """The other end of each bridge: a broker of the inventory, in this run (its published listeners give the port
    and the name to verify), with a listener that takes client certificates, and no client of its own that has the
    bridge's identity as its name."""
    errors = []
    for i, b in enumerate(bridges or []):
        where, remote = f"{VAR}[{i}]", b.get("remote")
        if remote not in brokers:
            errors.append(f"{where}.remote {json_text(remote)} is not a host of the group brokers; a bridge goes to "
                          "a broker this inventory deploys (the core's certificate, ACL and firewall come from it).")
            continue
        if remote not in play_hosts:
            errors.append(f"{where}.remote {remote!r} is outside this run (--limit); include it: the bridge needs "
                          "its listener and name, and its ACL must admit the bridge.")
            continue
        published = hostvars[remote]["mosquitto_published"]
        if not published.get("certificate_port"):
            errors.append(f"{where}.remote {remote!r} has no listener with authentication: certificate; a bridge "
                          "logs in with its certificate only. Add such a listener to the remote broker.")
        names = {c.get("name") for c in hostvars[remote].get("mosquitto_clients") or [] if isinstance(c, dict)}
        ident = identity(host, b.get("name", ""))
        if ident in names:
            errors.append(f"{where}: {remote!r} has a client named {ident!r}, the bridge's identity; rename it.")
    return errors


def dialing(me: str, brokers: list[str], hostvars: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """(broker, its bridges that dial ``me``) for every other broker with at least one, read from the inventory (so
    whatever --limit says): what ``me``'s ACL, firewall and validation are made from."""
    out = []
    for host in brokers:
        if host == me:
            continue
        found = [b for b in hostvars[host].get(VAR) or [] if isinstance(b, dict) and b.get("remote") == me]
        if found:
            out.append((host, found))
    return out


def rule_filters(bridge: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Each rule's whole filter on both brokers ({'out': [{'local', 'remote'}], 'in': [...]}): the prefix joined to
    the topic, as Mosquitto maps it."""
    return {d: [{"local": r.get("local_prefix", "") + r["topic"], "remote": r.get("remote_prefix", "") + r["topic"]}
                for r in bridge.get(d) or []] for d in DIRECTIONS}


def incoming_problems(me: str, brokers: list[str], play_hosts: list[str], hostvars: Any) -> list[str]:
    """The bridges that dial ``me`` from brokers outside this run (--limit): their rules become ``me``'s ACL and their
    addresses its firewall, so they are checked here as their own broker's validation would (in the run, it does)."""
    errors = []
    for host, found in dialing(me, [h for h in brokers if h not in play_hosts], hostvars):
        problems = validate({"inventory_hostname": host, VAR: found, "mosquitto_max_qos": 2})
        for address in hostvars[host].get("mosquitto_bind_addresses") or []:
            try:
                ipaddress.ip_address(str(address))
            except ValueError:
                problems.append(f"mosquitto_bind_addresses has {address!r}, not an IP address (this broker's "
                                "firewall admits the bridge from it)")
        errors += [f"{host} (outside this run) bridges to {me}: {p}" for p in problems]
    return errors


def acl_clients(me: str, brokers: list[str], hostvars: Any) -> list[dict[str, Any]]:
    """The ACL entries of the bridges that dial ``me``: each identity may write the remote side of its 'out' rules
    and read that of its 'in' rules, nothing else; a revoked bridge keeps its entry with revoked: true (no section)."""
    out = []
    for host, found in dialing(me, brokers, hostvars):
        for b in found:
            remote = {d: [f["remote"] for f in filters] for d, filters in rule_filters(b).items()}
            out.append({"name": identity(host, b["name"]), "auth": "certificate", "publish": remote["out"],
                        "subscribe": remote["in"], "revoked": bool(b.get("revoked", False))})
    return out


def sources(me: str, brokers: list[str], hostvars: Any) -> list[str]:
    """The addresses the bridges that dial ``me`` leave from (each edge's mosquitto_bind_addresses, as host
    networks): the core's firewall admits them on its broker ports besides its segment and tunnels."""
    out = [perimeter.host_cidr(str(a)) for host, _ in dialing(me, brokers, hostvars)
           for a in hostvars[host].get("mosquitto_bind_addresses") or []]
    return list(dict.fromkeys(out))


def _quoted(prefix: str) -> str:
    return prefix or '""'


def conf_lines(host: str, bridge: dict[str, Any], endpoint: dict[str, Any], files: dict[str, str],
               tls_version: str) -> list[str]:
    """One bridge's section of mosquitto.conf on the edge. TLS always, the core's name verified
    (bridge_insecure false), a persistent session (cleansession false) whose queue the edge's global
    max_queued_messages bounds, no notifications (they would need a '$SYS' write on the core)."""
    lines = [
        f"connection {bridge['name']}",
        f"address {endpoint['address']}:{endpoint['port']}",
        f"remote_clientid {identity(host, bridge['name'])}",
        f"bridge_cafile {files['ca']}",
        f"bridge_certfile {files['cert']}",
        f"bridge_keyfile {files['key']}",
        f"bridge_tls_version {tls_version}",
        "bridge_insecure false",
        "bridge_protocol_version mqttv311",
        "cleansession false",
        "notifications false",
        "try_private true",
        "start_type automatic",
        f"restart_timeout {RESTART_TIMEOUT}",
    ]
    qos = bridge.get("qos", 1)
    for direction, rule in _rules(bridge):
        local, remote = rule.get("local_prefix", ""), rule.get("remote_prefix", "")
        prefixes = f" {_quoted(local)} {_quoted(remote)}" if local or remote else ""
        lines.append(f"topic {rule['topic']} {direction} {qos}{prefixes}")
    return lines
