"""rampart.perimeter: validation and rendering helpers of the vlan, nftables and wireguard roles."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import perimeter

from tests.support import ROLES_DIR

GOOD_NFT = {
    "nftables_table": "rampart",
    "nftables_management_cidrs": ["172.29.86.1/32"],
    "nftables_management_port": 22,
    "nftables_rules": [{"name": "mqtt", "ports": [8883, 8884], "sources": ["172.29.86.0/24"], "rate": 60, "burst": 30,
                        "max_connections": 100}],
    "nftables_log_prefix": "rampart-drop: ",
    "nftables_log_rate": 20,
    "nftables_log_rate_total": 600,
    "nftables_log_group": 0,
    "nftables_revert_after": 90,
    "nftables_confirm_timeout": 30,
}


def test_good_nftables_settings_have_no_problem():
    assert perimeter.nftables_problems(GOOD_NFT) == []


@pytest.mark.parametrize(("change", "needle"), [
    ({"nftables_management_cidrs": []}, "nftables_management_cidrs is empty"),
    ({"nftables_management_cidrs": ["0.0.0.0/0"]}, "nftables_management_cidrs[0]"),
    ({"nftables_management_cidrs": ["0.0.0.0/1", "128.0.0.0/1"]}, "together cover every IPv4 address"),
    ({"nftables_management_cidrs": ["172.29.86.1/32", "::/1", "8000::/1"]}, "together cover every IPv6 address"),
    ({"nftables_management_cidrs": ["10.0.0.300/32"]}, "is not an IP address or CIDR"),
    ({"nftables_table": "bad table"}, "nftables_table"),
    ({"nftables_rules": [{"name": "a", "ports": [0]}]}, "nftables_rules[0].ports[0]"),
    ({"nftables_rules": [{"name": "a", "ports": [1]}, {"name": "a", "ports": [2]}]}, "duplicates nftables_rules[0]"),
    ({"nftables_rules": [{"name": "a", "ports": []}]}, "nftables_rules[0].ports is empty"),
    ({"nftables_rules": [{"name": "a", "ports": [1], "sources": ["nope"]}]}, "nftables_rules[0].sources[0]"),
    ({"nftables_rules": [{"name": "a", "ports": [1], "burst": 0}]}, "nftables_rules[0].burst"),
    ({"nftables_rules": [{"name": "a", "ports": [1], "rate": -1}]}, "nftables_rules[0].rate"),
    ({"nftables_log_prefix": 'say "hi"'}, "nftables_log_prefix"),
    ({"nftables_log_group": 70000}, "nftables_log_group"),
    ({"nftables_log_rate_total": 10}, "nftables_log_rate_total (10) must be an integer >= nftables_log_rate (20)"),
    ({"nftables_revert_after": 35}, "nftables_revert_after (35) must exceed nftables_confirm_timeout (30)"),
])
def test_bad_nftables_settings_are_named(change, needle):
    problems = perimeter.nftables_problems({**GOOD_NFT, **change})
    assert any(needle in p for p in problems), problems


def test_rules_are_split_per_family_with_defaults():
    (rule,) = perimeter.nftables_rules([{"name": "mqtt", "ports": [8883], "sources": ["10.0.0.5/24", "fd00::1/64"],
                                         "interfaces": ["eth0"]}])
    assert rule["protocol"] == "tcp" and rule["rate"] == 0 and rule["burst"] == 5
    assert rule["families"] == ["v4", "v6"]
    v4, v6 = rule["matches"]
    assert v4["expr"] == 'iifname { "eth0" } ip saddr { 10.0.0.0/24 } tcp dport { 8883 }'
    assert v6["expr"] == 'iifname { "eth0" } ip6 saddr { fd00::/64 } tcp dport { 8883 }'


def test_rule_without_sources_matches_both_families():
    (rule,) = perimeter.nftables_rules([{"name": "wg", "protocol": "udp", "ports": [51820]}])
    assert [m["expr"] for m in rule["matches"]] == ["meta nfproto ipv4 udp dport { 51820 }",
                                                    "meta nfproto ipv6 udp dport { 51820 }"]


def test_addresses():
    assert perimeter.network("172.29.86.12/24") == "172.29.86.0/24"
    assert perimeter.address("10.86.12.1/24") == "10.86.12.1"
    by_family = perimeter.cidrs_by_family(["10.0.0.1/8", "10.1.1.1/8", "::1/128"])
    assert by_family == {"v4": ["10.0.0.0/8"], "v6": ["::1/128"]}


GOOD_WG = {
    "wireguard_interface": "wg0",
    "wireguard_port": 51820,
    "wireguard_addresses": ["10.86.0.1/24"],
    "wireguard_endpoint": "203.0.113.5:51820",
    "wireguard_routed_networks": [],
    "wireguard_peers": [{"host": "client1"}, {"name": "laptop", "addresses": ["10.86.0.50/32"]}],
    "wireguard_persistent_keepalive": 25,
    "wireguard_export_dir": "/tmp/export",  # noqa: S108 - a value, never created
    "wireguard_before_units": ["mosquitto.service"],
}


def test_good_wireguard_settings_have_no_problem():
    assert perimeter.wireguard_problems(GOOD_WG, ["client1", "broker1"]) == []


@pytest.mark.parametrize(("change", "needle"), [
    ({"wireguard_addresses": []}, "wireguard_addresses is empty"),
    ({"wireguard_addresses": ["10.86.0.1"]}, "wireguard_addresses[0] ('10.86.0.1') has no prefix length"),
    ({"wireguard_port": 0}, "wireguard_port"),
    ({"wireguard_endpoint": "no port"}, "wireguard_endpoint"),
    ({"wireguard_peers": [{"host": "ghost"}]}, "wireguard_peers[0].host ('ghost') is not a host of this inventory"),
    ({"wireguard_peers": [{"host": "client1", "name": "x"}]}, "wireguard_peers[0] needs exactly one of host"),
    ({"wireguard_peers": [{"name": "laptop"}]}, "wireguard_peers[0].addresses is missing"),
    ({"wireguard_peers": [{"name": "phone", "addresses": ["10.86.0.60/32"], "public_key": "not-a-key"}]},
     "wireguard_peers[0].public_key ('not-a-key') is not a WireGuard public key"),
    ({"wireguard_peers": [{"name": "phone", "addresses": ["10.86.0.60/32"], "public_key": "A" * 44}]},
     "is not a WireGuard public key"),
    ({"wireguard_peers": [{"host": "client1", "public_key": "x"}]},
     "wireguard_peers[0]: public_key and handed_over are for peers Ansible does not manage"),
    ({"wireguard_export_dir": ""}, "wireguard_export_dir is empty"),
    ({"wireguard_endpoint": ""}, "wireguard_endpoint is empty"),
    ({"wireguard_before_units": ["mosquitto"]}, "wireguard_before_units[0]"),
    ({"wireguard_interface": "a-very-long-interface-name"}, "wireguard_interface"),
])
def test_bad_wireguard_settings_are_named(change, needle):
    problems = perimeter.wireguard_problems({**GOOD_WG, **change}, ["client1"])
    assert any(needle in p for p in problems), problems


# Review M7: what the hub would route into the tunnel. GOOD_WG as the lab's hub: on a segment, managed from one
# address, its managed peer client1 on 10.86.0.30 routing nothing else.
HUB = {**GOOD_WG, "inventory_hostname": "broker1", "vlan_address": "172.29.83.10/24",
       "nftables_management_cidrs": ["172.29.83.1/32"],
       "managed_peers": {"client1": {"wireguard_addresses": ["10.86.0.30/24"], "wireguard_routed_networks": []}}}


def test_a_peer_routed_into_the_ipv6_segment_is_refused():
    hub = {**HUB, "vlan_address6": "fd42:83::10/64",
           "wireguard_peers": [{"host": "client1"}, {"name": "laptop", "addresses": ["fd42:83::50/128"]}]}
    problems = perimeter.wireguard_problems(hub, ["client1", "broker1"])
    assert any("fd42:83::50/128, which overlaps this host's segment" in p for p in problems), problems


def test_the_lab_shaped_hub_routes_nothing_it_must_not():
    assert perimeter.wireguard_problems(HUB, ["client1", "broker1"]) == []
    # A client routing the hub's segment address through the tunnel is the point of routed networks.
    client = {**GOOD_WG, "inventory_hostname": "client1", "wireguard_addresses": ["10.86.0.30/24"],
              "wireguard_peers": [{"host": "broker1"}], "vlan_address": "", "nftables_management_cidrs": [],
              "managed_peers": {"broker1": {"wireguard_addresses": ["10.86.0.1/24"],
                                            "wireguard_routed_networks": ["172.29.83.10/32"]}}}
    assert perimeter.wireguard_problems(client, ["client1", "broker1"]) == []


@pytest.mark.parametrize(("peers", "managed", "needle"), [
    ([{"name": "a", "addresses": ["10.86.0.50/32"]}, {"name": "b", "addresses": ["10.86.0.50/32"]}], {},
     "wireguard_peers[1] ('b') would be routed 10.86.0.50/32, which overlaps 10.86.0.50/32 of wireguard_peers[0]"),
    ([{"name": "a", "addresses": ["10.86.0.50/32"], "allowed_ips": ["0.0.0.0/0", "::/0"]}], {},
     "wireguard_peers[0] ('a') would be routed every IPv4 address"),
    ([{"name": "a", "addresses": ["10.86.0.50/32"], "allowed_ips": ["::/0"]}], {},
     "would be routed every IPv6 address"),
    ([{"name": "a", "addresses": ["172.29.83.20/32"]}], {}, "overlaps this host's segment"),
    ([{"name": "a", "addresses": ["10.86.0.50/32"], "allowed_ips": ["10.86.0.50/32", "172.29.83.1/32"]}], {},
     "overlaps the management networks (nftables_management_cidrs)"),
    ([{"name": "a", "addresses": ["10.86.0.1/32"]}], {}, "overlaps this host's tunnel address"),
    ([{"host": "broker1"}], {}, "wireguard_peers[0] ('broker1') is this host itself"),
    ([{"host": "client1"}], {"client1": {"wireguard_addresses": ["10.86.0.30/24"],
                                         "wireguard_routed_networks": ["172.29.83.0/25"]}},
     "wireguard_peers[0] ('client1') would be routed 172.29.83.0/25, which overlaps this host's segment"),
])
def test_routes_into_the_tunnel_that_would_hijack_or_collide_are_refused(peers, managed, needle):
    problems = perimeter.wireguard_problems({**HUB, "wireguard_peers": peers, "managed_peers": managed},
                                            ["client1", "broker1"])
    assert any(needle in p for p in problems), problems


def test_routed_networks_may_not_be_everything():
    problems = perimeter.wireguard_problems({**HUB, "wireguard_routed_networks": ["0.0.0.0/0"]}, ["client1"])
    assert any("wireguard_routed_networks[0] ('0.0.0.0/0') would send every peer's whole traffic" in p
               for p in problems), problems


def test_peer_allowed_ips_is_what_wg_conf_routes():
    assert perimeter.peer_allowed_ips({"name": "a", "addresses": ["10.86.0.50/24"]}) == ["10.86.0.50/32"]
    assert perimeter.peer_allowed_ips({"name": "a", "addresses": ["10.86.0.50/24"], "allowed_ips": ["10.9.0.0/16"]}) \
        == ["10.9.0.0/16"]
    assert perimeter.peer_allowed_ips({"host": "b"}, {"wireguard_addresses": ["fd00::2/64"],
                                                      "wireguard_routed_networks": ["10.1.0.0/16"]}) \
        == ["fd00::2/128", "10.1.0.0/16"]


GOOD_VLAN = {"vlan_mode": "tagged", "vlan_parent": "eno1", "vlan_id": 86, "vlan_interface": "vlan86",
             "vlan_address": "10.20.86.10/24", "vlan_address6": "", "vlan_gateway": ""}


def test_good_vlan_settings_have_no_problem():
    assert perimeter.vlan_problems(GOOD_VLAN) == []
    assert perimeter.vlan_problems({**GOOD_VLAN, "vlan_address6": "fd42:86::10/64"}) == []
    assert perimeter.vlan_problems({**GOOD_VLAN, "vlan_address6": "fd42:86::10/64", "vlan_gateway": "fd42:86::1"}) == []
    assert perimeter.vlan_problems({**GOOD_VLAN, "vlan_mode": "untagged", "vlan_parent": "", "vlan_id": 0,
                                    "vlan_interface": "eth0"}) == []


@pytest.mark.parametrize(("change", "needle"), [
    ({"vlan_id": 4095}, "vlan_id (4095) must be between 1 and 4094"),
    ({"vlan_parent": ""}, "vlan_parent"),
    ({"vlan_parent": "vlan86"}, "equals vlan_interface"),
    ({"vlan_address": ""}, "vlan_address is empty"),
    ({"vlan_address": "10.20.86.10"}, "has no prefix length"),
    ({"vlan_gateway": "10.99.0.1"}, "vlan_gateway (10.99.0.1) is outside the segment 10.20.86.0/24"),
    ({"vlan_interface": ""}, "vlan_interface"),
    # IPv6 on the segment (issue 12): one IPv6 address beside the IPv4 one, each of its own family.
    ({"vlan_address6": "fd42:86::10"}, "vlan_address6 ('fd42:86::10') has no prefix length"),
    ({"vlan_address6": "10.20.87.10/24"}, "vlan_address6 ('10.20.87.10/24') must be an IPv6 address"),
    ({"vlan_address6": "fe80::10/64"}, "is link-local"),
    ({"vlan_address6": "::/64"}, "is unspecified"),
    ({"vlan_address6": "fd42:86::10\n/64"}, "is not an IP address"),
    ({"vlan_address": "fd42:86::10/64", "vlan_address6": "fd42:86::11/64"}, "vlan_address ('fd42:86::10/64') must be an"
                                                                           " IPv4 address when vlan_address6 is set"),
    ({"vlan_address6": "fd42:86::10/64", "vlan_gateway": "fd42:99::1"}, "vlan_gateway (fd42:99::1) is outside the"
                                                                          " segment fd42:86::/64 of vlan_address6"),
])
def test_bad_vlan_settings_are_named(change, needle):
    problems = perimeter.vlan_problems({**GOOD_VLAN, **change})
    assert any(needle in p for p in problems), problems


def test_wireguard_keys_match_wg_semantics():
    private = perimeter.wg_private_key()
    assert len(base64.b64decode(private)) == 32
    # RFC 7748 test vector (Alice): the public key of a known private key.
    alice = base64.b64encode(bytes.fromhex(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")).decode()
    assert base64.b64decode(perimeter.wg_public_key(alice)).hex() == (
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert perimeter.wg_key_problem("abc") is not None
    assert perimeter.wg_key_problem(private) is None


def test_keygen_and_qr_write_owner_only_files(tmp_path: Path):
    key = tmp_path / "export" / "laptop.key"
    assert perimeter.main(["keygen", str(key)]) == 0
    first = key.read_text()
    assert perimeter.main(["keygen", str(key)]) == 0
    assert key.read_text() == first, "keygen replaced an existing key"
    assert (tmp_path / "export" / "laptop.key.pub").read_text().strip() == perimeter.wg_public_key(first)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert oct(key.parent.stat().st_mode & 0o777) == "0o700"
    conf = tmp_path / "export" / "laptop.conf"
    conf.write_text("[Interface]\nPrivateKey = x\n")
    png = tmp_path / "export" / "laptop.png"
    assert perimeter.main(["qr", str(conf), str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert oct(png.stat().st_mode & 0o777) == "0o600"


def _render(template: str, role: str = "vlan", **variables) -> str:
    import jinja2

    root = ROLES_DIR / role / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root), keep_trailing_newline=True, trim_blocks=True,  # noqa: S701 - renders config files, not HTML
                             undefined=jinja2.StrictUndefined)
    env.filters["comment"] = lambda text: "# " + text
    env.filters["bool"] = bool  # Ansible's, for the real booleans given here
    return env.get_template(template).render(ansible_managed="Ansible managed", **variables)


def _ini(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return sections


def test_tagged_vlan_renders_netdev_parent_and_segment():
    variables = {**GOOD_VLAN}
    netdev = _ini(_render("etc/systemd/network/vlan.netdev.j2", **variables))
    assert netdev == {"NetDev": {"Name": "vlan86", "Kind": "vlan"}, "VLAN": {"Id": "86"}}
    parent = _ini(_render("etc/systemd/network/parent.network.j2", **variables))
    assert parent["Match"] == {"Name": "eno1"} and parent["Network"]["VLAN"] == "vlan86"
    segment = _ini(_render("etc/systemd/network/segment.network.j2", **variables))
    assert segment["Match"] == {"Name": "vlan86"}
    assert segment["Network"]["Address"] == "10.20.86.10/24"
    assert "Gateway" not in segment["Network"], "no default route through the segment unless asked"
    with_gw = _ini(_render("etc/systemd/network/segment.network.j2", **{**variables, "vlan_gateway": "10.20.86.1"}))
    assert with_gw["Network"]["Gateway"] == "10.20.86.1"


def test_an_ipv6_segment_address_is_a_second_address_line_and_nothing_else_changes():
    """networkd takes one Address= line per address. No link-local address and no router advertisements either way:
    the segment's addresses are the ones the inventory gives."""
    v4 = _render("etc/systemd/network/segment.network.j2", **GOOD_VLAN)
    both = _render("etc/systemd/network/segment.network.j2", **{**GOOD_VLAN, "vlan_address6": "fd42:86::10/64"})
    assert [line for line in both.splitlines() if line.startswith("Address=")] == \
        ["Address=10.20.86.10/24", "Address=fd42:86::10/64"]
    assert [line for line in both.splitlines() if not line.startswith(("Address=", "#"))] == \
        [line for line in v4.splitlines() if not line.startswith(("Address=", "#"))]
    assert _ini(both)["Network"]["LinkLocalAddressing"] == "no" and _ini(both)["Network"]["IPv6AcceptRA"] == "no"


