"""The lab's perimeter topology (rampart.lab.plan) and lab.json's vantage_points (rampart.describe)."""

from __future__ import annotations

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import describe

from rampart import lab


def _inv(**extra):
    hosts = {
        "broker1": {"ansible_host": "172.29.83.10",
                    "lab_extra_networks": [{"network": "rampart-lab-wan", "address": "172.29.80.10"}]},
        "client1": {"ansible_host": "172.29.83.20"},
        "vpn1": {"ansible_host": "172.29.80.30", "lab_network": "rampart-lab-wan"},
    }
    inv = {"hosts": hosts, "network": "rampart-lab", "subnet": "172.29.83.0/24", "platform": "debian12",
           "networks": {"rampart-lab": "172.29.83.0/24", "rampart-lab-wan": "172.29.80.0/24"},
           "unmanaged": [{"name": "outsider", "network": "rampart-lab-wan", "address": "172.29.80.40"}]}
    inv.update(extra)
    return inv


def test_plan_places_each_container_on_its_networks():
    plan = {e["name"]: e for e in lab.plan(_inv())}
    assert plan["broker1"] == {"name": "broker1", "container": "rampart-lab-broker1", "network": "rampart-lab",
                               "ip": "172.29.83.10", "extra": [("rampart-lab-wan", "172.29.80.10")],
                               "platform": "debian12", "hosts": {}, "managed": True}
    assert plan["vpn1"]["network"] == "rampart-lab-wan" and plan["vpn1"]["managed"]
    assert plan["client1"]["network"] == "rampart-lab"
    assert plan["outsider"] == {"name": "outsider", "container": "rampart-lab-outsider", "network": "rampart-lab-wan",
                                "ip": "172.29.80.40", "extra": [], "platform": "debian12", "hosts": {},
                                "managed": False}


def test_plan_refuses_an_undeclared_network():
    with pytest.raises(SystemExit, match="lab_networks does not define"):
        lab.plan(_inv(networks={"rampart-lab": "172.29.83.0/24"}))


def test_the_real_lab_inventory_describes_the_perimeter():
    inv = lab.inventory()
    names = {e["name"]: e for e in lab.plan(inv)}
    assert {"broker1", "client1", "vpn1", "outsider"} <= set(names)
    assert not names["outsider"]["managed"]
    assert names["broker1"]["extra"], "the broker needs the wan network too"


BROKER = {"name": "broker1", "container": "rampart-lab-broker1", "address": "172.29.83.10",
          "tls_server_name": "broker1", "listeners": [{"name": "p", "port": 8883, "authentication": "password"}]}


def test_vantage_points_are_described_and_old_keys_stay():
    points = [{"name": "outsider", "container": "rampart-lab-outsider", "role": "outsider", "can_reach_broker": False,
               "broker_address": "172.29.80.10"}]
    doc = describe.describe([BROKER], [], "/ca.crt", "/clients", vantage_points=points)
    assert doc["vantage_points"] == points
    assert {"schema", "brokers", "ca_file", "clients"} <= set(doc)
    assert "vantage_points" not in describe.describe([BROKER], [], "/ca.crt", "/clients")


def test_vantage_point_reachability_must_be_a_boolean():
    with pytest.raises(ValueError, match="can_reach_broker must be true or false"):
        describe.describe([BROKER], [], "/ca.crt", "/clients",
                          vantage_points=[{"name": "x", "container": "c", "role": "r", "can_reach_broker": "yes"}])


def test_a_vantage_point_that_names_its_broker_keeps_the_name():
    points = [{"name": "client-a", "container": "rampart-lab-client-a", "role": "other_site_client",
               "can_reach_broker": False, "broker_address": "172.29.91.10", "broker": "broker-b"}]
    doc = describe.describe([BROKER], [], "/ca.crt", "/clients", vantage_points=points)
    assert doc["vantage_points"] == points
