"""The machine-readable description of a deployment (the schema of .lab/lab.json).

Written by playbooks/describe.yml from the same inventory that drove the deployment, read by the
behavioural tests, the lab's status output and tools outside this repo. Later features extend it;
existing keys keep their meaning.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils import bridges, mosquitto

SCHEMA_VERSION = 1


def _listener_ports(listeners: list[dict]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for lst in listeners:
        ports.setdefault(lst["authentication"], int(lst["port"]))
    return ports


def describe(brokers: list[dict[str, Any]], clients: list[dict[str, Any]], ca_file: str,
             client_cert_dir: str, include_passwords: bool = False,
             vantage_points: list[dict[str, Any]] | None = None, pkcs12_passphrase: str = "") -> dict[str, Any]:
    """Build the description.

    ``brokers``: one mapping per broker host with name, container, address, tls_server_name, listeners.
    ``clients``: mosquitto_clients as in the inventory.
    ``vantage_points``: where the broker is (not) reachable from: name, container, role, can_reach_broker
    and the broker address that vantage point would use (the perimeter, issue 4), and the broker it is for when it
    names one (a lab of several brokers). Omitted when None.
    ``pkcs12_passphrase``: pki_pkcs12_passphrase; when set, each certificate client names its ``bundle.p12`` (and,
    with ``include_passwords``, the passphrase).
    """
    out_brokers = [_broker(b) for b in brokers]
    # A client whose listener differs from the first broker's main port names its own port.
    default_ports = next((ports for b in brokers if (ports := _listener_ports(b["listeners"]))), {})
    main_port = out_brokers[0]["port"] if out_brokers else None
    out_clients = []
    for c in clients:
        entry = _client(c, client_cert_dir, include_passwords, pkcs12_passphrase)
        port = default_ports.get(entry["auth"])
        if port is not None and port != main_port:
            entry["port"] = port
        out_clients.append(entry)
    out = {
        "schema": SCHEMA_VERSION,
        "brokers": out_brokers,
        "ca_file": ca_file,
        "clients": out_clients,
    }
    bridge_list = [_bridge(b["name"], br, client_cert_dir) for b in brokers for br in b.get("bridges") or []]
    if bridge_list:
        out["bridges"] = bridge_list
    if vantage_points is not None:
        out["vantage_points"] = [_vantage_point(v) for v in vantage_points]
    return out


def _broker(b: dict[str, Any]) -> dict[str, Any]:
    ports = _listener_ports(b["listeners"])
    return {
        "name": b["name"],
        "container": b["container"],
        "address": b["address"],
        "port": ports.get("password", next(iter(ports.values()))),
        "tls_server_name": b["tls_server_name"],
        "listeners": {auth: port for auth, port in sorted(ports.items())},
        "max_packet_size": b.get("max_packet_size"),
        "max_keepalive": b.get("max_keepalive"),
        "max_queued_messages": b.get("max_queued_messages"),
        "max_queued_bytes": b.get("max_queued_bytes"),
        "max_inflight_messages": b.get("max_inflight_messages"),
        "max_connections": b.get("max_connections"),
        "limit_nofile": b.get("limit_nofile"),
        "max_qos": b.get("max_qos"),
        "retain_expiry_interval": b.get("retain_expiry_interval"),
        "local_listener_port": b.get("local_listener_port"),
    }


def _client(c: dict[str, Any], client_cert_dir: str, include_passwords: bool, pkcs12_passphrase: str) -> dict[str, Any]:
    auth = c.get("auth", "password")
    certified = auth in mosquitto.USES_CERTIFICATE
    bundle = certified and bool(pkcs12_passphrase)
    return {
        "name": c["name"],
        "username": c["name"],
        "auth": auth,
        "password": (c.get("password") if include_passwords else None) if auth in mosquitto.USES_PASSWORD else None,
        "certfile": f"{client_cert_dir}/{c['name']}/chain.pem" if certified else None,
        "keyfile": f"{client_cert_dir}/{c['name']}/key.pem" if certified else None,
        "p12file": f"{client_cert_dir}/{c['name']}/bundle.p12" if bundle else None,
        "p12_passphrase": pkcs12_passphrase if bundle and include_passwords else None,
        "admin": bool(c.get("admin", False)),
        "publish": [_expand(t, c["name"]) for t in c.get("publish") or []],
        "subscribe": [_expand(t, c["name"]) for t in c.get("subscribe") or []],
        "deny": [_expand(t, c["name"]) for t in c.get("deny") or []],
        "expect": "revoked" if c.get("revoked", False) else "allowed",
    }


def _bridge(edge: str, b: dict[str, Any], client_cert_dir: str) -> dict[str, Any]:
    """A bridge (mosquitto_bridges on ``edge``): its identity's files and each rule's filter on both brokers."""
    ident = bridges.identity(edge, b["name"])
    return {"name": b["name"], "edge": edge, "remote": b["remote"], "identity": ident, "qos": b.get("qos", 1),
            "certfile": f"{client_cert_dir}/{ident}/chain.pem", "keyfile": f"{client_cert_dir}/{ident}/key.pem",
            "expect": "revoked" if b.get("revoked", False) else "allowed", **bridges.rule_filters(b)}


def _vantage_point(v: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(v.get("can_reach_broker"), bool):
        raise ValueError(f"vantage point {v.get('name')!r}: can_reach_broker must be true or false")
    point = {"name": v["name"], "container": v["container"], "role": v["role"],
             "can_reach_broker": v["can_reach_broker"], "broker_address": v.get("broker_address")}
    # In a lab of several brokers (rampart.topology) each point is one broker's; without the key, every broker's.
    if v.get("broker"):
        point["broker"] = v["broker"]
    return point


def _expand(topic: str, name: str) -> str:
    return topic.replace("%u", name).replace("%c", name)
