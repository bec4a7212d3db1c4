"""Jinja tests over the validators the roles' checks use, for an operator's own playbooks and inventories.

The roles' assert.yml call each role's ``*_problems`` filter instead (one task per role, unit-tested in
module_utils). ansible-core has no built-in IP test (ansible.utils.ipaddr needs netaddr), hence this file.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

addresses = LazyModule("addresses")
logship = LazyModule("logship")
names = LazyModule("pki.names")


def pki_name(value: Any) -> bool:
    return names.is_valid_name(value)


def dns_name(value: Any) -> bool:
    return names.is_valid_dns_name(value)


def ip_address(value: Any) -> bool:
    return addresses.is_ip_address(value)


def unspecified_address(value: Any) -> bool:
    return addresses.is_unspecified_address(value)


def size(value: Any) -> bool:
    return logship.is_size(value)


class TestModule:
    def tests(self):
        return {"pki_name": pki_name, "dns_name": dns_name, "ip_address": ip_address,
                "unspecified_address": unspecified_address, "size": size}
