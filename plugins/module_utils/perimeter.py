"""Logic for the perimeter roles (nftables, wireguard, vlan), kept here so it can be unit-tested.

The roles reach it through thin Jinja filter plugins; the control node runs it (scripts/bootstrap puts
this package on the path). Nothing here touches a host.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")
RULE_DEFAULTS = {"protocol": "tcp", "sources": [], "interfaces": [], "rate": 0, "burst": 5, "max_connections": 0}
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


# ---------------------------------------------------------------------------------------------- addresses
def cidr_problem(value: object) -> str | None:
    """Why ``value`` is not an IP network or address (with or without a prefix), or None."""
    if not isinstance(value, str):
        return "is not a string"
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return "is not an IP address or CIDR"
    return None


def network(value: str) -> str:
    """The network a host address with prefix belongs to: 172.29.86.12/24 -> 172.29.86.0/24."""
    return str(ipaddress.ip_interface(value).network)


def address(value: str) -> str:
    """The bare address of an interface address: 10.86.12.1/24 -> 10.86.12.1."""
    return str(ipaddress.ip_interface(value).ip)


def cidrs_by_family(values: list[str]) -> dict[str, list[str]]:
    """Networks split into {'v4': [...], 'v6': [...]}, host bits cleared, in order; a duplicate, or a network inside
    another of the list (a bridging edge's address on the segment, say), is left out: nft refuses overlapping
    intervals in one set."""
    nets = [ipaddress.ip_network(value, strict=False) for value in values]
    out: dict[str, list[str]] = {"v4": [], "v6": []}
    for net in nets:
        fam = "v4" if net.version == 4 else "v6"
        inside = any(other.version == net.version and other != net and net.subnet_of(other) for other in nets)
        if str(net) not in out[fam] and not inside:
            out[fam].append(str(net))
    return out


# ---------------------------------------------------------------------------------------------- nftables
def nftables_problems(settings: dict) -> list[str]:
    """Every problem in the nftables role's variables, each naming the variable (empty when valid)."""
    problems: list[str] = []
    table = settings.get("nftables_table", "")
    if not isinstance(table, str) or not NAME_RE.fullmatch(table):
        problems.append(f"nftables_table ({table!r}) must be 1-31 letters, digits or '_', starting with a letter")
    problems += _management_problems(settings)
    seen: dict[str, int] = {}
    for i, rule in enumerate(settings.get("nftables_rules") or []):
        problems += _rule_problems(i, rule, seen)
    problems += _log_problems(settings)
    revert = settings.get("nftables_revert_after", 90)
    confirm = settings.get("nftables_confirm_timeout", 30)
    if not isinstance(confirm, int) or confirm < 5:
        problems.append(f"nftables_confirm_timeout ({confirm!r}) must be an integer >= 5")
    elif not isinstance(revert, int) or revert <= confirm + 10:
        problems.append(f"nftables_revert_after ({revert!r}) must exceed nftables_confirm_timeout ({confirm}) "
                        "by more than 10 seconds, or a good ruleset is reverted while it is being confirmed")
    return problems


def _management_problems(settings: dict) -> list[str]:
    """nftables_management_cidrs and _port: the control path (SSH) stays open, and only to those networks."""
    problems = []
    mgmt = settings.get("nftables_management_cidrs") or []
    if not mgmt:
        problems.append("nftables_management_cidrs is empty; SSH (the control path) would be blocked: "
                        "list the control node's networks")
    for i, cidr in enumerate(mgmt):
        if (why := cidr_problem(cidr)) is not None:
            problems.append(f"nftables_management_cidrs[{i}] ({cidr!r}) {why}")
        elif ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
            problems.append(f"nftables_management_cidrs[{i}] ({cidr!r}) opens SSH to every address; "
                            "list the management networks")
    valid = _valid_networks(mgmt)
    for family in (4, 6):
        nets = [n for n in valid if n.version == family]
        if len(nets) > 1 and _covers_every_address(nets, family):
            problems.append(f"nftables_management_cidrs ({[str(n) for n in nets]}) together cover every IPv{family} "
                            "address, which opens SSH to everyone; list the management networks")
    port = settings.get("nftables_management_port", 22)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"nftables_management_port ({port!r}): use a port between 1 and 65535")
    return problems


