"""Security profiles: what high refuses, and that basic and enhanced add nothing to the roles' own checks."""

from __future__ import annotations

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import profiles

HIGH = {"is_broker": True, "mosquitto_tls_version": "tlsv1.3", "has_collector": True, "mqtt_from_segment": False,
        "mosquitto_listeners": [{"name": "certificate", "port": 8884, "authentication": "certificate"}],
        "mosquitto_clients": [{"name": "dev-1", "auth": "certificate"}]}


def test_a_host_that_meets_high():
    assert profiles.problems("high", HIGH) == []


@pytest.mark.parametrize(("change", "names"), [
    ({"mosquitto_tls_version": "tlsv1.2"}, "mosquitto_tls_version is 'tlsv1.2'"),
    ({"mosquitto_listeners": [{"port": 8883, "authentication": "password"}]}, "mosquitto_listeners has a password"),
    ({"mosquitto_clients": [{"name": "sensor-01"}]}, "mosquitto_clients ['sensor-01'] use passwords"),
    ({"mqtt_from_segment": True}, "perimeter_mqtt_from_segment is true"),
    ({"has_collector": False}, "no collectors group"),
])
def test_high_refuses_each_weaker_setting(change, names):
    (message,) = profiles.problems("high", {**HIGH, **change})
    assert names in message and message.startswith("rampart_profile high: ")
    assert message.endswith("Remove the override, or declare a lower profile.")


@pytest.mark.parametrize("profile", ["basic", "enhanced"])
def test_lower_profiles_add_no_requirement(profile):
    weak = {**HIGH, "mosquitto_tls_version": "tlsv1.2", "mosquitto_clients": [{"name": "s"}], "has_collector": False}
    assert profiles.problems(profile, weak) == []


def test_unknown_profile_and_non_brokers():
    assert "choose one of basic, enhanced, high" in profiles.problems("paranoid", {})[0]
    assert profiles.problems("high", {"is_broker": False}) == []


def test_unset_role_variables_follow_the_profile():
    assert profiles.problems("high", {**HIGH, "mosquitto_tls_version": None, "mosquitto_listeners": None}) == []
