"""Bad inventories stop site.yml in the validation play, before any host is contacted.

Each case copies inventories/lab, makes ONE change (an edit of a group_vars file, or a
group_vars/<group>/zz_case.yml that overrides a variable; it sorts last, so it wins inside its group),
and runs the real playbooks/site.yml. Every host points at 127.0.0.1:9, so a host that was reached
would show up as UNREACHABLE. The positive controls prove the unchanged copy is valid, so each
negative case fails because of its one change, and that the "contacted a host" check can fire.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rampart import topology
from tests.inventory.conftest import InventoryCopy, _pin_hosts
from tests.support import INVENTORIES, REPO

VALIDATION_PLAY = "Validate the inventory before touching any host"
# lab clients: [0] sensor-01 (password), [1] dashboard (password, read-only),
# [2] device-cert-01 (certificate), [3] ops-admin (password, admin).
CLIENTS = "group_vars/all/clients.yml"
Mutation = Callable[[Any], None]  # takes the conftest InventoryCopy


def edit_clients(change: Callable[[list[dict]], object]) -> Mutation:
    """Edit mosquitto_clients in the lab's group_vars/all/clients.yml."""

    def apply(inv) -> None:
        data = inv.load(CLIENTS)
        change(data["mosquitto_clients"])
        inv.dump(CLIENTS, data)

    return apply


def override(group: str = "all", **variables: object) -> Mutation:
    """Add group_vars/<group>/zz_case.yml (variables in group_vars/brokers beat those in group_vars/all)."""

    def apply(inv) -> None:
        inv.dump(f"group_vars/{group}/zz_case.yml", variables)

    return apply


def with_collector(group: str = "collectors", **variables: object) -> Mutation:
    """Add a collectors group with one host (pinned like the others) and, optionally, variables for a group."""

    def apply(inv) -> None:
        hosts = inv.load("hosts.yml")
        hosts["all"]["children"]["collectors"] = {"hosts": {"logs1": {
            "ansible_host": "127.0.0.1", "ansible_port": 9, "pki_dir": str(inv.pki_dir)}}}
        inv.dump("hosts.yml", hosts)
        if variables:
            inv.dump(f"group_vars/{group}/zz_case.yml", variables)

    return apply


def with_log_sources(**addresses: str) -> Mutation:
    """Add the collector (see with_collector) and give hosts their logs_source_address in hosts.yml (where the copy
    keeps each host's own, which beats group_vars)."""

    def apply(inv) -> None:
        with_collector()(inv)
        hosts = inv.load("hosts.yml")
        for group in hosts["all"]["children"].values():
            for name, host_vars in (group.get("hosts") or {}).items():
                if name in addresses and host_vars is not None:
                    host_vars["logs_source_address"] = addresses[name]
        inv.dump("hosts.yml", hosts)

    return apply


def outside_the_perimeter(apply_too: dict | None = None) -> Mutation:
    """Take broker1 out of the perimeter group (and optionally add variables for all)."""

    def apply(inv) -> None:
        hosts = inv.load("hosts.yml")
        hosts["all"]["children"]["perimeter"] = {"hosts": {}}
        inv.dump("hosts.yml", hosts)
        if apply_too:
            inv.dump("group_vars/all/zz_case.yml", apply_too)

    return apply


def with_perimeter(where: str = "group_vars/perimeter", **variables: object) -> Mutation:
    """Make sure the copy has the perimeter (broker1 in perimeter + wireguard, a VPN peer vpn1), then override.

    ``where`` is group_vars/<group> or host_vars/<host> (a host's WireGuard settings are per host). When
    the lab inventory already defines the perimeter groups they are kept as they are; otherwise a minimal
    valid perimeter is added (vpn1 pinned like the other hosts).
    """

    def apply(inv) -> None:
        hosts = inv.load("hosts.yml")
        children = hosts["all"]["children"]
        if "perimeter" not in children:
            children["perimeter"] = {"hosts": {"broker1": None}}
            inv.dump("group_vars/perimeter/perimeter.yml", {
                "vlan_mode": "untagged", "vlan_interface": "eth0", "vlan_address": "172.29.83.10/24",
                "nftables_management_cidrs": ["172.29.83.1/32"]})
        if "wireguard" not in children:
            children["wireguard"] = {"hosts": {"broker1": None, "vpn1": {
                "ansible_host": "127.0.0.1", "ansible_port": 9, "pki_dir": str(inv.pki_dir)}}}
            inv.dump("host_vars/broker1/wireguard.yml", {
                "wireguard_addresses": ["10.83.0.1/24"], "wireguard_endpoint": "172.29.80.10:51820",
                "wireguard_peers": [{"host": "vpn1"}]})
            inv.dump("host_vars/vpn1/wireguard.yml", {
                "wireguard_addresses": ["10.83.0.2/24"], "wireguard_peers": [{"host": "broker1"}]})
        inv.dump("hosts.yml", hosts)
        if variables:
            inv.dump(f"{where}/zz_case.yml", variables)

    return apply



