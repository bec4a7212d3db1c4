"""rampart.bridges: one mosquitto_bridges declaration on the edge gives the edge's connection section, the bridge's
identity and the core's ACL for it; validation refuses what would forward everything, reach '$' topics or leave the
link without verified TLS. tests/behaviour/test_bridge.py proves the same on two real brokers (Molecule default)."""

from __future__ import annotations

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import bridges, mosquitto, perimeter

BRIDGE = {"name": "core", "remote": "core1", "qos": 1,
          "out": [{"topic": "readings/#", "remote_prefix": "sites/a/"}],
          "in": [{"topic": "commands/#", "local_prefix": "", "remote_prefix": "sites/a/"}]}


def edge(**over) -> dict:
    base = {"inventory_hostname": "edge1", "mosquitto_bridges": [dict(BRIDGE)], "mosquitto_max_qos": 1,
            "mosquitto_debian12_source": "backports",
            "mosquitto_clients": [{"name": "sensor-01", "auth": "password"}]}
    base.update(over)
    return base


def one(**over) -> dict:
    return edge(mosquitto_bridges=[{**BRIDGE, **over}])


def test_a_valid_bridge_passes():
    assert bridges.validate(edge()) == []
    assert bridges.validate(edge(mosquitto_bridges=[])) == []


@pytest.mark.parametrize(("bridge", "says"), [
    ({"out": [{"topic": "#"}], "in": []}, "the local side's filter '#' starts with a wildcard"),
    ({"out": [{"topic": "#", "local_prefix": "a/"}], "in": []}, "the remote side's filter '#'"),
    ({"in": [{"topic": "+/x", "local_prefix": "c/"}], "out": []}, "remote side's filter '+/x'"),
    ({"out": [{"topic": "$SYS/#", "remote_prefix": "s/"}]}, "reaches the broker's '$' topics"),
    ({"out": [{"topic": "x", "remote_prefix": "$SYS/"}]}, 'remote_prefix "$SYS/" must not start with \'$\''),
    ({"out": [{"topic": "x", "remote_prefix": "sites/+/"}]}, "must not contain a wildcard"),
    ({"out": [{"topic": "x", "remote_prefix": "sites"}]}, "must end with '/'"),
    ({"out": [{"topic": "x", "remote_prefix": "a b/"}]}, "must not contain spaces"),
    ({"out": [{"topic": "a/#/b"}]}, "uses '#' other than as the whole last level"),
    ({"out": [{"topic": "a/%u"}]}, "contains a space, '%' or '\"'"),
    ({"out": [{"topic": '""', "remote_prefix": "s/"}]}, "contains a space, '%' or '\"'"),
    ({"out": [{"topic": "a", "prefix": "x/"}]}, "unknown key(s) ['prefix']"),
    ({"out": [], "in": []}, "has no rule in out or in"),
    ({"name": "Core_1"}, "mosquitto_bridges[0].name is \"Core_1\""),
    ({"name": "x" * 40}, "use 1-32 characters"),
    ({"remote": "edge1"}, "name the inventory host of the broker this one bridges to"),
    ({"remote": None}, "mosquitto_bridges[0].remote is null"),
    ({"qos": 2}, "qos 2 is above mosquitto_max_qos (1)"),
    ({"qos": 3}, "use 0, 1 or 2"),
    ({"revoked": "yes"}, "revoked must be true or false"),
    ({"bridge_insecure": True}, "there is no bridge_insecure"),
])
def test_each_bridge_rule_fires(bridge, says):
    problems = bridges.validate(one(**bridge))
    assert any(says in p for p in problems), problems


def test_names_are_unique_per_broker_and_apart_from_its_clients():
    twice = bridges.validate(edge(mosquitto_bridges=[dict(BRIDGE), dict(BRIDGE)]))
    assert any("'core' is used by another bridge" in p for p in twice), twice
    clash = bridges.validate(edge(mosquitto_clients=[{"name": "bridge-edge1.core"}]))
    assert any("client named 'bridge-edge1.core', the bridge's identity" in p for p in clash), clash
    long_host = bridges.validate(edge(inventory_hostname="h" * 60))
    # Hosts and names that would meet with a '-' stay apart.
    assert bridges.identity("a-b", "c") != bridges.identity("a", "b-c")
    assert any("longer than 64 characters" in p for p in long_host), long_host