def test_rendered_networkd_files_use_only_known_keys():
    """No parser for .network/.netdev files runs outside networkd; pin the keys to networkd's documented set."""
    known = {"NetDev": {"Name", "Kind"}, "VLAN": {"Id"}, "Match": {"Name"},
             "Network": {"Address", "Gateway", "DHCP", "LinkLocalAddressing", "IPv6AcceptRA", "VLAN",
                         "KeepConfiguration"}}
    for template in ("etc/systemd/network/vlan.netdev.j2", "etc/systemd/network/parent.network.j2",
                     "etc/systemd/network/segment.network.j2"):
        for mode in ("tagged", "untagged"):
            for section, keys in _ini(_render(template, **{**GOOD_VLAN, "vlan_mode": mode})).items():
                assert set(keys) <= known[section], f"{template}: unknown keys {set(keys) - known[section]}"


def _ruleset(**over) -> str:
    settings = {**GOOD_NFT, "nftables_log_drops": True, "nftables_allow_icmp": True,
                "nftables_accept_router_advertisements": False, **over}
    return _render("etc/rampart/nftables/rampart.nft.j2", role="nftables", **settings,
                   __nftables_rules_rendered=perimeter.nftables_rules(settings["nftables_rules"]),
                   __nftables_management_by_family=perimeter.cidrs_by_family(settings["nftables_management_cidrs"]))