def _rule_problems(i: int, rule: object, seen: dict[str, int]) -> list[str]:
    """nftables_rules[i] (``seen`` maps the rule names so far to their index)."""
    where = f"nftables_rules[{i}]"
    if not isinstance(rule, dict):
        return [f"{where} is not a mapping"]
    problems = []
    name = rule.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        problems.append(f"{where}.name ({name!r}) must be 1-31 letters, digits or '_', starting with a letter")
    elif name in seen:
        problems.append(f"{where}.name ({name!r}) duplicates nftables_rules[{seen[name]}]")
    else:
        seen[name] = i
    ports = rule.get("ports") or []
    if not ports:
        problems.append(f"{where}.ports is empty")
    for j, p in enumerate(ports):
        if not isinstance(p, int) or not 1 <= p <= 65535:
            problems.append(f"{where}.ports[{j}] ({p!r}): use a port between 1 and 65535")
    for j, src in enumerate(rule.get("sources") or []):
        if (why := cidr_problem(src)) is not None:
            problems.append(f"{where}.sources[{j}] ({src!r}) {why}")
    for j, ifname in enumerate(rule.get("interfaces") or []):
        if not isinstance(ifname, str) or not IFNAME_RE.fullmatch(ifname):
            problems.append(f"{where}.interfaces[{j}] ({ifname!r}) is not an interface name")
    for key in ("rate", "max_connections"):
        value = rule.get(key, 0)
        if not isinstance(value, int) or value < 0:
            problems.append(f"{where}.{key} ({value!r}) must be an integer >= 0 (0 means no limit)")
    burst = rule.get("burst", RULE_DEFAULTS["burst"])
    if not isinstance(burst, int) or burst < 1:
        problems.append(f"{where}.burst ({burst!r}) must be an integer >= 1")
    return problems


def _log_problems(settings: dict) -> list[str]:
    """nftables_log_prefix, _rate, _rate_total and _group: what the drop log lines look like and how many."""
    problems = []
    prefix = settings.get("nftables_log_prefix", "")
    if not isinstance(prefix, str) or len(prefix) > 60 or '"' in prefix or "\\" in prefix:
        problems.append(f"nftables_log_prefix ({prefix!r}) must be at most 60 characters without quotes or backslashes")
    rate, total = settings.get("nftables_log_rate", 1), settings.get("nftables_log_rate_total", 1)
    if not isinstance(rate, int) or rate < 1:
        problems.append(f"nftables_log_rate ({rate!r}) must be an integer >= 1")
    elif not isinstance(total, int) or total < rate:
        problems.append(f"nftables_log_rate_total ({total!r}) must be an integer >= nftables_log_rate ({rate}): it "
                        "bounds the lines of all sources together")
    group = settings.get("nftables_log_group", 0)
    if not isinstance(group, int) or not 0 <= group <= 65535:
        problems.append(f"nftables_log_group ({group!r}) must be between 0 and 65535")
    return problems


def _set_elements(values: list) -> str:
    return "{ " + ", ".join(str(v) for v in values) + " }"