def test_debian_12s_own_2_0_11_is_refused_with_bridges():
    problems = bridges.validate(edge(mosquitto_debian12_source="main"))
    assert any("CVE-2024-3935" in p for p in problems), problems
    assert bridges.validate(edge(mosquitto_debian12_source="main", mosquitto_bridges=[])) == []


def test_the_role_validation_includes_the_bridges():
    """filter mosquitto_problems = mosquitto.validate + bridges.validate + wiring: a bridge problem stops the run."""
    from ansible_collections.rampart.mqtt.plugins.filter.broker import mosquitto_problems
    problems = mosquitto_problems(edge(mosquitto_bridges=[{**BRIDGE, "out": [{"topic": "#"}]}]))
    assert any("a bridge forwards a subtree, never everything" in p for p in problems), problems


class Hostvars(dict):
    """What Ansible's hostvars gives a filter: host -> its variables."""


def hostvars(**extra):
    hv = Hostvars({
        "edge1": {"mosquitto_bridges": [dict(BRIDGE)], "mosquitto_bind_addresses": ["10.1.0.10"]},
        "edge2": {"mosquitto_bridges": [{**BRIDGE, "out": [{"topic": "readings/#", "remote_prefix": "sites/b/"}],
                                         "in": [], "revoked": True}],
                  "mosquitto_bind_addresses": ["10.2.0.10", "fd00::10"]},
        "core1": {"mosquitto_clients": [{"name": "dashboard"}],
                  "mosquitto_published": {"certificate_port": 8884, "tls_server_name": "core1.example"}},
    })
    for host, values in extra.items():
        hv[host] = {**hv[host], **values}
    return hv


def test_the_far_end_must_be_a_broker_of_this_run_that_takes_certificates():
    brokers, play = ["edge1", "core1"], ["edge1", "core1"]
    assert bridges.remote_problems("edge1", [BRIDGE], brokers, play, hostvars()) == []
    for args, says in [
        ((["edge1"], play, hostvars()), "is not a host of the group brokers"),
        ((brokers, ["edge1"], hostvars()), "is outside this run (--limit); include it"),
        ((brokers, play, hostvars(core1={"mosquitto_published": {"certificate_port": None}})),
         "has no listener with authentication: certificate"),
        ((brokers, play, hostvars(core1={"mosquitto_clients": [{"name": "bridge-edge1.core"}]})),
         "has a client named 'bridge-edge1.core'"),
    ]:
        problems = bridges.remote_problems("edge1", [BRIDGE], *args)
        assert any(says in p for p in problems), (says, problems)


def test_the_core_acl_allows_the_remote_side_of_each_rule_and_nothing_else():
    clients = bridges.acl_clients("core1", ["edge1", "edge2", "core1"], hostvars())
    assert clients == [
        {"name": "bridge-edge1.core", "auth": "certificate", "publish": ["sites/a/readings/#"],
         "subscribe": ["sites/a/commands/#"], "revoked": False},
        {"name": "bridge-edge2.core", "auth": "certificate", "publish": ["sites/b/readings/#"], "subscribe": [],
         "revoked": True},
    ]
    lines = mosquitto.acl_lines([{"name": "dashboard", "subscribe": ["sites/#"]}, *clients])
    # The revoked bridge gets no section at all; the active one exactly its two topics.
    assert lines[:3] == ["user bridge-edge1.core", "topic write sites/a/readings/#", "topic read sites/a/commands/#"]
    assert not any("bridge-edge2" in line for line in lines)
    assert bridges.acl_clients("edge1", ["edge1", "edge2", "core1"], hostvars()) == []


def test_identities_are_issued_for_active_bridges_and_revoked_for_revoked_ones():
    both = [dict(BRIDGE), {**BRIDGE, "name": "backup", "revoked": True}]
    assert bridges.identities("edge1", both) == ["bridge-edge1.core", "bridge-edge1.backup"]
    assert bridges.identities("edge1", both, revoked=False) == ["bridge-edge1.core"]
    assert bridges.identities("edge1", both, revoked=True) == ["bridge-edge1.backup"]
    assert bridges.identities("edge1", "not a list") == []


