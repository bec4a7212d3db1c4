"""Lab topologies as data (rampart.topology, issue 11): `single` generates inventories/lab exactly, `multi-site` the
three sites the README shows, and a topology that cannot be built is refused with the key named."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rampart import lab, topology

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"


def shipped(name: str) -> dict:
    return topology.load(ROOT / "topologies" / f"{name}.yml")


def listed(inventory: Path) -> dict:
    """What Ansible makes of an inventory: every host's variables and every group's hosts."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inventory), "--list"],
                         capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    data = json.loads(out)
    groups = {g: sorted(v.get("hosts", [])) for g, v in data.items() if g != "_meta" and v.get("hosts")}
    return {"hostvars": data["_meta"]["hostvars"], "groups": groups}


def test_single_generates_inventories_lab_exactly(tmp_path):
    out = topology.generate(shipped("single"), "single", LAB, tmp_path / "topology-single")
    assert listed(out) == listed(LAB)


def test_the_generated_inventory_links_the_labs_settings_and_says_it_is_generated(tmp_path):
    out = topology.generate(shipped("multi-site"), "multi-site", LAB, tmp_path / "inv")
    assert (out / "group_vars" / "brokers").resolve() == (LAB / "group_vars" / "brokers").resolve()
    assert (out / "group_vars" / "all" / "clients.yml").is_symlink()
    assert not (out / "group_vars" / "all" / "lab.yml").is_symlink()
    assert "never edit it" in (out / "hosts.yml").read_text()
    # A second generation changes nothing (scripts/lab up runs it every time).
    before = {p: p.read_text() for p in out.rglob("*.yml")}
    topology.generate(shipped("multi-site"), "multi-site", LAB, out)
    assert {p: p.read_text() for p in out.rglob("*.yml")} == before


def test_multi_site_has_two_edges_bridged_through_the_tunnel_to_the_core():
    inv = topology.inventory(shipped("multi-site"))
    hv, groups = inv["hostvars"], inv["groups"]
    assert groups["brokers"] == ["broker-a", "broker-b", "core"]
    assert groups["wireguard"] == ["core", "broker-a", "broker-b"]
    assert groups["collectors"] == ["core-logs"]
    assert hv["broker-a"].get("lab_platform") == "debian12" and "lab_platform" not in hv["broker-b"]
    assert hv["core"]["wireguard_routed_networks"] == ["172.29.92.10/32"]
    assert hv["core"]["wireguard_endpoint"] == "172.29.93.10:51820"
    assert hv["broker-a"]["wireguard_peers"] == [{"host": "core"}]
    # The edge dials the core's name, which it resolves to the core's segment address (routed through the tunnel).
    assert hv["broker-a"]["lab_add_hosts"] == {"core": "172.29.92.10"}
    assert hv["broker-a"]["mosquitto_bridges"][0]["remote"] == "core"
    assert hv["broker-a"]["nftables_management_cidrs"] == ["172.29.90.1/32"]
    # No collector on the edges' segments: their hosts keep their logs.
    assert hv["client-a"]["log_shipping_enabled"] is False and "log_shipping_enabled" not in hv["dashboard"]
    assert inv["settings"]["lab_unmanaged"] == [
        {"name": "wan-outsider", "network": "rampart-ms-wan", "address": "172.29.93.40"}]


def test_multi_site_vantage_points_name_their_broker():
    points = topology.inventory(shipped("multi-site"))["settings"]["lab_vantage_points"]
    by = {(p["name"], p["broker"]): p for p in points}
    assert by[("client-a", "broker-a")]["can_reach_broker"] is True
    assert by[("client-a", "broker-b")] == {"name": "client-a", "role": "other_site_client", "can_reach_broker": False,
                                            "broker_address": "172.29.91.10", "broker": "broker-b"}
    assert by[("wan-outsider", "core")]["broker_address"] == "172.29.93.10"
    assert not by[("wan-outsider", "core")]["can_reach_broker"]
    assert len(points) == 3 * 4  # three clients and the outsider, for each of the three brokers


