"""IP address checks every role's validation shares (no third-party import: filters and tests load it)."""

from __future__ import annotations

import ipaddress
from typing import Any


def is_ip_address(value: Any) -> bool:
    """True when ``value`` (as text) is an IPv4 or IPv6 address: the one check behind every role's assert."""
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def is_unspecified_address(value: Any) -> bool:
    """True when ``value`` is an address that means "every address" in any spelling: 0.0.0.0, ::, ::0, 0::0,
    0:0:0:0:0:0:0:0, and the IPv4-mapped ::ffff:0.0.0.0 (a dual-stack socket bound there takes every IPv4
    address). Review L6: comparing strings missed all but the first two."""
    try:
        ip = ipaddress.ip_address(str(value))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_unspecified or (mapped is not None and mapped.is_unspecified)
