"""The names a certificate may carry: its own name (a directory name and the CN) and its DNS names.

Pure checks with no third-party import, so that validation (filters, the pki role's assert) can load them in
every Ansible worker without importing ``cryptography``; :mod:`.common` re-exports them.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.addresses import is_ip_address

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# One DNS label (LDH, RFC 1123); a DNS name may start with a single "*." wildcard label.
_DNS_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_dns_name(cert_name: str, dns: Any) -> str:
    """``dns`` without a trailing dot, or ValueError naming ``cert_name`` and the rule."""
    if not isinstance(dns, str) or not dns:
        raise ValueError(f"certificate {cert_name!r}: DNS name {dns!r} must be a non-empty string")
    if is_ip_address(dns):
        raise ValueError(f"certificate {cert_name!r}: DNS name {dns!r} is an IP address; list it under ip_addresses")
    labels = dns[:-1].split(".") if dns.endswith(".") else dns.split(".")
    if labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]
    if len(dns) > 253 or not all(_DNS_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(f"certificate {cert_name!r}: {dns!r} is not a valid DNS name")
    return dns.rstrip(".")


def is_valid_name(value: Any) -> bool:
    """True for a usable certificate name (it becomes a directory name and the CN)."""
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def is_valid_dns_name(value: Any) -> bool:
    """True for a DNS name this package accepts in a subjectAltName (not an IP address)."""
    try:
        check_dns_name("-", value)
    except ValueError:
        return False
    return True