def nftables_rules(rules: list[dict]) -> list[dict]:
    """The rules with defaults filled in, and one nft match expression per address family.

    Each result carries ``families`` (the set families it needs) and ``matches``: a list of
    {family, saddr, expr}, where ``expr`` is the full match (interfaces, sources, protocol, ports).
    """
    out = []
    for raw in rules:
        rule = {**RULE_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
        by_family = cidrs_by_family(rule["sources"])
        families = [f for f in ("v4", "v6") if by_family[f]] if rule["sources"] else ["v4", "v6"]
        matches = []
        for fam in families:
            saddr = "ip saddr" if fam == "v4" else "ip6 saddr"
            parts = []
            if rule["interfaces"]:
                parts.append("iifname " + _set_elements(f'"{i}"' for i in rule["interfaces"]))
            if rule["sources"]:
                parts.append(f"{saddr} {_set_elements(by_family[fam])}")
            else:
                parts.append("meta nfproto " + ("ipv4" if fam == "v4" else "ipv6"))
            parts.append(f"{rule['protocol']} dport {_set_elements(rule['ports'])}")
            matches.append({"family": fam, "saddr": saddr, "expr": " ".join(parts)})
        out.append({**rule, "families": families, "matches": matches})
    return out


# ---------------------------------------------------------------------------------------------- wireguard
def is_wireguard_key(value: object) -> bool:
    """True for a base64 WireGuard key (32 bytes, 44 characters), as ``wg genkey`` and ``wg pubkey`` print it."""
    if not isinstance(value, str) or len(value) != 44:
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except ValueError:
        return False


def wg_private_key() -> str:
    """A new WireGuard private key (base64 of a clamped X25519 scalar), like ``wg genkey``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw).decode()


def wg_public_key(private_key: str) -> str:
    """The public key of a base64 WireGuard private key, like ``wg pubkey``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = base64.b64decode(private_key.strip(), validate=True)
    if len(raw) != 32:
        raise ValueError("a WireGuard key is 32 bytes")
    pub = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(pub).decode()


def wg_key_problem(value: object) -> str | None:
    """Why ``value`` is not a base64 WireGuard key, or None."""
    try:
        raw = base64.b64decode(str(value), validate=True)
    except ValueError:
        return "is not base64"
    return None if len(raw) == 32 else "is not a 32-byte key"


def write_private(path: Path, data: bytes | str, private_dir: bool = True) -> None:
    """Write a file readable by its owner only (0600), atomically, in a directory only its owner may enter (0700;
    with ``private_dir=False`` an existing directory keeps its mode, a missing one is still made 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if private_dir:
        path.parent.chmod(0o700)
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as handle:
        handle.write(payload)
    tmp.chmod(0o600)
    tmp.replace(path)


def qr_png(text: str) -> bytes:
    """A QR code PNG of ``text`` (segno, error correction M), for the WireGuard mobile apps."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
    return buf.getvalue()


def wireguard_problems(settings: dict, inventory_hosts: list[str]) -> list[str]:
    """Every problem in the wireguard role's variables, each naming the variable (empty when valid)."""
    problems: list[str] = []
    iface = settings.get("wireguard_interface", "wg0")
    if not isinstance(iface, str) or not re.fullmatch(r"^[A-Za-z0-9_=+.-]{1,15}$", iface):
        problems.append(f"wireguard_interface ({iface!r}) is not an interface name (1-15 characters)")
    port = settings.get("wireguard_port", 51820)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"wireguard_port ({port!r}): use a port between 1 and 65535")
    addresses = settings.get("wireguard_addresses") or []
    if not addresses:
        problems.append("wireguard_addresses is empty; give this host's tunnel address with prefix, e.g. 10.86.0.1/24")
    for i, addr in enumerate(addresses):
        if (why := cidr_problem(addr)) is not None or "/" not in str(addr):
            problems.append(f"wireguard_addresses[{i}] ({addr!r}) {why or 'has no prefix length'}")
    endpoint = settings.get("wireguard_endpoint", "")
    if endpoint and not re.fullmatch(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$", str(endpoint)):
        problems.append(f"wireguard_endpoint ({endpoint!r}) must be host:port or [v6]:port")
    for i, net in enumerate(settings.get("wireguard_routed_networks") or []):
        if (why := cidr_problem(net)) is not None:
            problems.append(f"wireguard_routed_networks[{i}] ({net!r}) {why}")
        elif ipaddress.ip_network(net, strict=False).prefixlen == 0:
            problems.append(f"wireguard_routed_networks[{i}] ({net!r}) would send every peer's whole traffic to this "
                            "host; list the addresses behind it that peers may reach")
    names: dict[str, int] = {}
    peers = settings.get("wireguard_peers") or []
    for i, peer in enumerate(peers):
        problems += _peer_problems(i, peer, names, inventory_hosts)
    problems += _route_problems(settings, inventory_hosts)
    problems += _handshake_problems(settings, peers)
    # A peer Ansible does not manage (name, not host) gets an exported config.
    external = any(peer.get("name") is not None and peer.get("host") is None for peer in peers)
    if external and not settings.get("wireguard_endpoint"):
        problems.append("wireguard_endpoint is empty but wireguard_peers lists peers Ansible does not manage; "
                        "their exported configs need the address they dial")
    if external and not settings.get("wireguard_export_dir"):
        problems.append("wireguard_export_dir is empty but wireguard_peers lists peers Ansible does not manage; "
                        "set a control-node directory for their configs")
    keepalive = settings.get("wireguard_persistent_keepalive", 25)
    if not isinstance(keepalive, int) or not 0 <= keepalive <= 65535:
        problems.append(f"wireguard_persistent_keepalive ({keepalive!r}) must be between 0 and 65535")
    for i, unit in enumerate(settings.get("wireguard_before_units") or []):
        if not re.fullmatch(r"^[A-Za-z0-9@_.:\\-]+\.(service|socket|target)$", str(unit)):
            problems.append(f"wireguard_before_units[{i}] ({unit!r}) is not a systemd unit name like mosquitto.service")
    return problems



def _handshake_problems(settings: dict, peers: list) -> list[str]:
    """A managed pair where neither side has an endpoint: neither can start the handshake. ``managed_peers`` carries
    each managed peer's own wireguard_endpoint."""
    if settings.get("wireguard_endpoint"):
        return []
    managed = settings.get("managed_peers") or {}
    host = settings.get("inventory_hostname")
    return [f"wireguard_peers: neither {host} nor its peer {peer['host']} has wireguard_endpoint set, so neither side "
            "can start the handshake; set wireguard_endpoint on the hub."
            for peer in peers if peer.get("host") in managed and not managed[peer["host"]].get("wireguard_endpoint")]

def _peer_problems(i: int, peer: dict, names: dict[str, int], inventory_hosts: list[str]) -> list[str]:
    """wireguard_peers[i] (``names`` maps the peers so far to their index)."""
    where = f"wireguard_peers[{i}]"
    host, name = peer.get("host"), peer.get("name")
    if (host is None) == (name is None):
        return [f"{where} needs exactly one of host (a managed peer) or name (a peer Ansible does not manage)"]
    problems = []
    key = host or name
    if key in names:
        problems.append(f"{where} ({key!r}) duplicates wireguard_peers[{names[key]}]")
    names[key] = i
    if host is not None and host not in inventory_hosts:
        problems.append(f"{where}.host ({host!r}) is not a host of this inventory")
    if name is not None:
        if not re.fullmatch(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", name):
            problems.append(f"{where}.name ({name!r}) must be 1-63 letters, digits, '.', '_' or '-'")
        if not peer.get("addresses"):
            problems.append(f"{where}.addresses is missing; a peer Ansible does not manage needs its tunnel address")
        if "public_key" in peer and not is_wireguard_key(peer["public_key"]):
            problems.append(f"{where}.public_key ({peer['public_key']!r}) is not a WireGuard public key (44 characters "
                            "of base64, as 'wg pubkey' prints it)")
    elif "public_key" in peer or "handed_over" in peer:
        problems.append(f"{where}: public_key and handed_over are for peers Ansible does not manage (name); a managed "
                        "peer's key is made and read on that host")
    for field in ("addresses", "allowed_ips"):
        for j, addr in enumerate(peer.get(field) or []):
            if (why := cidr_problem(addr)) is not None:
                problems.append(f"{where}.{field}[{j}] ({addr!r}) {why}")
    return problems


def _valid_networks(values: list) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The values that are IP networks or addresses (the invalid ones are reported where they are set)."""
    return [ipaddress.ip_network(v, strict=False) for v in values or [] if cidr_problem(v) is None]


def _covers_every_address(nets: list, family: int) -> bool:
    """Whether the networks of one IP version together cover every address of it (0.0.0.0/1 + 128.0.0.0/1)."""
    return any(n.prefixlen == 0 for n in ipaddress.collapse_addresses([n for n in nets if n.version == family]))


def host_cidr(value: str) -> str:
    """10.86.0.2/24 -> 10.86.0.2/32: what a hub routes to one peer."""
    addr = address(value)
    return f"{addr}/{128 if ':' in addr else 32}"


def peer_allowed_ips(peer: dict, managed: dict | None = None) -> list[str]:
    """What this host routes to a peer (its AllowedIPs): the peer's allowed_ips when set, else its tunnel addresses
    (each as a host route) and, for a managed peer, the networks it routes (``managed``: that host's
    wireguard_addresses and wireguard_routed_networks). Values that are not addresses are left out here."""
    if peer.get("allowed_ips"):
        return [str(v) for v in peer["allowed_ips"]]
    if peer.get("host") is not None:
        managed = managed or {}
        own = managed.get("wireguard_addresses") or []
        return [host_cidr(str(a)) for a in own if cidr_problem(a) is None] + \
            [str(v) for v in managed.get("wireguard_routed_networks") or []]
    return [host_cidr(str(a)) for a in peer.get("addresses") or [] if cidr_problem(a) is None]


def _route_problems(settings: dict, inventory_hosts: list[str]) -> list[str]:
    """What the peers' AllowedIPs would route into the tunnel (review M7): never every address, never this host's
    own tunnel address, segment or management networks (a peer could take over the control node's address), and
    never the same address for two peers (WireGuard would silently route it to one of them).

    settings may carry ``inventory_hostname``, ``vlan_address``, ``vlan_address6``, ``nftables_management_cidrs`` and
    ``managed_peers`` ({host: {wireguard_addresses, wireguard_routed_networks, ...}}) for the managed peers."""
    me = settings.get("inventory_hostname")
    own = {"this host's tunnel address": [host_cidr(str(a)) for a in settings.get("wireguard_addresses") or []
                                          if cidr_problem(a) is None],
           "this host's segment": [network(str(settings[key])) for key in ("vlan_address", "vlan_address6")
                                   if settings.get(key) and cidr_problem(settings[key]) is None],
           "the management networks (nftables_management_cidrs)": settings.get("nftables_management_cidrs") or []}
    own_nets = {what: _valid_networks(values) for what, values in own.items()}
    # Management networks that cover everything are reported by nftables_problems; every route would overlap them.
    own_nets = {what: nets for what, nets in own_nets.items()
                if not any(_covers_every_address(nets, family) for family in (4, 6))}
    problems: list[str] = []
    claimed: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for i, peer in enumerate(settings.get("wireguard_peers") or []):
        if not isinstance(peer, dict):
            continue
        key = peer.get("host") or peer.get("name")
        where = f"wireguard_peers[{i}] ({key!r})"
        if me is not None and peer.get("host") == me:
            problems.append(f"{where} is this host itself; remove it")
            continue
        managed = (settings.get("managed_peers") or {}).get(peer.get("host"), {})
        for net in _valid_networks(peer_allowed_ips(peer, managed)):
            if net.prefixlen == 0:
                problems.append(f"{where} would be routed every IPv{net.version} address ({net}); give allowed_ips "
                                "only the peer's tunnel address and the networks behind it")
                continue
            for what, nets in own_nets.items():
                if any(net.overlaps(n) for n in nets if n.version == net.version):
                    problems.append(f"{where} would be routed {net}, which overlaps {what}: its packets would go into "
                                    "the tunnel (and the peer could answer for those addresses)")
            for other, owner in claimed:
                if other.version == net.version and net.overlaps(other):
                    problems.append(f"{where} would be routed {net}, which overlaps {other} of {owner}; WireGuard "
                                    "routes an address to one peer only")
            claimed.append((net, where))
    return problems


def vlan_problems(settings: dict) -> list[str]:
    """Every problem in the vlan role's variables, each naming the variable (empty when valid)."""
    problems: list[str] = []
    mode = settings.get("vlan_mode", "tagged")
    iface = settings.get("vlan_interface", "")
    if not isinstance(iface, str) or not IFNAME_RE.fullmatch(iface):
        problems.append(f"vlan_interface ({iface!r}) must be an interface name of 1-15 characters")
    if mode == "tagged":
        parent = settings.get("vlan_parent", "")
        if not isinstance(parent, str) or not IFNAME_RE.fullmatch(parent):
            problems.append(f"vlan_parent ({parent!r}) must name the trunk interface in tagged mode")
        elif parent == iface:
            problems.append(f"vlan_parent ({parent!r}) equals vlan_interface; the VLAN device needs its own name")
        vid = settings.get("vlan_id", 0)
        if not isinstance(vid, int) or not 1 <= vid <= 4094:
            problems.append(f"vlan_id ({vid!r}) must be between 1 and 4094 in tagged mode")
    addr = settings.get("vlan_address", "")
    if not addr:
        problems.append("vlan_address is empty; give this host's segment address with prefix, e.g. 10.20.30.10/24")
    elif (why := cidr_problem(addr)) is not None or "/" not in str(addr):
        problems.append(f"vlan_address ({addr!r}) {why or 'has no prefix length'}")
    # IPv6 on the segment: one IPv6 address beside the IPv4 one (issue 12), as the inventory gives it (no link-local
    # address, no router advertisements: see segment.network.j2).
    addr6 = settings.get("vlan_address6", "")
    if addr6:
        if (why := cidr_problem(addr6)) is not None or "/" not in str(addr6):
            problems.append(f"vlan_address6 ({addr6!r}) {why or 'has no prefix length'}")
        elif (ip6 := ipaddress.ip_interface(addr6)).version != 6:
            problems.append(f"vlan_address6 ({addr6!r}) must be an IPv6 address with prefix, e.g. fd42:30::10/64")
        elif ip6.ip.is_link_local:
            problems.append(f"vlan_address6 ({addr6!r}) is link-local; give a global or unique local address")
        elif ip6.ip.is_unspecified:
            problems.append(f"vlan_address6 ({addr6!r}) is unspecified; give this host's own address")
        if addr and cidr_problem(addr) is None and ipaddress.ip_interface(addr).version != 4:
            problems.append(f"vlan_address ({addr!r}) must be an IPv4 address when vlan_address6 is set")
    gateway = settings.get("vlan_gateway", "")
    if gateway:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            problems.append(f"vlan_gateway ({gateway!r}) is not an IP address")
        else:
            # The gateway is in the segment of its own family.
            key = "vlan_address6" if gw.version == 6 and addr6 else "vlan_address"
            value = settings.get(key, "")
            if value and cidr_problem(value) is None and gw not in ipaddress.ip_interface(value).network:
                problems.append(f"vlan_gateway ({gateway}) is outside the segment {network(value)} of {key}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Control-node helpers for the wireguard role (keys and exports of peers Ansible does not manage)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m rampart.perimeter")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("keygen", help="create PATH (private key, 0600) and PATH.pub unless PATH exists")
    p.add_argument("path", type=Path)
    p = sub.add_parser("qr", help="write a QR code PNG (0600) of the config file CONF")
    p.add_argument("conf", type=Path)
    p.add_argument("png", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "keygen":
        if not args.path.exists():
            write_private(args.path, wg_private_key() + "\n")
        write_private(args.path.with_name(args.path.name + ".pub"), wg_public_key(args.path.read_text()) + "\n")
    else:
        write_private(args.png, qr_png(args.conf.read_text()))
    print("ok", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