def real_server(remount: bool = False, export_dir: str = "/var/lib/rampart-never-written",
                **variables: object) -> Mutation:
    """Make the lab copy a real deployment (pki_disposable: false) without the lab's container-only settings (the
    /proc/sys remount unless ``remount``; WireGuard exports at ``export_dir``, by default outside any checkout)."""

    def apply(inv) -> None:
        inv.dump("group_vars/all/zz_case.yml", {"pki_disposable": False, **variables})
        if not remount:
            inv.dump("group_vars/perimeter/zz_case.yml", {"vlan_remount_proc_sys": False})
        inv.dump("host_vars/broker1/zz_case.yml", {"wireguard_export_dir": export_dir})

    return apply

LISTENERS = [
    {"name": "password", "port": 8883, "authentication": "password"},
    {"name": "certificate", "port": 8884, "authentication": "certificate"},
]


def listeners(index: int, port: int) -> list[dict]:
    """The default listeners with one port changed."""
    changed = [dict(lst) for lst in LISTENERS]
    changed[index]["port"] = port
    return changed


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    path: str  # the variable path the message must name, exactly
    reason: str  # a phrase of the message that says which rule fired


CASES = [
    # Security profiles (README): an unknown name, and high with weaker settings the inventory overrides.
    Case("unknown-profile", override(rampart_profile="paranoid"), "rampart_profile", "choose one of basic"),
    Case("high-profile-tls12", override(rampart_profile="high", mosquitto_tls_version="tlsv1.2"),
         "mosquitto_tls_version", "high allows only tlsv1.3"),
    Case("high-profile-password-clients", override(rampart_profile="high"),
         "mosquitto_clients", "use passwords; high requires auth: certificate"),
    Case("duplicate-client-name", edit_clients(lambda c: c[1].update(name="sensor-01")),
         "mosquitto_clients[1].name", "duplicates mosquitto_clients[0]"),
    Case("colon-in-client-name", edit_clients(lambda c: c[0].update(name="sensor:01")),
         "mosquitto_clients[0].name", "use 1-64 characters"),
    # Security review M1: a trailing line break (a YAML block scalar) passed `^...$` and injected ACL lines.
    Case("line-break-in-client-name", edit_clients(lambda c: c[2].update(name=c[2]["name"] + "\n")),
         "mosquitto_clients[2].name", "use 1-64 characters"),
    Case("acl-injection-through-a-name", edit_clients(lambda c: c.append(
        {"name": c[1]["name"] + "\n", "auth": "certificate",
         "publish": ["%utopic readwrite $SYS/#", "%uuser ops-admin"]})),
         "mosquitto_clients[5].name", "use 1-64 characters"),
    # Review L2 and L1: a device writing every device's commands; a %c pattern with free client ids.
    Case("device-publishes-every-command", edit_clients(lambda c: c[0].update(publish=["commands/#"])),
         "mosquitto_clients[0].publish[0]", "outside the client's own %u subtree"),
    Case("client-id-pattern-with-free-client-ids", override("brokers", mosquitto_use_username_as_clientid=False,
                                                            mosquitto_acl_patterns=[{"access": "read",
                                                                                     "topic": "devices/%c/#"}]),
         "mosquitto_acl_patterns[0].topic", "uses %c while mosquitto_use_username_as_clientid is false"),
    # Review L13: a client host naming a client that does not exist got nothing, silently.
    Case("client-host-names-an-unknown-client",
         override("mqtt_clients", mqtt_client_names=["device-cert-01", "device-cert-1"]),
         "mqtt_client_names[1]", "no entry of mosquitto_clients has that name"),
    # Review M5: outside a disposable test CA, the CA key is encrypted.
    Case("ca-key-unencrypted-outside-a-test-ca", real_server(),
         "pki_ca_key_passphrase", "is empty, so the CA keys would be stored unencrypted"),
    # Review L15 and L11: what only a throw-away test deployment may do.
    Case("proc-sys-remount-on-a-real-server", real_server(remount=True, pki_ca_key_passphrase="x" * 20),
         "vlan_remount_proc_sys", "is true outside a throw-away test deployment"),
    Case("wireguard-exports-inside-the-checkout",
         real_server(export_dir=str(REPO / ".lab" / "wireguard-exports"), pki_ca_key_passphrase="x" * 20),
         "wireguard_export_dir", "is inside the git checkout"),
    Case("unknown-client-key", edit_clients(lambda c: c[0].update(colour="red")),
         # ansible's argument spec check runs first and names the key, not the list index.
         "mosquitto_clients.colour", "Supported parameters include"),
    Case("password-client-without-password", edit_clients(lambda c: c[1].pop("password")),
         "mosquitto_clients[1].password", "is missing or empty for password client"),
    # Review M9: a broker without a firewall and a segment is a choice the inventory must state.
    Case("broker-outside-the-perimeter", outside_the_perimeter(),
         "rampart_perimeter", "broker1 is in brokers but not in perimeter"),
    # Review L7: the password hash is cheap to guess against; a short password never reaches it.
    Case("short-password", edit_clients(lambda c: c[0].update(password="demo-pw-2026")),
         "mosquitto_clients[0].password", "is shorter than mosquitto_password_min_length (16)"),
    Case("certificate-client-with-password", edit_clients(lambda c: c[2].update(password="s3cret-pw")),
         "mosquitto_clients[2].password", "is set for certificate client"),
    # Two factors (mosquitto README): the lab's password and certificate listeners would each admit it with one.
    Case("two-factor-client-beside-one-factor-listeners",
         edit_clients(lambda c: c[1].update(auth="certificate+password")),
         "mosquitto_clients[1].auth", "would admit it with one factor"),
    Case("revoked-password-client", edit_clients(lambda c: c[0].update(revoked=True)),
         "mosquitto_clients[0].revoked", "only certificates are revoked"),
    Case("hash-subscribe-non-admin", edit_clients(lambda c: c[1].update(subscribe=["#"])),
         "mosquitto_clients[1].subscribe", "only clients with admin: true may use"),
    Case("sys-subscribe-non-admin", edit_clients(lambda c: c[1]["subscribe"].append("$SYS/#")),
         "mosquitto_clients[1].subscribe", "reaches the broker's '$' topics"),
    Case("plus-hash-publish-non-admin", edit_clients(lambda c: c[0].update(publish=["+/#"])),
         "mosquitto_clients[0].publish", "starts with a wildcard level"),
    Case("hash-inside-topic", edit_clients(lambda c: c[0]["subscribe"].append("a/#/b")),
         "mosquitto_clients[0].subscribe[1]", "other than as the whole last level"),
    Case("plus-inside-level", edit_clients(lambda c: c[2]["publish"].append("a/b+")),
         "mosquitto_clients[2].publish[2]", "other than as a whole level"),
    Case("acl-pattern-without-placeholder", override(mosquitto_acl_patterns=[{"access": "read", "topic": "status"}]),
         "mosquitto_acl_patterns[0].topic", "has neither %u nor %c"),
    Case("tls-version-1.1", override(mosquitto_tls_version="tlsv1.1"),
         "mosquitto_tls_version", "must be one of: tlsv1.2, tlsv1.3"),
    Case("non-aead-cipher",
         override(mosquitto_tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256"),
         "mosquitto_tls_ciphers", "contains 'ECDHE-RSA-AES128-SHA256'"),
    Case("listener-port-70000", override(mosquitto_listeners=listeners(0, 70000)),
         "mosquitto_listeners[0].port", "use a port between 1 and 65535"),
    Case("listener-port-0", override(mosquitto_listeners=listeners(1, 0)),
         "mosquitto_listeners[1].port", "use a port between 1 and 65535"),
    Case("duplicate-listener-port", override(mosquitto_listeners=listeners(1, 8883)),
         "mosquitto_listeners[1].port", "is used by another listener"),
    Case("bind-all-interfaces", override("brokers", mosquitto_bind_addresses=["0.0.0.0"]),  # noqa: S104  the bad input
         "mosquitto_bind_addresses[0]", "listens on every interface"),
    Case("bind-hostname", override("brokers", mosquitto_bind_addresses=["127.0.0.1", "broker1.example.internal"]),
         "mosquitto_bind_addresses[1]", "not an IP address"),
    Case("bind-nothing", override("brokers", mosquitto_bind_addresses=[]),
         "mosquitto_bind_addresses", "is empty"),
    Case("log-type-debug", override(mosquitto_log_types=["error", "debug"]),
         "mosquitto_log_types", "Got no match for: debug"),
    Case("listener-option-in-extra-options", override(mosquitto_extra_options=["certfile /x"]),
         "mosquitto_extra_options[0]", "sets listener-scoped 'certfile' globally"),
    Case("owned-option-in-extra-options", override(mosquitto_extra_options=["persistence false"]),
         "mosquitto_extra_options[0]", "which the role already writes"),
    # Review M6: a listener's escape hatch cannot turn anonymous access back on.
    Case("anonymous-through-a-listener-option",
         override(mosquitto_listeners=[{**LISTENERS[0], "extra_options": ["allow_anonymous true"]}, *LISTENERS[1:]]),
         "mosquitto_listeners[0].extra_options[0]", "not an option this escape hatch lets through"),
    Case("client-expiration-in-seconds", override(mosquitto_persistent_client_expiration="30s"),
         "mosquitto_persistent_client_expiration", "seconds are not accepted"),
    Case("queue-limit-zero", override(mosquitto_max_queued_messages=0),
         "mosquitto_max_queued_messages", "use an integer from 1"),
    Case("pki-key-rsa-1024", override(pki_key_type="rsa-1024"),
         "pki_key_type", "rsa-1024"),
    Case("pki-renewal-longer-than-lifetime", override(pki_renew_before_days=400),
         "pki_renew_before_days", "must be >= 0 and below pki_cert_valid_days"),
    # The log pipeline (playbooks/collector.yml): each case adds a collector to the lab copy.
    Case("collector-binds-everywhere", with_collector(log_collector_bind_address="0.0.0.0"),  # noqa: S104  the bad input
         "log_collector_bind_address", "must be one literal IP address"),
    # Review L6: every spelling of "every address".
    Case("collector-binds-everywhere-long-form", with_collector(log_collector_bind_address="0:0:0:0:0:0:0:0"),
         "log_collector_bind_address", "meaning every address"),
    Case("collector-binds-a-name", with_collector(log_collector_bind_address="logs.example.internal"),
         "log_collector_bind_address", "must be one literal IP address"),
    # Review H1: the collector files a sender's lines by the address they come from, so it needs one per sender.
    Case("log-source-address-is-a-name", with_log_sources(client1="client1.lab.internal"),
         "logs_source_address", "the address its logs come from, 'client1.lab.internal', is not one literal IP"),
    Case("two-senders-share-a-log-source-address", with_log_sources(broker1="172.29.83.50", client1="172.29.83.50"),
         "logs_source_address", "would send their logs from the same address 172.29.83.50"),
    Case("collector-quarantine-inside-its-log-dir",
         with_collector(log_collector_quarantine_dir="/var/log/rampart/quarantine"),
         "log_collector_quarantine_dir", "outside log_collector_dir"),
    Case("collector-port-0", with_collector(log_collector_port=0),
         "log_collector_port", "must be a port between 1 and 65535"),
    Case("collector-world-readable-files", with_collector(log_collector_file_mode="0644"),
         "log_collector_file_mode", "give others nothing"),
    Case("collector-retention-0", with_collector(log_collector_retention_days=0),
         "log_collector_retention_days", "must be between 1 and 3650"),
    Case("shipping-queue-size-not-a-size", with_collector("all", log_shipping_queue_max_disk_space="lots"),
         "log_shipping_queue_max_disk_space", "must be rsyslog sizes"),
    Case("shipping-queue-file-above-cap",
         with_collector("all", log_shipping_queue_max_file_size="1g", log_shipping_queue_max_disk_space="512m"),
         "log_shipping_queue_max_file_size", "must be below"),
    Case("shipping-retry-max-below-interval",
         with_collector("all", log_shipping_retry_interval=10, log_shipping_retry_interval_max=5),
         "log_shipping_retry_interval_max", "not below it"),
    Case("fail2ban-one-strike", with_collector("brokers", fail2ban_mosquitto_auth_maxretry=1),
         "fail2ban_mosquitto_auth_maxretry", "must be at least 2"),
    Case("fail2ban-permanent-ban", with_collector("brokers", fail2ban_bantime=-1),
         "fail2ban_bantime", "must be at least 1 second"),
    Case("fail2ban-iptables", with_collector("brokers", fail2ban_banaction="iptables-multiport"),
         "fail2ban_banaction", "must be one of: nftables-allports, nftables-multiport"),
    Case("fail2ban-ignore-a-name", with_collector("brokers", fail2ban_ignore_ips=["monitor.example.internal"]),
         "fail2ban_ignore_ips", "IP addresses or networks"),
    Case("nftables-no-management-cidrs", with_perimeter(nftables_management_cidrs=[]),
         "nftables_management_cidrs", "is empty; SSH (the control path) would be blocked"),
    Case("nftables-ssh-from-anywhere", with_perimeter(nftables_management_cidrs=["0.0.0.0/0"]),
         "nftables_management_cidrs[0]", "opens SSH to every address"),
    Case("nftables-ssh-from-two-halves", with_perimeter(nftables_management_cidrs=["0.0.0.0/1", "128.0.0.0/1"]),
         "nftables_management_cidrs", "together cover every IPv4 address"),
    Case("nftables-revert-before-confirmation", with_perimeter(nftables_revert_after=30),
         "nftables_revert_after", "must exceed nftables_confirm_timeout"),
    Case("nftables-bad-log-prefix", with_perimeter(nftables_log_prefix='drop "now"'),
         "nftables_log_prefix", "without quotes"),
    # The wiring's own knobs are named as the operator wrote them, not as the nftables_rules they become.
    Case("perimeter-mqtt-negative-rate", with_perimeter(perimeter_mqtt_rate=-5),
         "perimeter_mqtt_rate", "must be an integer >= 0"),
    Case("perimeter-mqtt-burst-zero", with_perimeter(perimeter_mqtt_burst=0),
         "perimeter_mqtt_burst", "must be an integer >= 1"),
    Case("perimeter-extra-source-not-a-network", with_perimeter(perimeter_mqtt_extra_sources=["office"]),
         "perimeter_mqtt_extra_sources", "must be a list of networks in CIDR notation"),
    Case("broker-tls-name-is-an-address", override("brokers", mosquitto_tls_server_name="172.29.83.10"),
         "mosquitto_tls_server_name", "must be a DNS name"),
    Case("collector-tls-name-is-an-address", with_collector(log_collector_tls_server_name="172.29.83.30"),
         "log_collector_tls_server_name", "must be a DNS name"),
    # An MQTT client named like a log sender's certificate (review M4), whatever its kind of login.
    Case("certificate-client-named-like-a-log-sender",
         with_collector("all", mosquitto_clients=[{"name": "log-client1", "auth": "certificate"}]),
         "mosquitto_clients[0].name", "is the name of a log sender's certificate"),
    Case("password-client-named-like-a-log-sender",
         with_collector("all", mosquitto_clients=[{"name": "log-broker1", "auth": "password", "password": "x" * 24}]),
         "mosquitto_clients[0].name", "is the name of a log sender's certificate"),
    Case("vlan-id-4095", with_perimeter(vlan_mode="tagged", vlan_parent="eno1", vlan_interface="vlan83", vlan_id=4095),
         "vlan_id", "must be between 1 and 4094"),
    Case("vlan-gateway-outside-segment", with_perimeter(vlan_gateway="10.9.9.1"),
         "vlan_gateway", "is outside the segment"),
    Case("vlan-address-without-prefix", with_perimeter(vlan_address="172.29.83.10"),
         "vlan_address", "has no prefix length"),
    Case("wireguard-unknown-peer", with_perimeter("host_vars/broker1", wireguard_peers=[{"host": "ghost"}]),
         "wireguard_peers[0].host", "is not a host of this inventory"),
    Case("wireguard-address-without-prefix", with_perimeter("host_vars/broker1", wireguard_addresses=["10.83.0.9"]),
         "wireguard_addresses[0]", "has no prefix length"),
    # Review M7: what a hub would route into the tunnel.
    Case("wireguard-peer-inside-the-segment",
         with_perimeter("host_vars/broker1", wireguard_export_dir="/tmp/rampart-never-written",  # noqa: S108
                        vlan_address="172.29.83.10/24",
                        wireguard_peers=[{"host": "vpn1"}, {"name": "laptop1", "addresses": ["172.29.83.20/32"]}]),
         "wireguard_peers[1]", "overlaps this host's segment"),
    Case("wireguard-two-peers-one-address",
         with_perimeter("host_vars/broker1", wireguard_export_dir="/tmp/rampart-never-written",  # noqa: S108
                        wireguard_peers=[{"host": "vpn1"}, {"name": "laptop1", "addresses": ["10.83.0.50/32"]},
                                         {"name": "laptop2", "addresses": ["10.83.0.50/32"]}]),
         "wireguard_peers[2]", "WireGuard routes an address to one peer only"),
    Case("wireguard-peer-takes-every-route",
         with_perimeter("host_vars/broker1", wireguard_peers=[{"host": "vpn1", "allowed_ips": ["0.0.0.0/0"]}]),
         "wireguard_peers[0]", "would be routed every IPv4 address"),
    Case("wireguard-external-peer-without-export-dir",
         with_perimeter("host_vars/broker1", wireguard_export_dir="",
                        wireguard_peers=[{"name": "laptop1", "addresses": ["10.83.0.50/32"]}]),
         "wireguard_export_dir", "is empty but wireguard_peers lists peers Ansible does not manage"),
    # Bridges (issue 11): a mapping that forwards everything, and a far end that is no broker of the inventory.
    Case("bridge-forwards-everything",
         override("brokers", mosquitto_bridges=[{"name": "core", "remote": "client1", "out": [{"topic": "#"}]}]),
         "mosquitto_bridges[0].out[0]", "a bridge forwards a subtree, never everything"),
    Case("bridge-to-a-host-that-is-no-broker",
         override("brokers", mosquitto_bridges=[{"name": "core", "remote": "client1",
                                                 "out": [{"topic": "sensors/#", "remote_prefix": "sites/a/"}]}]),
         "mosquitto_bridges[0].remote", "is not a host of the group brokers"),
]


# The failing task is a role's check (imported as rampart.mqtt.<role>) or one of the validation play's
# own wiring checks.
ROLES = ("mosquitto", "pki", "log_collector", "log_shipping", "fail2ban", "vlan", "nftables", "wireguard",
         "mqtt_client")
FAILING_TASK_PREFIXES = (*(f"{role} : " for role in ROLES), *(f"rampart.mqtt.{role} : " for role in ROLES),
                         "Check the wiring", "Check the security profile", "Check the brokers each bridge dials")


def names_exactly(message: str, path: str) -> bool:
    """True when ``path`` occurs as a whole path, not as part of a longer one like path[0], path.x or x_path."""
    return re.search(rf"(?<![\w.\]]){re.escape(path)}(?![\w\[]|\.\w)", message) is not None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_stops_before_any_host(case: Case, inventory_copy, run_playbook) -> None:
    inv = inventory_copy("lab")
    case.mutate(inv)

    run = run_playbook("site.yml", inv.path)

    assert run.rc != 0, f"site.yml accepted the bad inventory:\n{run.output}"
    assert not run.contacted_a_host, f"a host was contacted before validation stopped the run:\n{run.output}"
    # The validation step is one play.
    assert run.plays == [VALIDATION_PLAY], f"plays other than the one validation play ran:\n{run.output}"
    failed = run.failed_task
    assert failed is not None, f"no task failed:\n{run.output}"
    assert failed[0] == VALIDATION_PLAY
    assert failed[1].startswith(FAILING_TASK_PREFIXES), f"unexpected failing task {failed[1]!r}"
    messages = "\n".join(run.error_messages)
    assert names_exactly(messages, case.path), f"no message names {case.path}:\n{messages or run.output}"
    assert case.reason in messages, f"no message says {case.reason!r}:\n{messages or run.output}"
    assert not inv.pki_dir.exists(), "the pki role created pki_dir although validation failed"


def test_lab_inventory_passes_validation(inventory_copy, run_playbook) -> None:
    """Positive control: the unchanged copy is valid, so each case above fails because of its own change."""
    inv = inventory_copy("lab")

    run = run_playbook("validate.yml", inv.path)

    assert run.rc == 0, run.output
    assert run.plays == [VALIDATION_PLAY]
    assert run.failed_task is None
    assert not run.contacted_a_host, run.output
    assert not inv.pki_dir.exists()


def test_the_multi_site_topologys_inventory_passes_validation(tmp_path, run_playbook) -> None:
    """What scripts/lab up --topology multi-site generates (three brokers on three segments, two edges bridged through
    the tunnel to the core, one bridge revoked) passes validation, bridges and all, touching no host."""
    path = topology.generate(topology.load(REPO / "topologies" / "multi-site.yml"), "multi-site", INVENTORIES / "lab",
                             tmp_path / "inventory")
    inv = InventoryCopy(path, tmp_path / "pki")
    hosts = inv.load("hosts.yml")
    _pin_hosts(hosts["all"], inv.pki_dir)
    inv.dump("hosts.yml", hosts)

    run = run_playbook("validate.yml", inv.path)

    assert run.rc == 0, run.output
    assert run.plays == [VALIDATION_PLAY]
    assert "Check the brokers each bridge dials" in run.output
    assert not run.contacted_a_host, run.output


def test_lab_inventory_with_a_collector_passes_validation(inventory_copy, run_playbook) -> None:
    """Positive control for the log pipeline cases: adding a collector host is all it takes."""
    inv = inventory_copy("lab")
    with_collector()(inv)

    run = run_playbook("validate.yml", inv.path)

    assert run.rc == 0, run.output
    assert run.plays == [VALIDATION_PLAY]
    assert "log_collector : Check the collector variables" in run.output, "the collector was not validated"
    assert "log_shipping : Check the log shipping variables" in run.output, "the senders were not validated"
    assert "fail2ban : Check the fail2ban variables" in run.output, "the brokers' fail2ban settings were not validated"
    assert run.failed_task is None
    assert not run.contacted_a_host, run.output


def test_valid_inventory_goes_on_to_the_hosts(inventory_copy, run_playbook) -> None:
    """Control for the harness: past validation, site.yml does try the hosts, and that is detected."""
    inv = inventory_copy("lab")

    run = run_playbook("site.yml", inv.path)

    assert run.rc != 0, run.output
    assert run.contacted_a_host, f"the pinned host was not reported unreachable:\n{run.output}"
    assert run.plays[0] == VALIDATION_PLAY
    assert len(run.plays) > 1, run.output


def test_inventory_with_perimeter_passes_validation(inventory_copy, run_playbook) -> None:
    """Positive control for the perimeter cases: the copy with the perimeter and no override is valid."""
    inv = inventory_copy("lab")
    with_perimeter()(inv)

    run = run_playbook("validate.yml", inv.path)

    assert run.rc == 0, run.output
    assert run.plays == [VALIDATION_PLAY]
    assert run.failed_task is None
    assert not run.contacted_a_host, run.output
    assert "wireguard : Check the WireGuard variables" in run.output, "the tunnel was not validated"
    assert "nftables : Check the firewall variables" in run.output, "the firewall was not validated"


# Under --tags the validation play still runs first (it is tagged always): a part of the deployment never
# reaches a host with an inventory the whole run would refuse.
TAGGED_CASES = {c.id: c for c in CASES if c.id in ("listener-port-70000", "fail2ban-one-strike")}


@pytest.mark.parametrize(("tag", "case_id"), [("mosquitto", "listener-port-70000"), ("logs", "fail2ban-one-strike")])
def test_bad_input_stops_a_tagged_run_before_any_host(tag: str, case_id: str, inventory_copy, run_playbook) -> None:
    case = TAGGED_CASES[case_id]
    inv = inventory_copy("lab")
    case.mutate(inv)

    run = run_playbook("site.yml", inv.path, "--tags", tag)

    assert run.rc != 0, f"site.yml --tags {tag} accepted the bad inventory:\n{run.output}"
    assert not run.contacted_a_host, f"--tags {tag} contacted a host before validation stopped the run:\n{run.output}"
    assert run.plays == [VALIDATION_PLAY], run.output
    assert run.failed_task is not None and run.failed_task[0] == VALIDATION_PLAY, run.output
    messages = "\n".join(run.error_messages)
    assert names_exactly(messages, case.path), f"no message names {case.path}:\n{messages or run.output}"


@pytest.mark.parametrize("tag", ["mosquitto", "logs"])
def test_valid_inventory_under_a_tag_goes_on_to_the_hosts(tag: str, inventory_copy, run_playbook) -> None:
    """Control for the tagged cases: with a valid inventory the same tag does reach the hosts."""
    inv = inventory_copy("lab")
    with_collector()(inv)

    run = run_playbook("site.yml", inv.path, "--tags", tag)

    assert run.rc != 0, run.output
    assert run.contacted_a_host, f"--tags {tag} never reached a host:\n{run.output}"
    assert run.plays[0] == VALIDATION_PLAY
