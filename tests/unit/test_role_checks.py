"""The roles' cross-field checks (each role's assert.yml is one task over these functions) and the wiring's.

Each function gets a valid baseline (which must pass) and one change per rule (which must fail, naming the
variable the operator wrote and the rule). tests/inventory proves the same messages end to end through site.yml.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.rampart.mqtt.plugins.module_utils import (
    fail2ban,
    logship,
    mosquitto,
    perimeter,
    values,
    wiring,
)
from ansible_collections.rampart.mqtt.plugins.module_utils.pki import settings as pki_settings

ROLES = Path(__file__).resolve().parents[2] / "roles"


def defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


def changed(base: dict, **over) -> dict:
    return {**base, **over}


# ------------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize(("raw", "expected"), [(5, 5), ("12", 12), ("3.0", 3), ("x", 0), (None, 0), (True, 1)])
def test_as_int_reads_like_jinjas_int_filter(raw, expected):
    assert values.as_int(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [(True, True), ("yes", True), ("False", False), ("no", False),
                                               (0, False), ("", False)])
def test_as_bool_reads_like_ansibles_bool_filter(raw, expected):
    assert values.as_bool(raw) is expected


# ------------------------------------------------------------------------------------------------- log_collector
COLLECTOR = {
    **{k: v for k, v in defaults("log_collector").items() if k.startswith("log_collector_")},
    "log_collector_bind_address": "172.29.83.30", "log_collector_tls_server_name": "logs.lab.internal",
    "log_collector_permitted_peers": ["log-broker1", "log-*"],
    "log_collector_senders": [{"name": "broker1", "address": "172.29.83.10"},
                              {"name": "client1", "address": "fd00::20"}],
    "log_collector_tls_ca_src": "/p/ca/chain.pem", "log_collector_tls_cert_src": "/p/c.pem",
    "log_collector_tls_key_src": "/p/k.pem",
}


def test_a_valid_collector_passes():
    assert logship.collector_problems(COLLECTOR) == []
    pinned = ["SHA1:" + ":".join(["0A"] * 20), "SHA1:" + ":".join(["F9"] * 20)]
    assert logship.collector_problems({**COLLECTOR, "log_collector_permitted_fingerprints": pinned}) == []
    assert logship.collector_problems({**COLLECTOR, "log_collector_permitted_fingerprints": []}) == []


@pytest.mark.parametrize(("over", "says"), [
    ({"log_collector_bind_address": "0.0.0.0"}, "log_collector_bind_address '0.0.0.0' must be one literal IP"),  # noqa: S104
    ({"log_collector_bind_address": "::ffff:0.0.0.0"}, "meaning every address"),
    ({"log_collector_bind_address": "logs.example"}, "must be one literal IP address"),
    ({"log_collector_port": 0}, "log_collector_port (0) must be a port between 1 and 65535"),
    ({"log_collector_port": "70000"}, "log_collector_port (70000) must be a port"),
    ({"log_collector_permitted_peers": []}, "log_collector_permitted_peers ([]) must list at least one"),
    ({"log_collector_permitted_peers": ["log-a", "bad name"]}, "each of letters, digits"),
    # Review L5: the pins are SHA-1 fingerprints as librelp reads them (SHA-256 ones it silently never matches).
    ({"log_collector_permitted_fingerprints": ["SHA256:" + ":".join(["AB"] * 32)]}, "must be a list of SHA-1"),
    ({"log_collector_permitted_fingerprints": ["SHA1:" + ":".join(["ab"] * 20)]}, "20 upper-case hex pairs"),
    ({"log_collector_permitted_fingerprints": "SHA1:" + ":".join(["AB"] * 20)}, "must be a list"),
    ({"log_collector_file_mode": "0644"}, "log_collector_file_mode (0644) and log_collector_dir_mode"),
    ({"log_collector_dir_mode": "0755"}, "give others nothing"),
    ({"log_collector_dir": "var/log/x"}, "an absolute path of printable ASCII"),
    ({"log_collector_dir": "/var/log/a b"}, "without spaces or line breaks"),
    ({"log_collector_retention_days": 0}, "log_collector_retention_days (0) must be between 1 and 3650"),
    ({"log_collector_retention_days": 3651}, "must be between 1 and 3650"),
    ({"log_collector_tls_server_name": "172.29.83.30"}, 'log_collector_tls_server_name "172.29.83.30" must be a DNS'),
    ({"log_collector_tls_key_src": ""}, "log_collector_tls_ca_src, log_collector_tls_cert_src and"),
    # review H1: the collector files a line under the sender its connection came from
    ({"log_collector_senders": [{"name": "broker1", "address": "broker1.example"}]},
     "host broker1: the address its logs come from, 'broker1.example', is not one literal IP address; set "
     "logs_source_address on broker1"),
    ({"log_collector_senders": [{"name": "a", "address": "0.0.0.0"}]}, "is not one literal IP address"),  # noqa: S104
    ({"log_collector_senders": [{"name": "a", "address": "10.0.0.1"}, {"name": "b", "address": "10.0.0.1"}]},
     "hosts a and b would send their logs from the same address 10.0.0.1"),
    ({"log_collector_senders": [{"name": "a", "address": "10.0.0.1"}, {"name": "a", "address": "10.0.0.2"}]},
     "log_collector_senders lists host a more than once"),
    ({"log_collector_senders": [{"name": "a\" \"b", "address": "10.0.0.1"}]}, "must be an inventory host name"),
    ({"log_collector_senders": [{"name": "unknown-address", "address": "10.0.0.1"}]}, "other than unknown-address"),
    ({"log_collector_max_file_size": "512k"},
     "log_collector_max_file_size ('512k') must be an rsyslog size of at least 1m"),
    ({"log_collector_max_file_size": "lots"}, "log_collector_max_file_size ('lots')"),
    ({"log_collector_quarantine_dir": "/var/log/rampart/quarantine"}, "outside log_collector_dir (/var/log/rampart)"),
    ({"log_collector_quarantine_dir": "/var/log"}, "outside log_collector_dir"),
    ({"log_collector_quarantine_dir": "quarantine"}, "log_collector_quarantine_dir (quarantine) must be an absolute"),
])
def test_each_collector_rule_fires_alone(over, says):
    found = logship.collector_problems(changed(COLLECTOR, **over))
    assert len(found) == 1 and says in found[0], found


# ------------------------------------------------------------------------------------------------- log_shipping
SHIPPING = {
    **{k: v for k, v in defaults("log_shipping").items() if k.startswith("log_shipping_")},
    "log_shipping_targets": [{"host": "logs1", "address": "172.29.83.30", "name": "logs", "port": 2514}],
    "log_shipping_source_address": "172.29.83.10", "log_shipping_hostname": "broker1",
    "log_shipping_tls_ca_src": "/p/ca.pem", "log_shipping_tls_cert_src": "/p/c.pem",
    "log_shipping_tls_key_src": "/p/k.pem",
}


def test_valid_shipping_passes():
    assert logship.shipping_problems(SHIPPING) == []


@pytest.mark.parametrize(("over", "says"), [
    ({"log_shipping_targets": [{"host": "logs1", "address": "logs", "port": 2514}]},
     "log_shipping_targets[0].address 'logs' must be a literal IP address"),
    ({"log_shipping_targets": [{"host": "logs1", "address": "10.0.0.1", "port": 0}]},
     "log_shipping_targets[0].port (0) a port between 1 and 65535 (set log_collector_bind_address"),
    ({"log_shipping_targets": [{"host": "l", "address": "10.0.0.1", "port": 1}] * 2},
     "names a collector host more than once"),
    ({"log_shipping_queue_max_disk_space": "lots"}, "log_shipping_queue_max_disk_space ('lots') and"),
    ({"log_shipping_source_address": "broker1.example"}, "log_shipping_source_address 'broker1.example' must be one "
                                                         "literal IP address of this host (set logs_source_address"),
    ({"log_shipping_source_address": "::"}, "log_shipping_source_address '::' must be one literal IP address"),
    ({"log_shipping_hostname": "broker1 evil"}, 'log_shipping_hostname "broker1 evil" must be a host name'),
    ({"log_shipping_queue_max_file_size": "1g", "log_shipping_queue_max_disk_space": "512m"},
     "log_shipping_queue_max_file_size (1g) must be below log_shipping_queue_max_disk_space (512m)"),
    ({"log_shipping_queue_max_file_size": "512m", "log_shipping_queue_max_disk_space": "512m"}, "must be below"),
    ({"log_shipping_queue_size": 99}, "log_shipping_queue_size (99) must be at least 100"),
    ({"log_shipping_queue_checkpoint_interval": 0}, "log_shipping_queue_checkpoint_interval (0) at least 1"),
    ({"log_shipping_retry_interval": 10, "log_shipping_retry_interval_max": 5},
     "log_shipping_retry_interval_max (5) not below it"),
    ({"log_shipping_tls_cert_src": ""}, "log_shipping_tls_ca_src, log_shipping_tls_cert_src and"),
])
def test_each_shipping_rule_fires_alone(over, says):
    found = logship.shipping_problems(changed(SHIPPING, **over))
    assert len(found) == 1 and says in found[0], found


# ------------------------------------------------------------------------------------------------- fail2ban
FAIL2BAN = {**{k: v for k, v in defaults("fail2ban").items() if k.startswith("fail2ban_")}, "fail2ban_ports": [8883]}


def test_valid_fail2ban_passes():
    assert fail2ban.problems(FAIL2BAN) == []


@pytest.mark.parametrize(("over", "says"), [
    ({"fail2ban_bantime": -1}, "fail2ban_bantime (-1), fail2ban_mosquitto_auth_findtime"),
    ({"fail2ban_mosquitto_flood_findtime": 0}, "must be at least 1 second"),
    ({"fail2ban_mosquitto_auth_maxretry": 1}, "fail2ban_mosquitto_auth_maxretry (1) must be at least 2"),
    ({"fail2ban_mosquitto_auth_maxretry": 5, "fail2ban_mosquitto_flood_maxretry": 5},
     "fail2ban_mosquitto_flood_maxretry (5) must be above fail2ban_mosquitto_auth_maxretry (5)"),
    ({"fail2ban_ports": []}, "fail2ban_ports ([]) must list TCP ports"),
    ({"fail2ban_ports": [8883, 65536]}, "fail2ban_ports ([8883, 65536]) must list TCP ports between 1 and 65535"),
    ({"fail2ban_ignore_ips": ["monitor.example"]}, "fail2ban_ignore_ips (['monitor.example']) must hold IP"),
    ({"fail2ban_wired_ignore_ips": ["a.name"]}, "So must the wired ones (['a.name']"),
])
def test_each_fail2ban_rule_fires_alone(over, says):
    found = fail2ban.problems(changed(FAIL2BAN, **over))
    assert len(found) == 1 and says in found[0], found


# ------------------------------------------------------------------------------------------------- pki
PKI = {
    **{k: v for k, v in defaults("pki").items() if k.startswith("pki_")},
    "pki_dir": "/srv/pki", "pki_ca_key_passphrase": "a long and secret passphrase", "pki_disposable": False,
    "pki_client_certificates": ["device-1", "log-broker1"], "pki_revoked_clients": ["device-0"],
    "pki_inventory_clients": ["device-0", "device-1", "log-broker1", "log-client1"],
    "pki_server_certificates": [{"name": "mqtt-broker1", "dns_names": ["broker.lab"], "ip_addresses": ["10.0.0.1"]}],
}


def test_valid_pki_settings_pass():
    assert pki_settings.problems(PKI) == []


@pytest.mark.parametrize(("over", "says"), [
    ({"pki_ca_key_passphrase": ""}, "pki_ca_key_passphrase"),
    ({"pki_renew_before_days": 400}, "pki_renew_before_days (400) must be >= 0 and below pki_cert_valid_days"),
    ({"pki_cert_valid_days": 0}, "which must be > 0"),
    ({"pki_intermediate_generation": 0}, "pki_intermediate_generation (0) must be >= 1"),
    ({"pki_intermediate_valid_days": 10}, "pki_intermediate_valid_days (10) must lie above pki_cert_valid_days"),
    ({"pki_crl_renew_before_days": 400}, "pki_crl_renew_before_days (400) must be >= 0 and below pki_crl_valid_days"),
    ({"pki_ca_common_name": " "}, 'pki_ca_common_name must be 1-64 characters (X.509 limit), got " "'),
    ({"pki_ca_common_name": "x" * 65}, "pki_ca_common_name must be 1-64 characters"),
    ({"pki_authority": "ca"}, 'pki_authority must be empty or 1-32 characters from a-z 0-9 -'),
    ({"pki_authority": "../up"}, 'got "../up"'),
    ({"pki_authority": "infrastructure", "pki_ca_common_name": "x" * 50},
     "with the authority's suffix: \"" + "x" * 50 + " (infrastructure)\" is 67"),
    ({"pki_client_certificates": ["ok", "bad/name"], "pki_inventory_clients": ["ok"]},
     'pki_client_certificates contains invalid names ["bad/name"]'),
    ({"pki_client_certificates": ["a", "a"], "pki_inventory_clients": ["a"]},
     "pki_client_certificates lists a name more than once"),
    ({"pki_revoked_clients": ["x\n"]}, "pki_revoked_clients contains invalid names"),
    ({"pki_inventory_clients": ["device-1"]},
     'pki_inventory_clients does not name ["log-broker1"] from pki_client_certificates'),
    ({"pki_inventory_clients": ["device-1", "log-broker1", "../x"]}, 'pki_inventory_clients contains invalid names'),
    ({"pki_server_certificates": [{"name": "s", "dns_names": ["10.0.0.1"]}]},
     'pki_server_certificates[0] ("s"): the name must be'),
    ({"pki_server_certificates": [{"name": "s"}]}, "at least one in all; got dns_names [], ip_addresses []"),
    ({"pki_server_certificates": [{"name": "s", "ip_addresses": ["1.2.3.4"]}] * 2},
     "pki_server_certificates lists a name more than once"),
])
def test_each_pki_rule_fires_alone(over, says):
    found = pki_settings.problems(changed(PKI, **over))
    assert len(found) == 1 and says in found[0], found


def test_the_inventory_list_is_read_only_when_retirement_is_on():
    assert pki_settings.problems(changed(PKI, pki_retire_unlisted_clients=False, pki_inventory_clients=[])) == []


def test_a_host_without_its_own_server_certificate_has_no_server_problems():
    assert pki_settings.server_problems("bad host", {"pki_server_certificate": "false"}) == []


@pytest.mark.parametrize(("host", "over", "says"), [
    ("broker 1", {}, 'inventory_hostname "broker 1" names the server certificate'),
    ("broker1", {"pki_server_dns_names": ["10.0.0.1"]}, 'broker1: pki_server_dns_names must hold DNS names'),
    ("broker1", {"pki_server_ip_addresses": ["broker"]}, 'invalid IP addresses: ["broker"]'),
    ("broker1", {"pki_server_dns_names": [], "pki_server_ip_addresses": []}, "at least one in all"),
])
def test_each_server_certificate_rule_fires_alone(host, over, says):
    base = {"pki_server_certificate": True, "pki_server_dns_names": ["broker.lab"], "pki_server_ip_addresses": []}
    assert pki_settings.server_problems("broker1", base) == []
    found = pki_settings.server_problems(host, changed(base, **over))
    assert len(found) == 1 and says in found[0], found


# ------------------------------------------------------------------------------------------------- mosquitto
def test_the_broker_wiring_needs_a_dns_name_and_three_files():
    good = {"mosquitto_tls_server_name": "broker.lab", "mosquitto_tls_ca_src": "/p/ca", "mosquitto_tls_cert_src": "/c",
            "mosquitto_tls_key_src": "/k"}
    assert mosquitto.wiring_problems(good) == []
    [found] = mosquitto.wiring_problems(changed(good, mosquitto_tls_server_name="10.0.0.1"))
    assert 'mosquitto_tls_server_name "10.0.0.1" must be a DNS name' in found
    [found] = mosquitto.wiring_problems(changed(good, mosquitto_tls_key_src=""))
    assert 'must name files on the control node' in found and '["/p/ca", "/c", ""]' in found


def test_a_client_host_names_only_clients_of_the_inventory():
    clients = [{"name": "device-cert-01"}, {"name": "sensor-01"}]
    assert mosquitto.client_host_problems(["device-cert-01"], clients) == []
    [found] = mosquitto.client_host_problems(["device-cert-01", "device-cert-1", "x"], clients)
    assert found.startswith('mqtt_client_names[1] ("device-cert-1"), mqtt_client_names[2] ("x"): no entry of')


# ------------------------------------------------------------------------------------------------- wireguard
def test_a_managed_pair_without_any_endpoint_cannot_handshake():
    base = {"wireguard_interface": "wg0", "wireguard_port": 51820, "wireguard_addresses": ["10.83.0.1/24"],
            "wireguard_endpoint": "", "wireguard_peers": [{"host": "vpn1"}], "inventory_hostname": "broker1",
            "managed_peers": {"vpn1": {"wireguard_addresses": ["10.83.0.2/24"], "wireguard_endpoint": ""}}}
    found = perimeter.wireguard_problems(base, ["broker1", "vpn1"])
    assert found == ["wireguard_peers: neither broker1 nor its peer vpn1 has wireguard_endpoint set, so neither side "
                     "can start the handshake; set wireguard_endpoint on the hub."]
    assert perimeter.wireguard_problems(changed(base, wireguard_endpoint="10.0.0.1:51820"), ["broker1", "vpn1"]) == []
    hub = {"vpn1": {"wireguard_addresses": ["10.83.0.2/24"], "wireguard_endpoint": "172.29.80.10:51820"}}
    assert perimeter.wireguard_problems(changed(base, managed_peers=hub), ["broker1", "vpn1"]) == []


# ------------------------------------------------------------------------------------------------- wiring
KNOBS = {"perimeter_mqtt_rate": 60, "perimeter_mqtt_burst": "30", "perimeter_mqtt_max_connections": 100,
         "perimeter_mqtt_extra_sources": [], "perimeter_wireguard_sources": ["10.0.0.0/8"]}
WIRING = {"host": "broker1", "groups": {"all": ["broker1", "logs1"], "brokers": ["broker1"], "perimeter": ["broker1"],
                                        "wireguard": ["broker1"], "collectors": ["logs1"]},
          "play_hosts": ["broker1", "logs1"], "rampart_perimeter": True, "perimeter": KNOBS, "senders": ["broker1"],
          "mosquitto_clients": [{"name": "device-1", "auth": "certificate"}, {"name": "log-book"}]}


def test_valid_wiring_passes():
    assert wiring.problems(WIRING) == []


@pytest.mark.parametrize(("over", "says"), [
    ({"groups": {**WIRING["groups"], "perimeter": []}}, "broker1 is in brokers but not in perimeter"),
    ({"perimeter": {**KNOBS, "perimeter_mqtt_rate": -5}}, "perimeter_mqtt_rate (-5) must be an integer >= 0"),
    ({"perimeter": {**KNOBS, "perimeter_mqtt_burst": 0}}, 'perimeter_mqtt_burst (0) must be an integer >= 1'),
    ({"perimeter": {**KNOBS, "perimeter_mqtt_max_connections": "many"}},
     'perimeter_mqtt_max_connections ("many") must be an integer >= 0'),
    ({"perimeter": {**KNOBS, "perimeter_mqtt_extra_sources": ["office"]}},
     'perimeter_mqtt_extra_sources (["office"]) must be a list of networks in CIDR notation'),
    ({"perimeter": {**KNOBS, "perimeter_wireguard_sources": "10.0.0.0/8"}},
     "perimeter_wireguard_sources (\"10.0.0.0/8\") must be a list"),
    ({"play_hosts": ["broker1"]}, 'log_shipping_targets: the collectors ["logs1"] are outside this run (--limit)'),
    ({"mosquitto_clients": [{"name": "log-broker1", "auth": "certificate"}]},
     'mosquitto_clients[0].name "log-broker1" is the name of a log sender\'s certificate'),
    ({"mosquitto_clients": [{"name": "log-broker1"}]},
     'mosquitto_clients[0].name "log-broker1" is the name of a log sender\'s certificate'),
])
def test_each_wiring_rule_fires_alone(over, says):
    found = wiring.problems(changed(WIRING, **over))
    assert len(found) == 1 and says in found[0], found


def test_a_broker_may_be_outside_the_perimeter_when_the_inventory_says_so():
    outside = changed(WIRING, groups={**WIRING["groups"], "perimeter": []}, rampart_perimeter="false")
    assert wiring.problems(outside) == []


def test_the_perimeter_knobs_are_checked_only_on_perimeter_hosts():
    bad = {**KNOBS, "perimeter_mqtt_rate": -5}
    assert wiring.problems(changed(WIRING, host="logs1", perimeter=bad, senders=[])) == []


def test_a_throw_away_test_deployment_may_remount_proc_sys_and_export_into_the_checkout(tmp_path):
    (tmp_path / ".git").mkdir()
    lab = changed(WIRING, pki_disposable=True, vlan_remount_proc_sys=True, wireguard_export_dir=str(tmp_path / "wg"))
    assert wiring.problems(lab) == []


@pytest.mark.parametrize(("over", "says"), [
    ({"vlan_remount_proc_sys": "yes"}, "vlan_remount_proc_sys is true outside a throw-away test deployment"),
    ({"wireguard_export_dir": "exports"}, "wireguard_export_dir ('exports') is relative"),
    ({"wireguard_export_dir": "CHECKOUT/wg"}, "is inside the git checkout"),
])
def test_a_real_deployment_refuses_what_only_a_lab_may_do(tmp_path, over, says):
    (tmp_path / ".git").mkdir()
    over = {k: v.replace("CHECKOUT", str(tmp_path)) for k, v in over.items()}
    assert wiring.problems(changed(WIRING, pki_disposable=False, wireguard_export_dir="/srv/wg-exports")) == []
    found = wiring.problems(changed(WIRING, pki_disposable=False, **over))
    assert len(found) == 1 and says in found[0], found


def test_a_malformed_client_is_left_to_the_argument_spec_not_a_crash():
    clients = ["sensor-01", {"name": "log-broker1", "auth": "certificate"}]
    [found] = wiring.problems(changed(WIRING, mosquitto_clients=clients))
    assert found.startswith('mosquitto_clients[1].name "log-broker1"')
    assert mosquitto.client_host_problems(["a"], ["a", {"name": "b"}]) == [
        'mqtt_client_names[0] ("a"): no entry of mosquitto_clients has that name; add the client to mosquitto_clients '
        "or correct the name (a typo would leave the host without its credentials, silently)."]


def test_the_lab_only_settings_are_checked_only_where_their_roles_run():
    elsewhere = changed(WIRING, host="logs1", senders=[], pki_disposable=False, vlan_remount_proc_sys=True,
                        wireguard_export_dir="exports")
    assert wiring.problems(elsewhere) == []
