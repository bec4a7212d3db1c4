"""Jinja tests over the validators the roles' checks use, for an operator's own playbooks and inventories.

The roles' assert.yml call each role's ``*_problems`` filter instead (one task per role, unit-tested in
module_utils). ansible-core has no built-in IP test (ansible.utils.ipaddr needs netaddr), hence this file.
"""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils import logship, pki


class TestModule:
    def tests(self):
        return {
            "pki_name": pki.is_valid_name,
            "dns_name": pki.is_valid_dns_name,
            "ip_address": pki.is_ip_address,
            "unspecified_address": pki.is_unspecified_address,
            "size": logship.is_size,
        }