def test_the_ruleset_gives_each_source_its_own_drop_log_budget_and_filters_ipv6_by_reverse_path():
    """Review L9, as rendered (the kernel takes it in the Molecule perimeter scenario and the lab, where
    tests/perimeter/test_broker_host.py shows a noisy source no longer hides another's drops; IPv6 traffic itself
    needs the virtual machines of issue 12)."""
    text = _ruleset()
    assert "update @log_budget_v4 { ip saddr limit rate 20/minute burst 5 packets } limit rate 600/minute" in text
    assert "update @log_budget_v6 { ip6 saddr limit rate 20/minute burst 5 packets } limit rate 600/minute" in text
    assert "ip6 saddr != :: fib saddr . iif oif missing jump log_drop" in text
    assert "nd-router-advert" not in text, "router advertisements are accepted by default"
    assert "nd-router-advert" in _ruleset(nftables_accept_router_advertisements=True)
    assert "log_budget" not in _ruleset(nftables_log_drops=False)


def test_a_peer_may_bring_its_own_public_key():
    """Review L11: the operator registers the key the peer made itself (so the hub never holds its private key)."""
    own = perimeter.wg_public_key(perimeter.wg_private_key())
    peers = [{"name": "phone", "addresses": ["10.86.0.60/32"], "public_key": own, "handed_over": True}]
    assert perimeter.is_wireguard_key(own)
    assert perimeter.wireguard_problems({**GOOD_WG, "wireguard_peers": peers}, ["client1"]) == []
