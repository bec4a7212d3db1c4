"""Security profiles (guide 002, section 9.9): what each of basic, enhanced and high requires of a host.

``rampart_profile`` (default enhanced) selects the defaults the roles deploy (roles/mosquitto/defaults and
roles/wiring/vars/main.yml read it) and validation refuses an inventory that declares a profile and then
overrides one of its settings with something weaker (``problems``). basic and enhanced deploy the same
hardened defaults (Rampart never deploys below them); they differ in what the audit checks. high deploys
TLS 1.3 only, the certificate listener only, and MQTT reachable only through the VPN, and requires a collector.
"""

from __future__ import annotations

from typing import Any

PROFILES = ("basic", "enhanced", "high")
DEFAULT = "enhanced"

# What each profile requires, side by side (README "Security profiles" is made from the same words).
REQUIRES = {
    "basic": "TLS 1.2+ only; password or certificate clients; least-privilege ACLs; firewall with rate limits",
    "enhanced": "basic, and: client certificates with a CRL, fail2ban, logs shipped when a collector exists "
                "(the defaults; the audit also checks CRL, reachability, logs, VPN and sandbox exposure)",
    "high": "enhanced, and: TLS 1.3 only; certificate clients only (no password listener); MQTT reachable only "
            "through the VPN; a log collector; sandbox exposure at most 2.5",
}


def problems(profile: Any, settings: dict[str, Any]) -> list[str]:
    """Why the host's settings do not meet its declared profile (empty when they do), each naming the variable."""
    if profile not in PROFILES:
        return [f"rampart_profile is {profile!r}; choose one of {', '.join(PROFILES)} (or leave it out: "
                f"{DEFAULT})."]
    if profile != "high" or not settings.get("is_broker"):
        return []
    return [f"rampart_profile high: {message} Remove the override, or declare a lower profile."
            for message in _high(settings)]


def _high(s: dict[str, Any]) -> list[str]:
    """None for a role variable means the inventory does not set it: its default follows the profile."""
    out = []
    if s.get("mosquitto_tls_version") not in (None, "tlsv1.3"):
        out.append(f"mosquitto_tls_version is {s.get('mosquitto_tls_version')!r}; high allows only tlsv1.3.")
    password_listeners = [str(lst.get("port")) for lst in s.get("mosquitto_listeners") or []
                          if lst.get("authentication", "password") == "password"]
    if password_listeners:
        out.append(f"mosquitto_listeners has a password listener (port {', '.join(password_listeners)}); high "
                   "allows certificate listeners only.")
    password_clients = [c.get("name") for c in s.get("mosquitto_clients") or []
                        if c.get("auth", "password") == "password"]
    if password_clients:
        out.append(f"mosquitto_clients {password_clients} use passwords; high requires auth: certificate.")
    if s.get("mqtt_from_segment"):
        out.append("perimeter_mqtt_from_segment is true; high allows MQTT only through the VPN.")
    if not s.get("has_collector"):
        out.append("the inventory has no collectors group; high requires the logs shipped to a collector.")
    return out
