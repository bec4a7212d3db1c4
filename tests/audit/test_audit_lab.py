"""Each way operators and attackers break the lab is caught, exactly, and a converge heals it; after the heals the
lab audits clean, every check runs, and the audit changes nothing.

No separate audit of the fresh lab (each audit costs a minute): the first round's audit runs on the lab as
`scripts/lab up` left it, from the collection tarball, and must find its own break and nothing else, so it also
proves that the tarball and this checkout agree everywhere but the broker's nftables table it deleted. The next
audit (the second round's) must show only its own breaks, which proves the first heal; the last, clean audit
proves the second."""

from __future__ import annotations

import datetime as dt
import json
import re
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


VICTIM = {"name": "audit-victim-01", "auth": "certificate", "publish": ["devices/audit-victim-01/#"]}


def lab_clients() -> list[dict]:
    return yaml.safe_load((INVENTORIES / "lab" / "group_vars" / "all" / "clients.yml").read_text())["mosquitto_clients"]


@dataclass(frozen=True)
class Break:
    id: str
    apply: Callable[[Path], list[str]]  # takes tmp_path; returns extra audit arguments
    expected: set[tuple[str, str]]  # (check, host) of the findings other than DRIFT-TASK
    drift: tuple[str, str]  # (host, regex over "role: task resource") of the DRIFT-TASK finding it causes


@dataclass(frozen=True)
class Round:
    """Breaks that do not mask each other, applied together, audited once and healed by one converge."""
    id: str
    breaks: tuple[Break, ...]
    heal: str  # the tags of the converge that heals them
    heal_vars: Callable[[], dict | None] = lambda: None


def on_broker(script: str) -> Callable[[Path], list[str]]:
    return lambda _tmp: (sh(BROKER["container"], script), [])[1]


def on_collector(script: str) -> Callable[[Path], list[str]]:
    return lambda _tmp: (sh(COLLECTOR["container"], script), [])[1]


def revoked_clients() -> dict:
    return {"mosquitto_clients": [*lab_clients(), {**VICTIM, "revoked": True}]}


def revoke_victim(tmp_path: Path) -> list[str]:
    """A certificate client, converged; then revoked in the inventory (extra vars) but not converged."""
    converge_lab(tmp_path, "broker", {"mosquitto_clients": [*lab_clients(), VICTIM]})
    revoked = tmp_path / "revoked.json"
    revoked.write_text(json.dumps(revoked_clients()))
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
# Two rounds instead of one per break (each audit and each heal costs a minute or more). The deleted table would
# take an inserted rule with it, so it has a round of its own, first: it is the only round that converges nothing
# before its audit. The second holds every break of a file, a service, the CRL or a firewall rule (the revocation
# first: its converge would heal the others).
# Within a round each break is still caught exactly: its own checks, and a DRIFT-TASK finding that names its
# task or file (the broker's files are installed by one task: its finding for each drifted file ends with that
# file's path); no DRIFT-TASK finding is left that no break explains.
ROUNDS = [
    Round("firewall-table", (
        Break("table-flushed", on_broker("nft delete table inet rampart"),
              {("FW-TABLE-LOADED", B), ("FW-DEFAULT-POLICY", B)}, (B, r"nftables")),
    ), "nftables"),
    Round("files-services-crl", (
        # Revoking also takes the client out of the ACL file.
        Break("revoked-not-converged", revoke_victim, {("CRL-REVOKED-REFUSED", B)},
              (B, r"re-sign the CRLs|certs/crl\.pem$|/etc/mosquitto/acl$")),
        Break("anonymous-listener", on_broker(
            "printf 'listener 1883\\nallow_anonymous true\\n' >> /etc/mosquitto/mosquitto.conf"
            " && systemctl restart mosquitto"), {("DRIFT-LISTENER", B)}, (B, r"mosquitto\.conf$|Restart mosquitto")),
        Break("world-readable-key", on_broker("chmod 0644 /etc/mosquitto/certs/server.key"),
              {("HOST-KEY-MODES", B)}, (B, r"certs/server\.key$")),
        Break("password-line", on_broker("echo 'intruder:$7$101$c2FsdHNhbHQ=$aGFzaA==' >> /etc/mosquitto/passwd"),
              set(), (B, r"/etc/mosquitto/passwd$")),
        # The socket too: syslog.socket would start rsyslog again at the next local log line.
        Break("collector-stopped", on_collector("systemctl stop syslog.socket rsyslog.service"),
              {("LOG-RECEIVING", LOGS)}, (LOGS, r"rsyslog")),
        Break("crl-left-to-expire", crl_left_to_expire, {("CRL-FRESH", B)}, (B, r"re-sign the CRLs|certs/crl\.pem$")),
        # A hole for Mosquitto's customary WebSockets port (nothing listens: the rule alone is the finding).
        Break("accept-9001", on_broker("nft insert rule inet rampart input tcp dport 9001 accept"),
              {("FW-DEFAULT-POLICY", B)}, (B, r"nftables")),
    # Healed by the inventory without the victim: removing a certificate client revokes it (review M3), so that
    # one converge revokes it, takes it out of the ACL file and leaves nothing for the next audit to retire.
    ), "broker,log_collector,nftables"),
]


def drift_tasks(audit) -> list[tuple[str, str]]:
    """(host, "role: task resource") of every failing DRIFT-TASK finding."""
    return [(f["host"], f"{f['detail'].get('role')}: {f['detail'].get('task')} {f['detail'].get('resource') or ''}")
            for f in audit.findings if f["check"] == "DRIFT-TASK" and f["status"] != "pass"]


def explains(brk: Break, host: str, text: str) -> bool:
    return host == brk.drift[0] and re.search(brk.drift[1], text) is not None


@pytest.mark.converges
@pytest.mark.parametrize("rnd", ROUNDS, ids=[r.id for r in ROUNDS])
def test_the_audit_catches_exactly_each_break_and_a_converge_heals_it(rnd: Round, tmp_path):
    args = [arg for brk in rnd.breaks for arg in brk.apply(tmp_path)]
    try:
        audit = run_audit(tmp_path, *args)
        drift = drift_tasks(audit)
        print("\n".join(f"drift on {host}: {text}" for host, text in drift))
        assert audit.rc == 1, audit.output[-5000:]
        expected = set().union(*(b.expected | {("DRIFT-TASK", b.drift[0])} for b in rnd.breaks))
        assert audit.failing == expected, audit.output[-5000:]
        for brk in rnd.breaks:
            assert any(explains(brk, h, t) for h, t in drift), f"{brk.id}: no DRIFT-TASK finding names it: {drift}"
        unexplained = [(h, t) for h, t in drift if not any(explains(b, h, t) for b in rnd.breaks)]
        assert unexplained == [], f"drift no break explains: {unexplained}"
    finally:
        converge_lab(tmp_path, rnd.heal, rnd.heal_vars())


@pytest.mark.runs_last
@pytest.mark.converges
def test_after_the_heals_the_lab_audits_clean_runs_every_check_and_changes_nothing(tmp_path):
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
