"""Jinja tests for the roles' assert.yml, over the same validators the Python enforces again.

assert.yml uses them so a bad value fails with a message naming the role variable before anything
runs. ansible-core has no built-in IP test (ansible.utils.ipaddr needs netaddr), hence this file.
"""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils import logship, pki


def size(value) -> bool:
    """rsyslog's size notation: 512m, 64k, 2g."""
    try:
        logship.size_bytes(value)
    except ValueError:
        return False
    return True


class TestModule:
    def tests(self):
        return {
            "pki_name": pki.is_valid_name,
            "dns_name": pki.is_valid_dns_name,
            "ip_address": pki.is_ip_address,
            "unspecified_address": pki.is_unspecified_address,
            "size": size,
        }
