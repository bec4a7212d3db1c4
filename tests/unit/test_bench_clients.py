"""scripts/bench-clients' inventories: the lab's, with N valid made-up clients more (the runs are in scripts/test)."""

from __future__ import annotations

import yaml
from ansible_collections.rampart.mqtt.plugins.module_utils import mosquitto

from rampart import bench_clients
from tests.support import REPO

LISTENERS = [{"name": "password", "port": 8883, "authentication": "password"},
             {"name": "certificate", "port": 8884, "authentication": "certificate"}]


def test_the_fleet_mixes_certificate_and_password_clients_the_role_accepts():
    clients = bench_clients.fleet(100)
    assert len({c["name"] for c in clients}) == 100
    assert sum(c["auth"] == "certificate" for c in clients) == 10
    assert all("password" not in c for c in clients if c["auth"] == "certificate")
    problems = mosquitto.validate({"mosquitto_bind_addresses": ["10.0.0.1"], "mosquitto_listeners": LISTENERS,
                                   "mosquitto_clients": clients})
    assert [p for p in problems if p.startswith("mosquitto_clients")] == []
    assert not {c["name"] for c in clients} & {c["name"] for c in bench_clients.fleet(10)}


def test_the_inventory_is_the_labs_with_the_fleet_and_finds_the_labs_state(tmp_path):
    inv = bench_clients.inventory(REPO, tmp_path, 20)
    assert (inv / ".." / ".." / ".lab").resolve() == (REPO / ".lab").resolve()
    lab = yaml.safe_load((REPO / "inventories/lab" / bench_clients.CLIENTS_FILE).read_text())["mosquitto_clients"]
    written = yaml.safe_load((inv / bench_clients.CLIENTS_FILE).read_text())["mosquitto_clients"]
    assert written[:len(lab)] == lab and len(written) == len(lab) + 20
    assert (inv / "hosts.yml").read_text() == (REPO / "inventories/lab/hosts.yml").read_text()
