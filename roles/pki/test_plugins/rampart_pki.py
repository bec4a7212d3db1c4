"""Jinja tests for the pki role's assert.yml, thin wrappers over rampart.pki's own validators.

assert.yml uses them so a bad value fails with a message naming the role variable, before the
action plugin runs; the same rules are enforced again inside rampart.pki. ansible-core has no
built-in IP test (ansible.utils.ipaddr needs netaddr), hence this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from rampart import pki
except ImportError:  # pragma: no cover - only outside the repo's venv (which has a .pth for it)
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from rampart import pki


class TestModule:
    """rampart_pki_name, rampart_pki_ip_address, rampart_pki_dns_name."""

    def tests(self):
        return {
            "rampart_pki_name": pki.is_valid_name,
            "rampart_pki_ip_address": pki.is_ip_address,
            "rampart_pki_dns_name": pki.is_valid_dns_name,
        }