def test_the_core_firewall_admits_the_edges_that_bridge_to_it():
    assert bridges.sources("core1", ["edge1", "edge2", "core1"], hostvars()) == [
        "10.1.0.10/32", "10.2.0.10/32", "fd00::10/128"]
    # An edge on the core's own segment is inside the segment's network: one set element, not two (nft refuses
    # overlapping intervals).
    assert perimeter.cidrs_by_family(["10.1.0.0/24", "10.1.0.10/32", "10.9.0.1/32", "10.1.0.0/24"]) == {
        "v4": ["10.1.0.0/24", "10.9.0.1/32"], "v6": []}


def test_the_edge_section_verifies_the_core_and_maps_each_rule():
    files = {"ca": "/c/ca.pem", "cert": "/c/b.pem", "key": "/c/b.key"}
    lines = bridges.conf_lines("edge1", BRIDGE, {"address": "core1.example", "port": 8884}, files, "tlsv1.2")
    assert lines[:3] == ["connection core", "address core1.example:8884", "remote_clientid bridge-edge1.core"]
    for line in ("bridge_insecure false", "bridge_tls_version tlsv1.2", "bridge_certfile /c/b.pem",
                 "bridge_keyfile /c/b.key", "bridge_cafile /c/ca.pem", "cleansession false", "notifications false"):
        assert line in lines
    assert lines[-2:] == ['topic readings/# out 1 "" sites/a/', 'topic commands/# in 1 "" sites/a/']
    plain = bridges.conf_lines("edge1", {**BRIDGE, "out": [{"topic": "a/b"}], "in": [], "qos": 0},
                               {"address": "c", "port": 1}, files, "tlsv1.3")
    assert plain[-1] == "topic a/b out 0"


def test_a_revoked_bridge_is_left_out_of_the_edge():
    both = [dict(BRIDGE), {**BRIDGE, "name": "backup", "revoked": True}, {**BRIDGE, "name": "third", "revoked": False}]
    assert [b["name"] for b in bridges.active(both)] == ["core", "third"]


def test_bridges_from_brokers_outside_the_run_are_checked_on_the_broker_they_dial():
    """Under --limit core1, edge1's declaration still writes core1's ACL and firewall: core1 checks it."""
    bad = hostvars(edge1={"mosquitto_bridges": [{**BRIDGE, "out": [{"topic": "#"}]}],
                          "mosquitto_bind_addresses": ["not-an-ip"]})
    problems = bridges.incoming_problems("core1", ["edge1", "edge2", "core1"], ["core1"], bad)
    assert any(p.startswith("edge1 (outside this run) bridges to core1: mosquitto_bridges[0].out[0]: the local "
                            "side's filter '#'") for p in problems), problems
    assert any("'not-an-ip', not an IP address" in p for p in problems), problems
    # In the run, edge1's own validation reports it (once); a valid declaration outside the run passes.
    assert bridges.incoming_problems("core1", ["edge1", "core1"], ["core1", "edge1"], bad) == []
    assert bridges.incoming_problems("core1", ["edge1", "edge2", "core1"], ["core1"], hostvars()) == []


def test_the_description_lists_each_bridge_with_its_identity_files_and_filters():
    from ansible_collections.rampart.mqtt.plugins.module_utils import describe
    broker = {"name": "edge1", "container": "c", "address": "10.1.0.10", "tls_server_name": "edge1",
              "listeners": [{"authentication": "certificate", "port": 8884}], "bridges": [dict(BRIDGE)]}
    [row] = describe.describe([broker], [], "/ca.pem", "/pki/clients")["bridges"]
    assert row == {"name": "core", "edge": "edge1", "remote": "core1", "identity": "bridge-edge1.core", "qos": 1,
                   "certfile": "/pki/clients/bridge-edge1.core/chain.pem",
                   "keyfile": "/pki/clients/bridge-edge1.core/key.pem", "expect": "allowed",
                   "out": [{"local": "readings/#", "remote": "sites/a/readings/#"}],
                   "in": [{"local": "commands/#", "remote": "sites/a/commands/#"}]}
    assert "bridges" not in describe.describe([{**broker, "bridges": []}], [], "/ca.pem", "/pki/clients")
