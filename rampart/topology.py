"""Lab topologies as data (issue 11): a small YAML file names the sites (each a segment network with its hosts),
the wan between them, the Debian release of each host, the WireGuard hub and its peers, and the bridges between
brokers; ``generate`` writes the Ansible inventory scripts/lab converges (under .lab/, never by hand).

The format is topologies/README.md. ``problems`` refuses what cannot be built, naming the key and the fix, before
anything is written; ``inventory`` is the pure part (hosts, groups, host variables, the lab's settings), so unit
tests compare ``single`` with inventories/lab without Docker.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import yaml

RELEASES = (12, 13)
SITE_ROLES = ("broker", "client", "collector")
WAN_ROLES = ("vpn_client", "outsider")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
WIREGUARD_PORT = 51820
# The lab's settings that a topology replaces in inventories/lab/group_vars/all/lab.yml; the rest (SSH, the lab CA,
# the container rule) are every topology's.
TOPOLOGY_SETTINGS = ("lab_network", "lab_network_subnet", "lab_platform", "lab_networks", "lab_unmanaged",
                     "lab_vantage_points", "lab_sites")
KEYS = {"top": {"release", "wan", "sites", "vpn"},
        "site": {"network", "subnet", "release", "hosts"},
        "wan": {"network", "subnet", "hosts"},
        "host": {"role", "address", "wan", "release", "bridges"},
        "vpn": {"hub", "network", "peers", "unmanaged"}}


class TopologyError(SystemExit):
    """A topology that cannot be built; the message names every problem."""


def load(path: Path) -> dict:
    """The topology in ``path``, checked; TopologyError naming each problem otherwise."""
    try:
        topo = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"topology {path}: {exc}") from None
    found = problems(topo)
    if found:
        raise TopologyError(f"topology {path} cannot be built:\n" + "\n".join(f"  - {p}" for p in found))
    return topo


# --- Checks -------------------------------------------------------------------------------------------------------

def problems(topo) -> list[str]:
    """Everything wrong with a topology, each naming the key and what to do; [] when it can be built."""
    if not isinstance(topo, dict):
        return ["the file must be a mapping with sites, wan and optionally release and vpn"]
    out = _unknown(topo, "top", "the file")
    if topo.get("release", 13) not in RELEASES:
        out.append(f"release: {topo.get('release')!r}: give one of {list(RELEASES)}")
    sites = topo.get("sites")
    if not isinstance(sites, dict) or not sites:
        return [*out, "sites: give at least one site (a mapping of site name to {network, subnet, hosts})"]
    networks = []
    for site, spec in sites.items():
        out += _network_problems(f"sites.{site}", spec, SITE_ROLES, networks)
    if not isinstance(topo.get("wan"), dict):
        return [*out, "wan: give {network, subnet, hosts} (the network between the sites)"]
    out += _network_problems("wan", topo["wan"], WAN_ROLES, networks)
    out += _overlaps(networks)
    out += _duplicate_names(topo)
    if out:
        return out
    return _vpn_problems(topo) + _bridge_problems(topo)


def _unknown(spec: dict, kind: str, where: str) -> list[str]:
    extra = sorted(set(spec) - KEYS[kind])
    return [f"{where}: unknown key(s) {extra}; known: {sorted(KEYS[kind])}"] if extra else []


def _network_problems(where: str, spec, roles: tuple[str, ...], networks: list) -> list[str]:
    if not isinstance(spec, dict):
        return [f"{where}: give a mapping with network, subnet and hosts"]
    out = _unknown(spec, "wan" if where == "wan" else "site", where)
    if not isinstance(spec.get("network"), str) or not NAME.match(spec["network"]):
        out.append(f"{where}.network: give the Docker network's name (a-z, 0-9, -)")
    try:
        subnet = ipaddress.IPv4Network(spec.get("subnet"))
    except (ValueError, TypeError):
        return [*out, f"{where}.subnet: {spec.get('subnet')!r} is no IPv4 network (e.g. 172.29.90.0/24)"]
    networks.append((where, subnet))
    if spec.get("release", 13) not in RELEASES:
        out.append(f"{where}.release: {spec.get('release')!r}: give one of {list(RELEASES)}")
    hosts = spec.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        return [*out, f"{where}.hosts: give at least one host"]
    taken: dict[int, str] = {}
    for name, host in hosts.items():
        out += _host_problems(f"{where}.hosts.{name}", name, host, roles, subnet, taken)
    return out


def _host_problems(where: str, name, host, roles, subnet, taken: dict) -> list[str]:
    if not isinstance(host, dict):
        return [f"{where}: give a mapping with role and address"]
    out = _unknown(host, "host", where)
    if not isinstance(name, str) or not NAME.match(name):
        out.append(f"{where}: a host name is a-z, 0-9 and -, starting with a letter")
    if host.get("role") not in roles:
        out.append(f"{where}.role: {host.get('role')!r}: give one of {list(roles)}")
    address = host.get("address")
    if not isinstance(address, int) or not 2 <= address < subnet.num_addresses - 1:
        out.append(f"{where}.address: {address!r}: give the host's number in {subnet} (2-{subnet.num_addresses - 2})")
    elif address in taken:
        out.append(f"{where}.address: {address} is {taken[address]}'s too")
    else:
        taken[address] = name
    if host.get("release", 13) not in RELEASES:
        out.append(f"{where}.release: {host.get('release')!r}: give one of {list(RELEASES)}")
    if host.get("role") != "broker":
        out += [f"{where}.{key}: only a broker has {key}" for key in ("wan", "bridges") if key in host]
    return out


def _overlaps(networks: list) -> list[str]:
    return [f"{a}.subnet {na} overlaps {b}.subnet {nb}: give each network its own subnet"
            for i, (a, na) in enumerate(networks) for b, nb in networks[i + 1:] if na.overlaps(nb)]


def _duplicate_names(topo: dict) -> list[str]:
    seen: dict[str, str] = {}
    out = []
    for where, hosts in [(f"sites.{s}", spec["hosts"]) for s, spec in topo["sites"].items()] + \
                        [("wan", topo["wan"]["hosts"])]:
        for name in hosts:
            if name in seen:
                out.append(f"{where}.hosts.{name}: the name is already a host of {seen[name]}; host names are unique")
            seen[name] = where
    networks = [spec["network"] for spec in topo["sites"].values()] + [topo["wan"]["network"]]
    out += [f"network {n}: named by more than one site (or the wan)" for n in sorted(set(networks))
            if networks.count(n) > 1]
    wan_numbers = [h["wan"] for h in _site_hosts(topo).values() if "wan" in h] + \
                  [h["address"] for h in topo["wan"]["hosts"].values()]
    out += [f"wan address {n}: given to more than one host (a broker's wan or a wan host's address)"
            for n in sorted(set(wan_numbers)) if wan_numbers.count(n) > 1]
    return out


def _vpn_problems(topo: dict) -> list[str]:
    vpn = topo.get("vpn")
    if vpn is None:
        return []
    if not isinstance(vpn, dict):
        return ["vpn: give {hub, network, peers}"]
    out = _unknown(vpn, "vpn", "vpn")
    hosts = _all_hosts(topo)
    hub = hosts.get(vpn.get("hub"))
    if not hub or hub["role"] != "broker" or "wan" not in hub:
        out.append(f"vpn.hub: {vpn.get('hub')!r}: give a broker that has a wan address (the peers dial it there)")
    try:
        network = ipaddress.IPv4Network(vpn.get("network"))
    except (ValueError, TypeError):
        return [*out, f"vpn.network: {vpn.get('network')!r} is no IPv4 network (the tunnel's, e.g. 10.92.0.0/24)"]
    numbers = {**(vpn.get("peers") or {}), **(vpn.get("unmanaged") or {})}
    for peer in vpn.get("peers") or {}:
        host = hosts.get(peer)
        if not host or not (host["role"] == "vpn_client" or (host["role"] == "broker" and "wan" in host)):
            out.append(f"vpn.peers.{peer}: give a vpn_client of the wan or a broker with a wan address")
    for peer, number in numbers.items():
        if not isinstance(number, int) or not 2 <= number < network.num_addresses - 1:
            out.append(f"vpn: {peer}: {number!r} is no host number in {network} (1 is the hub's)")
    values = list(numbers.values())
    out += [f"vpn: tunnel number {n} is given to more than one peer" for n in sorted(set(values), key=str)
            if values.count(n) > 1]
    return out


def _bridge_problems(topo: dict) -> list[str]:
    out = []
    hosts, vpn = _all_hosts(topo), topo.get("vpn") or {}
    for name, host in _site_hosts(topo).items():
        for bridge in host.get("bridges") or []:
            remote = bridge.get("remote") if isinstance(bridge, dict) else None
            where = f"{name}.bridges ({remote!r})"
            if remote not in hosts or hosts[remote]["role"] != "broker":
                out.append(f"{where}: remote must be a broker of the topology")
            elif _site_of(topo, remote) != _site_of(topo, name) and not _tunnelled(vpn, name, remote):
                out.append(f"{where}: {remote} is in another site and no tunnel joins them: make {remote} the vpn hub "
                           f"and {name} its peer (the wan carries only WireGuard)")
    return out


def _tunnelled(vpn: dict, a: str, b: str) -> bool:
    peers = vpn.get("peers") or {}
    return (vpn.get("hub") == b and a in peers) or (vpn.get("hub") == a and b in peers)


# --- The inventory ------------------------------------------------------------------------------------------------

def _site_hosts(topo: dict) -> dict:
    return {name: host for spec in topo["sites"].values() for name, host in spec["hosts"].items()}


def _all_hosts(topo: dict) -> dict:
    return {**_site_hosts(topo), **topo["wan"]["hosts"]}


def _site_of(topo: dict, name: str) -> str | None:
    return next((site for site, spec in topo["sites"].items() if name in spec["hosts"]), None)


def _address(subnet: str, number: int) -> str:
    return str(ipaddress.IPv4Network(subnet).network_address + number)


def _placed(topo: dict) -> dict:
    """Every host with its network, subnet, address, wan address and release."""
    out = {}
    default = topo.get("release", 13)
    for site, spec in topo["sites"].items():
        for name, host in spec["hosts"].items():
            out[name] = {**host, "site": site, "network": spec["network"], "subnet": spec["subnet"],
                         "ip": _address(spec["subnet"], host["address"]),
                         "wan_ip": _address(topo["wan"]["subnet"], host["wan"]) if "wan" in host else None,
                         "release": host.get("release", spec.get("release", default))}
    for name, host in topo["wan"]["hosts"].items():
        out[name] = {**host, "site": None, "network": topo["wan"]["network"], "subnet": topo["wan"]["subnet"],
                     "ip": _address(topo["wan"]["subnet"], host["address"]), "wan_ip": None,
                     "release": host.get("release", default)}
    return out


def inventory(topo: dict) -> dict:
    """{"groups": {group: [hosts]}, "hostvars": {host: vars}, "settings": the lab.yml keys it sets}."""
    placed = _placed(topo)
    first = next(iter(topo["sites"].values()))
    default_platform = f"debian{topo.get('release', 13)}"
    managed = {n: h for n, h in placed.items() if h["role"] != "outsider"}
    groups = {"brokers": [n for n, h in managed.items() if h["role"] == "broker"],
              "mqtt_clients": [n for n, h in managed.items() if h["role"] in ("client", "vpn_client")],
              "collectors": [n for n, h in managed.items() if h["role"] == "collector"]}
    groups["perimeter"] = list(groups["brokers"])
    vpn = topo.get("vpn")
    if vpn:
        groups["wireguard"] = [vpn["hub"], *vpn["peers"]]
    collector_networks = {placed[n]["network"] for n in groups["collectors"]}
    hostvars = {}
    for name, host in managed.items():
        hv = {"ansible_host": host["ip"]}
        if host["network"] != first["network"]:
            hv["lab_network"] = host["network"]
        if f"debian{host['release']}" != default_platform:
            hv["lab_platform"] = f"debian{host['release']}"
        if host["wan_ip"]:
            hv["lab_extra_networks"] = [{"network": topo["wan"]["network"], "address": host["wan_ip"]}]
        if collector_networks and host["role"] != "collector" and host["network"] not in collector_networks:
            hv["log_shipping_enabled"] = False
        if host["role"] == "broker":
            hv.update(_broker_vars(name, host, placed))
        hv.update(_wireguard_vars(name, vpn, placed))
        hostvars[name] = hv
    settings = {"lab_network": first["network"], "lab_network_subnet": first["subnet"],
                "lab_platform": default_platform,
                "lab_networks": {**{s["network"]: s["subnet"] for s in topo["sites"].values()},
                                 topo["wan"]["network"]: topo["wan"]["subnet"]},
                "lab_unmanaged": [{"name": n, "network": h["network"], "address": h["ip"]}
                                  for n, h in placed.items() if h["role"] == "outsider"],
                "lab_vantage_points": vantage_points(topo, placed),
                "lab_sites": {site: {"network": spec["network"], "subnet": spec["subnet"], "hosts": list(spec["hosts"])}
                              for site, spec in topo["sites"].items()}}
    return {"groups": groups, "hostvars": hostvars, "settings": settings}


def _broker_vars(name: str, host: dict, placed: dict) -> dict:
    gateway = str(ipaddress.IPv4Network(host["subnet"]).network_address + 1)
    out: dict = {"nftables_management_cidrs": [f"{gateway}/32"]}
    if host.get("bridges"):
        out["mosquitto_bridges"] = host["bridges"]
        # The edge resolves each remote's TLS name (its inventory name) to the remote's segment address, which its
        # WireGuard peer routes through the tunnel (an operator's DNS would do this; Docker's knows only one network).
        far = {b["remote"]: placed[b["remote"]]["ip"] for b in host["bridges"]
               if placed[b["remote"]]["network"] != host["network"]}
        if far:
            out["lab_add_hosts"] = far
    return out


def _wireguard_vars(name: str, vpn: dict | None, placed: dict) -> dict:
    if not vpn or (name != vpn["hub"] and name not in vpn["peers"]):
        return {}
    tunnel = ipaddress.IPv4Network(vpn["network"])
    if name != vpn["hub"]:
        return {"wireguard_addresses": [f"{tunnel.network_address + vpn['peers'][name]}/{tunnel.prefixlen}"],
                "wireguard_peers": [{"host": vpn["hub"]}]}
    hub = placed[name]
    return {"wireguard_addresses": [f"{tunnel.network_address + 1}/{tunnel.prefixlen}"],
            "wireguard_endpoint": f"{hub['wan_ip']}:{WIREGUARD_PORT}",
            "wireguard_routed_networks": [f"{hub['ip']}/32"],
            "wireguard_peers": [{"host": peer} for peer in vpn["peers"]]
            + [{"name": peer, "addresses": [f"{tunnel.network_address + number}/32"]}
               for peer, number in (vpn.get("unmanaged") or {}).items()],
            "wireguard_export_dir": "{{ inventory_dir }}/../../.lab/wireguard"}


def vantage_points(topo: dict, placed: dict) -> list[dict]:
    """Who must (not) reach each broker's MQTT ports: the clients of its segment and its VPN clients must; the
    clients of every other site, and the outsiders at its wan address, must not. With more than one broker each
    point names its ``broker``."""
    brokers = [n for n, h in placed.items() if h["role"] == "broker"]
    vpn = topo.get("vpn") or {"hub": None, "peers": {}}
    out = []
    for broker in brokers:
        b = placed[broker]
        for name, h in placed.items():
            if h["role"] == "client":
                same = h["network"] == b["network"]
                out.append({"name": name, "role": "segment_client" if same else "other_site_client",
                            "can_reach_broker": same, "broker_address": b["ip"]})
            elif h["role"] == "vpn_client" and vpn["hub"] == broker and name in vpn["peers"]:
                out.append({"name": name, "role": "vpn_client", "can_reach_broker": True, "broker_address": b["ip"]})
        out += [{"name": name, "role": "outsider", "can_reach_broker": False, "broker_address": b["wan_ip"] or b["ip"]}
                for name, h in placed.items() if h["role"] == "outsider"]
        if len(brokers) > 1:
            for point in out:
                point.setdefault("broker", broker)
    return out


def generate(topo: dict, name: str, lab_inventory: Path, out: Path) -> Path:
    """Write the inventory of ``topo`` to ``out``: hosts.yml (groups and every host's variables) and group_vars,
    whose files are links to ``lab_inventory``'s (the lab's clients, broker, collector and perimeter settings)
    except all/lab.yml, the lab's settings with the topology's networks, vantage points and sites."""
    inv = inventory(topo)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"all": {"hosts": inv["hostvars"],
                   "children": {group: {"hosts": dict.fromkeys(members)} for group, members in inv["groups"].items()
                                if members}}}
    (out / "hosts.yml").write_text(f"---\n# Generated by scripts/lab up --topology {name}; never edit it.\n"
                                   + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    group_vars = out / "group_vars"
    for source in sorted((lab_inventory / "group_vars").iterdir()):
        target = group_vars / source.name
        if source.name != "all":
            _link(target, source)
            continue
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(source.iterdir()):
            if item.name != "lab.yml":
                _link(target / item.name, item)
        settings = {**yaml.safe_load((source / "lab.yml").read_text()), **inv["settings"]}
        (target / "lab.yml").write_text(f"---\n# Generated by scripts/lab up --topology {name} from "
                                        f"{source / 'lab.yml'}; never edit it.\n"
                                        + yaml.safe_dump(settings, sort_keys=False))
    return out


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target.resolve())
