"""The converged lab audits clean and the audit changes nothing; each way operators and attackers break the lab
is caught, exactly, and a converge heals it (the next audit, which must show only its own break, proves it)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from rampart.audit.model import CHECKS
from tests.support import INVENTORIES, mqtt
from tests.support import lab as description
from tests.support.docker import sh

from .conftest import converge_lab, run_audit

LAB = description.require("collector", "vantage_points")
BROKER = LAB["brokers"][0]
COLLECTOR = LAB["collector"]
MANAGED = sorted({BROKER["container"], COLLECTOR["container"],
                  *(p["container"] for p in LAB["vantage_points"] if p["role"] != "outsider")})
# Everything Rampart writes on a host, the firewall, and which services run.
SNAPSHOT = """
find /etc/mosquitto /etc/rampart /etc/wireguard /etc/rsyslog.d /etc/fail2ban /etc/systemd/system \
     /var/backups/rampart-mosquitto -type f 2>/dev/null | sort | xargs -r sha256sum
nft --stateless --terse list ruleset
systemctl list-units --type=service --state=running --no-legend --plain | awk '{print $1}'
"""


def snapshots() -> dict[str, str]:
    return {c: sh(c, SNAPSHOT) for c in MANAGED}


def test_converged_lab_audits_clean_and_the_audit_changes_nothing(tmp_path):
    before = snapshots()
    watcher = mqtt.open_session(LAB["ca_file"], BROKER, description.admin(LAB))
    watcher.subscribe("#")
    started = time.monotonic()
    try:
        audit = run_audit(tmp_path)
        published = {topic for topic, _ in watcher.received(wait=1.0)}
    finally:
        watcher.close()
    print(f"\nBENCHMARK audit of the lab: {time.monotonic() - started:.1f} s")

    assert audit.rc == 0, audit.output[-5000:]
    assert audit.failing == set(), audit.output[-5000:]
    audit.validate()
    assert {f["check"] for f in audit.findings} == set(CHECKS), "a check did not run on the lab"
    assert snapshots() == before, "the audit changed a file, the firewall or a service on a host"
    assert all("/rampart-audit/" in t for t in published), f"the audit published outside its own topics: {published}"


VICTIM = {"name": "audit-victim-01", "auth": "certificate", "publish": ["devices/audit-victim-01/#"]}


def lab_clients() -> list[dict]:
    return yaml.safe_load((INVENTORIES / "lab" / "group_vars" / "all" / "clients.yml").read_text())["mosquitto_clients"]


@dataclass(frozen=True)
class Break:
    id: str
    apply: Callable[[object], list[str]]  # takes tmp_path; returns extra audit arguments
    expected: set[tuple[str, str]]
    heal: str  # the tags of the converge that heals it


def on_broker(script: str) -> Callable[[object], list[str]]:
    return lambda _tmp: (sh(BROKER["container"], script), [])[1]


def on_collector(script: str) -> Callable[[object], list[str]]:
    return lambda _tmp: (sh(COLLECTOR["container"], script), [])[1]


def revoke_victim(tmp_path) -> list[str]:
    """A certificate client, converged; then revoked in the inventory (extra vars) but not converged."""
    converge_lab(tmp_path, "broker", {"mosquitto_clients": [*lab_clients(), VICTIM]})
    revoked = tmp_path / "revoked.json"
    revoked.write_text(json.dumps({"mosquitto_clients": [*lab_clients(), {**VICTIM, "revoked": True}]}))
    return ["-e", f"@{revoked}"]


def crl_left_to_expire(_tmp) -> list[str]:
    """The CRL as if nobody had converged for 27 of its 30 days: re-signed as of then by the same intermediate,
    with the same revoked certificates, on the control node and on the broker."""
    ca = Path(LAB["ca_file"]).parent
    current = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    key = serialization.load_pem_private_key((ca / "intermediate.key").read_bytes(), password=None)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(current.issuer)
               .last_update(now - dt.timedelta(days=27)).next_update(now + dt.timedelta(days=3)))
    for revoked in current:
        builder = builder.add_revoked_certificate(revoked)
    for extension in current.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    old = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    (ca / "crl.pem").write_bytes(old)
    sh(BROKER["container"], f"printf '%s' '{old.decode()}' > /etc/mosquitto/certs/crl.pem")
    return []


B, LOGS = BROKER["name"], "logs1"
BREAKS = [
    Break("anonymous-listener", on_broker(
        "printf 'listener 1883\\nallow_anonymous true\\n' >> /etc/mosquitto/mosquitto.conf"
        " && systemctl restart mosquitto"), {("DRIFT-TASK", B), ("DRIFT-LISTENER", B)}, "mosquitto"),
    Break("world-readable-key", on_broker("chmod 0644 /etc/mosquitto/certs/server.key"),
          {("DRIFT-TASK", B), ("HOST-KEY-MODES", B)}, "mosquitto"),
    Break("accept-1883", on_broker("nft insert rule inet rampart input tcp dport 1883 accept"),
          {("DRIFT-TASK", B), ("FW-DEFAULT-POLICY", B)}, "nftables"),
    Break("table-flushed", on_broker("nft delete table inet rampart"),
          {("DRIFT-TASK", B), ("FW-TABLE-LOADED", B), ("FW-DEFAULT-POLICY", B)}, "nftables"),
    Break("password-line", on_broker("echo 'intruder:$7$101$c2FsdHNhbHQ=$aGFzaA==' >> /etc/mosquitto/passwd"),
          {("DRIFT-TASK", B)}, "mosquitto"),
    # The socket too: syslog.socket would start rsyslog again at the next local log line.
    Break("collector-stopped", on_collector("systemctl stop syslog.socket rsyslog.service"),
          {("DRIFT-TASK", LOGS), ("LOG-RECEIVING", LOGS)}, "log_collector"),
    Break("crl-left-to-expire", crl_left_to_expire, {("DRIFT-TASK", B), ("CRL-FRESH", B)}, "broker"),
    Break("revoked-not-converged", revoke_victim, {("DRIFT-TASK", B), ("CRL-REVOKED-REFUSED", B)}, "broker"),
]


@pytest.mark.converges
@pytest.mark.parametrize("brk", BREAKS, ids=[b.id for b in BREAKS])
def test_the_audit_catches_exactly_the_break_and_a_converge_heals_it(brk: Break, tmp_path):
    args = brk.apply(tmp_path)
    try:
        audit = run_audit(tmp_path, *args)
        assert audit.rc == 1, audit.output[-5000:]
        assert audit.failing == brk.expected, audit.output[-5000:]
    finally:
        revoked = {"mosquitto_clients": [*lab_clients(), {**VICTIM, "revoked": True}]}
        converge_lab(tmp_path, brk.heal, revoked if brk.id == "revoked-not-converged" else None)


@pytest.mark.runs_last
@pytest.mark.converges
def test_after_the_heals_the_lab_audits_clean_again(tmp_path):
    audit = run_audit(tmp_path)
    assert audit.rc == 0, audit.output[-5000:]
    assert audit.failing == set()
