"""Checks read on the host (the facts playbooks/audit.yml read, over the inventory's own connection).

Thresholds (documented in docs/audit.md):
- HOST-SYSTEMD-EXPOSURE: systemd-analyze's overall exposure at most EXPOSURE_LIMIT[profile] (0 safest, 10 worst;
  Rampart's unit scores about 2 on Debian 12 and 13, a stock unit about 9).
- VPN-HANDSHAKE: a peer with a persistent keepalive has shaken hands within HANDSHAKE_MAX_AGE seconds
  (WireGuard re-keys every 2 minutes while packets flow; the keepalive keeps them flowing).
- LOG-RECEIVING: the collector's rsyslog is active and listening; no sender holds a queue file older than
  QUEUE_MAX_AGE seconds (rsyslog spools to disk only while the collector does not take its lines).
- CRL-FRESH: the CRL the broker loads is valid for more than CRL_WARN_DAYS days.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from .collect import Collected, declared_ports
from .model import Context, Finding

EXPOSURE_LIMIT = {"basic": 5.0, "enhanced": 3.0, "high": 2.5}
HANDSHAKE_MAX_AGE = 300
QUEUE_MAX_AGE = 120
# The pki role re-signs a CRL with 15 days left (the daily refresh, examples/systemd/); 10 left: five refreshes failed.
CRL_WARN_DAYS = 10


def run(ctx: Context, collected: Collected) -> list[Finding]:
    findings: list[Finding] = []
    for host, facts in sorted(collected.facts.items()):
        profile = ctx.profile or collected.profiles.get(host, "enhanced")
        for check_id, applies, check in CHECKS:
            if applies(facts, host, collected) and ctx.wants(check_id, profile):
                findings.append(check(host, facts, profile, collected))
    return findings


def service_user(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    unit = facts["mosquitto"]["unit"]
    user = unit.get("process_user")
    if unit.get("active") != "active" or not user:
        return Finding("HOST-SERVICE-USER", host, "fail", f"mosquitto.service is {unit.get('active')}, not running")
    if user == "root":
        return Finding("HOST-SERVICE-USER", host, "fail", "mosquitto runs as root")
    return Finding("HOST-SERVICE-USER", host, "pass", f"mosquitto runs as {user}")


def exposure(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    score, limit = facts["mosquitto"]["unit"].get("exposure"), EXPOSURE_LIMIT[profile]
    if score is None:
        return Finding("HOST-SYSTEMD-EXPOSURE", host, "error", "systemd-analyze security gave no exposure level")
    status = "pass" if score <= limit else "fail"
    return Finding("HOST-SYSTEMD-EXPOSURE", host, status, f"exposure {score} (profile {profile}: at most {limit})",
                   {"exposure": score, "limit": limit})


def key_modes(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    """No private key readable by others, writable by its group, or owned by anyone but root or a service."""
    bad = [f"{k['path']} {k['mode']} {k['owner']}:{k['group']}" for k in facts["private_keys"]
           if int(k["mode"], 8) & 0o027 or k["owner"] not in ("root", "mosquitto")]
    if bad:
        return Finding("HOST-KEY-MODES", host, "fail", "private keys too open: " + "; ".join(bad), {"keys": bad})
    return Finding("HOST-KEY-MODES", host, "pass", f"{len(facts['private_keys'])} private keys, none open to others")


def table_loaded(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    chains = _base_chains(facts)
    missing = {"input", "forward"} - set(chains)
    if not facts["firewall"]["loaded"] or missing:
        what = "not loaded" if not facts["firewall"]["loaded"] else f"lacks the {', '.join(sorted(missing))} chain"
        return Finding("FW-TABLE-LOADED", host, "fail", f"table inet rampart {what}")
    return Finding("FW-TABLE-LOADED", host, "pass", "table inet rampart loaded with input and forward chains")


def _base_chains(facts: dict) -> dict[str, dict]:
    table = facts["firewall"].get("table") or []
    return {o["chain"]["name"]: o["chain"] for o in table if "chain" in o and o["chain"].get("hook")}


def _rules(facts: dict, chain: str) -> list[list]:
    table = facts["firewall"].get("table") or []
    return [o["rule"]["expr"] for o in table if "rule" in o and o["rule"]["chain"] == chain]


def _dports(expr: list) -> tuple[str | None, set[int], bool]:
    """(protocol, destination ports, restricted to sources) of one rule's expressions."""
    proto, ports, by_source = None, set(), False
    for e in expr:
        match = e.get("match") or {}
        payload = (match.get("left") or {}).get("payload") or {}
        if payload.get("field") == "dport":
            proto, right = payload.get("protocol"), match.get("right")
            values = right.get("set", []) if isinstance(right, dict) else [right]
            ports |= {v for v in values if isinstance(v, int)}
        elif payload.get("field") == "saddr":
            by_source = True
    return proto, ports, by_source


