"""The audit's vocabulary: checks (stable IDs), findings (one check's verdict on one host) and the context.

Every check the audit can report is declared once, in ``CHECKS``; the README's check table, the SARIF rules
and the JUnit test cases are all made from it. A check belongs to the profiles it is listed under: an audit at
profile P runs the checks whose ``profiles`` contain P (``high`` is a superset of ``enhanced``, which is a
superset of ``basic``).

Statuses: ``pass`` (checked, fine), ``fail`` (checked, a finding: exit 1), ``error`` (could not be checked on
a host that should have it: exit 2 unless another host failed a check). A check that does not apply to a host
(no WireGuard there, no collector in the inventory) yields no finding at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

PROFILES = ("basic", "enhanced", "high")
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("pass", "fail", "error")
KINDS = ("drift", "host", "posture")

ALL = PROFILES
ENHANCED = ("enhanced", "high")
HIGH = ("high",)


@dataclass(frozen=True)
class Check:
    id: str
    title: str  # what passing proves, as one sentence
    kind: str  # drift: the host differs from the code; host: read on the host; posture: probed from outside
    severity: str
    profiles: tuple[str, ...]
    source: str  # the guide section (../shared/guides, named by title) or standard it comes from
    remedy: str  # one line: what the operator does about a failure


def _check(*args) -> tuple[str, Check]:
    c = Check(*args)
    if c.kind not in KINDS or c.severity not in SEVERITIES or not set(c.profiles) <= set(PROFILES):
        raise ValueError(f"check {c.id}: bad kind, severity or profiles")
    return c.id, c


CHECKS: dict[str, Check] = dict(
    [
        # --- drift: the host no longer matches the code ---
        _check("DRIFT-TASK", "No task of site.yml would change anything (check mode with diff)", "drift",
               "high", ALL, "Guide 000 §10 Deployment Practices; guide 004 (hardening steps kept in config)",
               "Review the diff, then run site.yml to restore the declared state (or change the inventory)"),
        _check("DRIFT-LISTENER", "Every listening socket on the host is one the inventory declares", "drift",
               "high", ALL, "Guide 001 §9 (behind firewalls); guide 000 §6 Broker Hardening",
               "Stop the undeclared service or declare the listener in the inventory, then converge"),
        _check("DRIFT-FILES", "The broker's config and certificate directories hold only files Rampart wrote",
               "drift", "medium", ENHANCED, "Guide 000 §6 Broker Hardening",
               "Remove the stray file (an include_dir or key left behind) or manage it through the inventory"),
        _check("DRIFT-PACKAGE", "The installed Mosquitto is the version the release installs (apt's candidate)",
               "drift", "medium", ENHANCED, "Guide 000 §6 Broker Hardening (patching); facts §6 CVEs",
               "Upgrade (apt) or converge, which installs the release's version; the audit reads apt's candidate"),
        # --- read on the host (read-only commands over the inventory's connection) ---
        _check("HOST-SERVICE-USER", "Mosquitto runs as its own unprivileged user, not root", "host",
               "high", ALL, "Guide 000 §6 Broker Hardening; facts §5",
               "Converge the mosquitto role (the unit runs as mosquitto); never set User=root in a drop-in"),
        _check("HOST-SYSTEMD-EXPOSURE", "systemd-analyze security rates the broker's sandbox at or below the "
               "profile's exposure limit", "host", "medium", ENHANCED, "Guide 000 §6 Broker Hardening; facts §5",
               "Converge the mosquitto role to restore its hardening drop-in; remove drop-ins that relax it"),
        _check("HOST-KEY-MODES", "Every private key Rampart placed is readable by its owner and service only",
               "host", "critical", ALL, "Guide 002 §9.3.3, §9.5; guide 003 (set permissions)",
               "chmod 0600/0640 and chown as the role sets them, or converge; rotate the key if it was exposed"),
        _check("FW-TABLE-LOADED", "The firewall's table inet rampart is loaded with its input and forward chains",
               "host", "critical", ALL, "Guide 001 §9 Keep MQTT brokers behind firewalls",
               "Converge the perimeter (site.yml --tags perimeter); find who flushed the ruleset"),
        _check("FW-DEFAULT-POLICY", "The firewall drops by default and accepts no MQTT port from everywhere",
               "host", "critical", ALL, "Guide 001 §9; guide 002 §9.6.1 Connection Limits",
               "Converge the perimeter; remove hand-added accept rules"),
        _check("VPN-HANDSHAKE", "Every WireGuard peer has completed a handshake recently", "host", "medium",
               ENHANCED, "Guide 001 §10 Consider using a VPN",
               "Check the peer is up and its key and endpoint match the inventory; remove peers that are gone"),
        _check("LOG-RECEIVING", "The log collector has recently received lines from every host that ships to it",
               "host", "high", ENHANCED, "Guide 000 §9 Monitoring & Logging; guide 001 §8; guide 002 §9.7.3",
               "Start the collector, check the sender's rsyslog queue and its certificate; nothing is lost"),
        # --- probed from outside the host ---
        _check("TLS-PROTOCOLS", "Only TLS 1.2 and 1.3 are offered (TLS 1.3 only at profile high)", "posture",
               "high", ALL, "Guide 002 §9.5.3, Table 9-2; §9.9.4 (TLS 1.3 only)",
               "Set mosquitto_tls_version and converge"),
        _check("TLS-CIPHERS", "No weak cipher suite is offered (no NULL, export, RC4, 3DES, CBC-SHA1 or static RSA)",
               "posture", "high", ENHANCED, "Guide 002 §9.5.3, Table 9-2",
               "Restore mosquitto_tls_ciphers to the role default and converge"),
        _check("TLS-CERT-CHAIN", "The server certificate chains to the deployment's CA and names the broker",
               "posture", "high", ALL, "Guide 000 §3; guide 001 §1 Use TLS",
               "Re-issue the server certificate: converge"),
        _check("TLS-CERT-EXPIRY", "The server certificate is valid for longer than the warning period", "posture",
               "high", ALL, "Guide 002 §9.3.3 Client Certificate Authentication",
               "Converge (the pki role renews certificates inside their renewal window)"),
        _check("CRL-FRESH", "The CRL the broker loads is valid for longer than the warning period", "host", "high",
               ENHANCED, "Guide 002 §9.3.3 (revocation)", "Run site.yml --tags crl to re-sign and push the CRL"),
        _check("CRL-REVOKED-REFUSED", "Every client the inventory revokes is refused at the TLS handshake",
               "posture", "critical", ENHANCED, "Guide 002 §9.3.3 (revocation)",
               "Converge so the CRL lists the revoked clients and the broker loads it"),
        _check("MQTT-NO-PLAINTEXT", "No plaintext MQTT or WebSocket listener answers", "posture", "critical", ALL,
               "Guide 001 §1 Use TLS; guide 002 §9.5.1", "Remove the plaintext listener and converge"),
        _check("MQTT-NO-ANONYMOUS", "An anonymous client is refused", "posture", "critical", ALL,
               "Guide 000 §1; guide 001 §2; guide 002 §9.3", "Set allow_anonymous false on every listener: converge"),
        _check("ACL-SYS-DENIED", "An ordinary client cannot read $SYS/#", "posture", "medium", ALL,
               "Guide 001 §3-5; guide 002 §9.4.2, Table 9-1",
               "Remove the $SYS grant from the client's ACL and converge"),
        _check("ACL-WILDCARD-DENIED", "An ordinary client cannot read every topic (#)", "posture", "high", ALL,
               "Guide 001 §3-5; guide 002 §9.4.2, Table 9-1", "Narrow the client's ACL patterns and converge"),
        _check("NET-REACH", "Each vantage point reaches exactly the ports the perimeter allows it", "posture",
               "critical", ENHANCED, "Guide 001 §9-10; guide 002 §9.2.3 Attack Vectors",
               "Converge the perimeter; find the rule or route that opened the port"),
    ]
)


@dataclass
class Location:
    """Where an operator would make the change (SARIF's physicalLocation): a path relative to the project."""

    file: str
    line: int | None = None


@dataclass
class Finding:
    check: str  # an ID of CHECKS
    host: str  # inventory name, or HOST:PORT for --target
    status: str  # pass | fail | error
    message: str  # one line, for people
    detail: dict = field(default_factory=dict)  # check-specific data (drift: role, task, resource, diff)
    location: Location | None = None

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"unknown check {self.check!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class AuditError(Exception):
    """The audit could not be done (exit 2): the message names the cause and the fix."""


@dataclass
class Context:
    """What one audit run is given."""

    project: Path  # where playbooks/ lives (this checkout, or a project using the installed collection)
    inventories: list[str]  # -i arguments, as ansible-playbook takes them
    ansible_args: list[str] = field(default_factory=list)  # --vault-id / --vault-password-file / --limit ...
    limit: str | None = None
    profile: str | None = None  # --profile: overrides each host's declared rampart_profile
    only: set[str] = field(default_factory=set)
    skip: set[str] = field(default_factory=set)
    workdir: Path | None = None  # a private temp dir for this run (descriptions, facts)
    full_tls_scan: bool = False  # --full-tls-scan: sslyze's own scan, one handshake per suite it knows (533)

    def wants(self, check_id: str, profile: str) -> bool:
        """Whether check_id runs for a host audited at ``profile``."""
        if self.only:
            return check_id in self.only and check_id not in self.skip
        return profile in CHECKS[check_id].profiles and check_id not in self.skip
