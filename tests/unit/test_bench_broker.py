"""scripts/bench-broker's clients and files (the runs against the lab's broker are in scripts/test's lab step)."""

from __future__ import annotations

import json
import stat

from ansible_collections.rampart.mqtt.plugins.module_utils import mosquitto

from rampart import bench_broker
from tests.unit.test_bench_clients import LISTENERS


def test_each_pair_is_a_publisher_and_a_subscriber_the_role_accepts_with_one_topic_between_them():
    clients, pairs = bench_broker.bench_clients_for(12, "r1")
    assert len(clients) == 24 and len({c["name"] for c in clients}) == 24
    problems = mosquitto.validate({"mosquitto_bind_addresses": ["10.0.0.1"], "mosquitto_listeners": LISTENERS,
                                   "mosquitto_clients": clients})
    assert [p for p in problems if p.startswith("mosquitto_clients")] == []
    by_name = {c["name"]: c for c in clients}
    for pair in pairs:
        publisher, subscriber = by_name[pair["publisher"]], by_name[pair["subscriber"]]
        assert publisher["publish"] == ["bench/%u"] and "subscribe" not in publisher
        assert subscriber["subscribe"] == [pair["topic"]] == [f"bench/{publisher['name']}"]
        assert "publish" not in subscriber
        assert (pair["publisher_password"], pair["subscriber_password"]) == (publisher["password"],
                                                                             subscriber["password"])
    assert len({c["password"] for c in clients}) == 24


def test_the_plain_brokers_pairs_carry_no_password_and_the_hardened_ones_are_private(tmp_path):
    _, pairs = bench_broker.bench_clients_for(3, "r1")
    files = bench_broker.pair_files(tmp_path, pairs)
    assert stat.S_IMODE(files["hardened"].stat().st_mode) == 0o600
    assert json.loads(files["hardened"].read_text()) == pairs
    assert all("password" not in k for p in json.loads(files["plain"].read_text()) for k in p)
