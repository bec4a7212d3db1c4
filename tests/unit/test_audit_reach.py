"""The audit's NET-REACH (rampart.audit.posture.reach): a vantage point that names its broker is probed against that
broker only (a lab of several sites, rampart.topology); one that names none, against every broker."""

from __future__ import annotations

from rampart.audit import posture

BROKER = {"name": "broker-a", "address": "172.29.90.10", "listeners": {"password": 8883, "certificate": 8884}}


def test_points_of_another_broker_are_not_probed_and_a_wrong_reach_fails(monkeypatch):
    probed = []

    def fake(container, address, port):
        probed.append((container, address, port))
        return container == "c-a"

    monkeypatch.setattr(posture, "_reaches", fake)
    points = [{"name": "a", "container": "c-a", "role": "segment_client", "can_reach_broker": True,
               "broker_address": "172.29.90.10", "broker": "broker-a"},
              {"name": "a", "container": "c-a", "role": "other_site_client", "can_reach_broker": False,
               "broker_address": "172.29.91.10", "broker": "broker-b"},
              {"name": "o", "container": "c-o", "role": "outsider", "can_reach_broker": False,
               "broker_address": "172.29.93.11"}]
    finding = posture.reach("broker-a", BROKER, points)
    assert finding.status == "pass", finding
    assert sorted(probed) == [("c-a", "172.29.90.10", 8883), ("c-a", "172.29.90.10", 8884),
                              ("c-o", "172.29.93.11", 8883), ("c-o", "172.29.93.11", 8884)]
    points[2]["can_reach_broker"] = True
    assert posture.reach("broker-a", BROKER, points).status == "fail"