def default_policy(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    chains, problems = _base_chains(facts), []
    problems += [f"chain {n} policy {chains[n].get('policy')}" for n in ("input", "forward")
                 if n in chains and chains[n].get("policy") != "drop"]
    declared = declared_ports(host, collected)
    mqtt = {p for proto, p in declared if proto == "tcp" and p not in (22,)}
    for expr in _rules(facts, "input"):
        if not any("accept" in e for e in expr):
            continue
        proto, ports, by_source = _dports(expr)
        stray = {p for p in ports if (proto, p) not in declared}
        if stray:
            problems.append(f"accepts undeclared {proto} port(s) {sorted(stray)}")
        elif ports & mqtt and not by_source:
            problems.append(f"accepts MQTT port(s) {sorted(ports & mqtt)} from everywhere")
    if not facts["firewall"]["loaded"]:
        problems.append("no table: nothing is dropped by Rampart's firewall")
    if problems:
        return Finding("FW-DEFAULT-POLICY", host, "fail", "; ".join(problems), {"problems": problems})
    return Finding("FW-DEFAULT-POLICY", host, "pass", "input and forward drop by default; accepts only declared ports")


def handshakes(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    now, stale = facts["now"], []
    for peer in facts["wireguard"]:
        if peer["keepalive"] in ("off", "0"):
            continue
        age = now - peer["latest_handshake"] if peer["latest_handshake"] else None
        if age is None or age > HANDSHAKE_MAX_AGE:
            stale.append(f"{peer['peer'][:8]}... ({'never' if age is None else f'{age} s ago'})")
    if stale:
        return Finding("VPN-HANDSHAKE", host, "fail", "peers without a recent handshake: " + ", ".join(stale))
    return Finding("VPN-HANDSHAKE", host, "pass",
                   f"every kept-alive peer shook hands in the last {HANDSHAKE_MAX_AGE} s")


def receiving(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    if "collector" in facts:
        service = facts["collector"]["service"]
        port = collected.description.get("collector", {}).get("port")
        listening = any(s["port"] == port and s["proto"] == "tcp" for s in facts["listeners"])
        if service.get("active") != "active" or not listening:
            return Finding("LOG-RECEIVING", host, "fail", f"the collector's rsyslog is {service.get('active')}"
                           f"{'' if listening else f' and nothing listens on {port}'}")
        senders = {h for h, f in collected.facts.items() if "shipping" in f}
        silent = sorted(senders - set(facts["collector"]["senders"]))
        if silent:
            return Finding("LOG-RECEIVING", host, "fail", f"nothing ever arrived from {', '.join(silent)}")
        return Finding("LOG-RECEIVING", host, "pass",
                       f"active, listening, and has lines from all {len(senders)} senders")
    old = [q["path"] for q in facts["shipping"]["queue_files"]
           if q["size"] > 0 and facts["now"] - q["mtime"] > QUEUE_MAX_AGE]
    if old:
        return Finding("LOG-RECEIVING", host, "fail", "lines wait for the collector: " + ", ".join(old))
    return Finding("LOG-RECEIVING", host, "pass", "no lines waiting for the collector")


def crl_fresh(host: str, facts: dict, profile: str, collected: Collected) -> Finding:
    crl = x509.load_pem_x509_crl(facts["mosquitto"]["crl_pem"].encode())
    left = crl.next_update_utc - dt.datetime.fromtimestamp(facts["now"], dt.UTC)
    days = left.total_seconds() / 86400
    status = "pass" if days > CRL_WARN_DAYS else "fail"
    return Finding("CRL-FRESH", host, status, f"the CRL's nextUpdate is {days:.1f} days away (warn under "
                   f"{CRL_WARN_DAYS})", {"days_left": round(days, 2)})


def _is(key: str):
    return lambda facts, host, collected: key in facts


CHECKS = [
    ("HOST-SERVICE-USER", _is("mosquitto"), service_user),
    ("HOST-SYSTEMD-EXPOSURE", _is("mosquitto"), exposure),
    ("HOST-KEY-MODES", lambda f, h, c: True, key_modes),
    ("FW-TABLE-LOADED", _is("firewall"), table_loaded),
    ("FW-DEFAULT-POLICY", _is("firewall"), default_policy),
    ("VPN-HANDSHAKE", _is("wireguard"), handshakes),
    ("LOG-RECEIVING", lambda f, h, c: "collector" in f or "shipping" in f, receiving),
    ("CRL-FRESH", lambda f, h, c: bool(f.get("mosquitto", {}).get("crl_pem")), crl_fresh),
]