def broken(edit) -> list[str]:
    topo = copy.deepcopy(yaml.safe_load((ROOT / "topologies" / "multi-site.yml").read_text()))
    edit(topo)
    return topology.problems(topo)


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t["sites"]["edge-b"].update(subnet="172.29.90.128/25"),
     "sites.edge-a.subnet 172.29.90.0/24 overlaps sites.edge-b.subnet"),
    (lambda t: t["sites"]["edge-a"].update(release=11), "sites.edge-a.release: 11"),
    (lambda t: t["sites"]["core"]["hosts"]["core"].update(release=14), "hosts.core.release: 14"),
    (lambda t: t["sites"]["edge-a"]["hosts"]["client-a"].update(address=10), "10 is broker-a's too"),
    (lambda t: t["sites"]["edge-a"]["hosts"]["client-a"].update(role="router"), "client-a.role: 'router'"),
    (lambda t: t["sites"]["edge-a"]["hosts"]["client-a"].update(wan=20), "client-a.wan: only a broker"),
    (lambda t: t["sites"]["edge-a"].update(colour="red"), "sites.edge-a: unknown key(s) ['colour']"),
    (lambda t: t["sites"]["edge-b"]["hosts"].update({"client-a": {"role": "client", "address": 30}}),
     "client-a: the name is already a host of sites.edge-a"),
    (lambda t: t["sites"]["edge-b"]["hosts"]["broker-b"].update(wan=11), "wan address 11: given to more than one"),
    (lambda t: t["vpn"]["peers"].pop("broker-a"), "broker-a.bridges ('core'): core is in another site and no tunnel"),
    (lambda t: t["sites"]["edge-a"]["hosts"]["broker-a"]["bridges"][0].update(remote="dashboard"),
     "remote must be a broker of the topology"),
    (lambda t: t["vpn"].update(hub="dashboard"), "vpn.hub: 'dashboard'"),
    (lambda t: t["vpn"]["peers"].update({"broker-b": 11}), "tunnel number 11 is given to more than one peer"),
    (lambda t: t["wan"].update(subnet="not-a-network"), "wan.subnet: 'not-a-network' is no IPv4 network"),
])
def test_a_topology_that_cannot_be_built_is_refused_naming_the_key(edit, expected):
    found = broken(edit)
    assert any(expected in p for p in found), found


def test_load_names_the_file_and_every_problem(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text("sites: {}\n")
    with pytest.raises(topology.TopologyError) as stop:
        topology.load(path)
    assert str(path) in str(stop.value) and "sites: give at least one site" in str(stop.value)


def test_the_shipped_topologies_are_sound():
    for path in sorted((ROOT / "topologies").glob("*.yml")):
        assert topology.problems(yaml.safe_load(path.read_text())) == [], path


def test_the_lab_plans_each_host_on_its_own_release_and_the_edges_resolve_the_core():
    inv = topology.inventory(shipped("multi-site"))
    settings = inv["settings"]
    plan = {e["name"]: e for e in lab.plan({
        "hosts": inv["hostvars"], "network": settings["lab_network"], "subnet": settings["lab_network_subnet"],
        "platform": settings["lab_platform"], "networks": settings["lab_networks"],
        "unmanaged": settings["lab_unmanaged"]})}
    assert plan["broker-a"]["platform"] == "debian12" and plan["client-a"]["platform"] == "debian12"
    assert plan["broker-b"]["platform"] == plan["core"]["platform"] == "debian13"
    assert plan["broker-a"]["hosts"] == {"core": "172.29.92.10"} and plan["core"]["hosts"] == {}
    assert plan["core"]["network"] == "rampart-ms-core"
    assert plan["core"]["extra"] == [("rampart-ms-wan", "172.29.93.10")]
    assert not plan["wan-outsider"]["managed"]


def test_the_readme_shows_both_shipped_topologies_as_they_are():
    """README, "Test clusters": the two YAML blocks after `topologies/single.yml` and `topologies/multi-site.yml`
    say what the files say."""
    readme = (ROOT / "README.md").read_text()
    for name in ("single", "multi-site"):
        after = readme.split(f"`topologies/{name}.yml`", 1)[1]
        block = after.split("```yaml\n", 1)[1].split("```", 1)[0]
        assert yaml.safe_load(block) == yaml.safe_load((ROOT / "topologies" / f"{name}.yml").read_text()), name
