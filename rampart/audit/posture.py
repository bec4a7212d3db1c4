"""Posture: what an attacker or a device sees, probed from outside the broker.

The TLS protocol and suite checks run sslyze (its own virtualenv, .venv-sslyze, made by scripts/bootstrap): by
default through tlsscan.py, which finds the same suites in a few dozen handshakes, with --full-tls-scan sslyze's own
per-suite scan;
the MQTT checks speak MQTT with rampart.mqttprobe (raw CONNECT) and paho-mqtt. Every probe has a short timeout.
The audit publishes one non-retained QoS 1 message per broker, on a topic of its own under a publisher's grant
(``<grant>/rampart-audit/<nonce>``), to prove that an ordinary client subscribed to ``#`` does not get it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import ssl
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography import x509

from rampart import mqttprobe

from .model import AuditError, Context, Finding

PLAINTEXT_PORTS = (1883, 80, 8080, 9001)
CERT_WARN_DAYS = 30
WEAK_CIPHER_MARKERS = ("NULL", "EXPORT", "RC4", "3DES", "DES_", "MD5", "anon", "_CBC_SHA")
SSLYZE = Path(__file__).resolve().parents[2] / ".venv-sslyze" / "bin" / "sslyze"
TLSSCAN = Path(__file__).resolve().with_name("tlsscan.py")


def sslyze_path() -> str:
    found = os.environ.get("RAMPART_SSLYZE") or (str(SSLYZE) if SSLYZE.exists() else shutil.which("sslyze"))
    if not found:
        raise AuditError("sslyze is missing: run scripts/bootstrap (it makes .venv-sslyze), or set RAMPART_SSLYZE")
    return found


def sslyze_python() -> str:
    """The python sslyze is installed for (tlsscan.py imports sslyze): the one beside it in its virtualenv, else
    the interpreter its script names."""
    script = Path(sslyze_path())
    beside = script.parent / "python"
    if beside.exists():
        return str(beside)
    try:
        first = script.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        first = ""
    interpreter = first[2:].split() if first.startswith("#!") else []
    if interpreter and Path(interpreter[0]).name == "env" and len(interpreter) > 1:
        interpreter = [shutil.which(interpreter[1]) or ""]
    if not interpreter or not Path(interpreter[0]).exists():
        raise AuditError(f"cannot tell which python runs {script}: point RAMPART_SSLYZE at the sslyze of a "
                         "virtualenv (scripts/bootstrap makes .venv-sslyze)")
    return interpreter[0]


def target_description(target: str, cafile=None, username=None, password=None, certfile=None, keyfile=None,
                       server_name=None) -> dict:
    """A description of one broker Rampart did not deploy (scripts/audit --target HOST:PORT)."""
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise AuditError(f"--target {target!r}: give HOST:PORT, e.g. --target mqtt.example.net:8883")
    client = {"name": username or "audit", "username": username, "password": password, "auth": "password",
              "certfile": certfile, "keyfile": keyfile, "admin": False, "publish": [], "subscribe": [],
              "deny": [], "expect": "allowed"}
    return {"brokers": [{"name": target, "address": host.strip("[]"), "port": int(port),
                         "listeners": {"given": int(port)}, "tls_server_name": server_name or host.strip("[]")}],
            "ca_file": cafile, "clients": [client] if (username or certfile) else [], "target": True}


def run(ctx: Context, description: dict, profiles: dict[str, str]) -> list[Finding]:
    """Every broker's posture findings, the brokers side by side (each has its own firewall and meters)."""
    brokers = description.get("brokers", [])
    with ThreadPoolExecutor(max_workers=max(1, len(brokers))) as pool:
        per_broker = pool.map(lambda b: broker_findings(ctx, description, b,
                                                        ctx.profile or profiles.get(b["name"], "enhanced")), brokers)
        return [finding for findings in per_broker for finding in findings]


def classify(broker: dict) -> dict[str, list[int]]:
    """The broker's ports by what answers: TLS handshakes, plaintext MQTT (a CONNACK), neither. Every port is
    probed at once: a port the firewall drops costs its timeout once, not once per port."""
    listeners = set(broker["listeners"].values())

    def answer(port: int) -> str | None:
        if port in listeners:
            try:
                with mqttprobe.tls_context(None, verify=False).wrap_socket(_socket(broker["address"], port)):
                    return "tls"
            except (OSError, ssl.SSLError):
                pass
        reply = mqttprobe.raw_connect(broker["address"], port, None, None, timeout=3)
        return "plain" if reply is not None and reply.outcome == "connack" else None

    ports = sorted(listeners | set(PLAINTEXT_PORTS))
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        answers = dict(zip(ports, pool.map(answer, ports), strict=True))
    return {kind: [p for p in ports if answers[p] == kind] for kind in ("tls", "plain")}


def broker_findings(ctx: Context, description: dict, broker: dict, profile: str) -> list[Finding]:
    """Every posture finding of one broker. The MQTT probes run first; then the TLS scan of one TLS port (Rampart
    renders one TLS configuration for every listener) beside the vantage points' reach probes, which come from
    other addresses. The scan's handshakes count against this machine's per-source meter at the perimeter (a few
    dozen; sslyze's full scan, a few hundred, exhausts it), so no MQTT probe from here runs beside or after it."""
    host, wants = broker["name"], lambda check: ctx.wants(check, profile)
    ports = classify(broker)
    out = []
    if wants("TLS-CERT-CHAIN") or wants("TLS-CERT-EXPIRY"):
        chain, expiry = certificate(host, broker, description.get("ca_file"), ports["tls"])
        out += [f for f in (chain, expiry) if wants(f.check)]
    if wants("MQTT-NO-PLAINTEXT"):
        out.append(plaintext(host, ports["plain"]))
    if wants("MQTT-NO-ANONYMOUS"):
        out.append(anonymous(host, broker, description.get("ca_file"), ports))
    if wants("CRL-REVOKED-REFUSED") and any(c["expect"] == "revoked" for c in description.get("clients", [])):
        out.append(revoked(host, broker, description))
    if wants("ACL-SYS-DENIED") or wants("ACL-WILDCARD-DENIED"):
        out += [f for f in acl(host, broker, description, ports) if wants(f.check)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        scanning = pool.submit(lambda: {port: sslyze_scan(broker, port, description, ctx.full_tls_scan)
                                        for port in ports["tls"][:1]}) \
            if wants("TLS-PROTOCOLS") or wants("TLS-CIPHERS") else None
        if wants("NET-REACH") and description.get("vantage_points"):
            out.append(reach(host, broker, description["vantage_points"]))
        scans = scanning.result() if scanning is not None else {}
    if wants("TLS-PROTOCOLS"):
        out.append(protocols(host, scans, profile))
    if wants("TLS-CIPHERS"):
        out.append(ciphers(host, scans))
    return out


def sslyze_scan(broker: dict, port: int, description: dict | None = None, full: bool = False) -> dict:
    """{'protocols': {version: [accepted suites]}} or {'error': ...} for ``port``. By default from tlsscan.py:
    sslyze's connections, a few dozen handshakes, run by sslyze's python; a client certificate from the description
    lets a listener that requires one complete them. ``full``: sslyze's own scan, one handshake per suite."""
    target = f"{broker['tls_server_name']}:{port}"
    if full:
        cmd = [sslyze_path(), "--json_out=-", "--mozilla_config=disable", "--sslv2", "--sslv3", "--tlsv1",
               "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", f"{target}{{{broker['address']}}}"]
    else:
        cmd = [sslyze_python(), str(TLSSCAN), broker["address"], str(port), broker["tls_server_name"],
               *_scan_credentials(description or {})]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600 if full else 120, check=False)
    try:
        doc = json.loads(proc.stdout)
        return parse_sslyze(doc) if full else doc
    except (json.JSONDecodeError, KeyError, IndexError) as exc:
        return {"error": f"sslyze gave no result for {target}: {exc}: {proc.stderr.strip()[-200:]}"}


def _scan_credentials(description: dict) -> list[str]:
    """The certificate and key of an admitted client, so a listener that requires one completes the handshakes."""
    for c in description.get("clients", []):
        if c["expect"] == "allowed" and c.get("certfile") and c.get("keyfile") and Path(c["certfile"]).exists():
            return [c["certfile"], c["keyfile"]]
    return []


def parse_sslyze(doc: dict) -> dict:
    """{'protocols': {name: [accepted suites]}} or {'error': ...} from sslyze's JSON output."""
    result = doc["server_scan_results"][0]
    if result.get("scan_status") != "COMPLETED":
        return {"error": f"sslyze could not connect: {result.get('connectivity_error_trace') or result['scan_status']}"}
    names = {"ssl_2_0_cipher_suites": "SSLv2", "ssl_3_0_cipher_suites": "SSLv3", "tls_1_0_cipher_suites": "TLSv1.0",
             "tls_1_1_cipher_suites": "TLSv1.1", "tls_1_2_cipher_suites": "TLSv1.2",
             "tls_1_3_cipher_suites": "TLSv1.3"}
    protocols = {}
    for key, name in names.items():
        attempt = result["scan_result"][key]
        if attempt.get("status") != "COMPLETED":
            return {"error": f"sslyze's {name} scan did not complete: {attempt.get('error_trace') or attempt}"}
        protocols[name] = sorted(s["cipher_suite"]["name"] for s in attempt["result"]["accepted_cipher_suites"])
    return {"protocols": protocols}


def _tls_error(host: str, check: str, tls: dict) -> Finding | None:
    errors = [r["error"] for r in tls.values() if "error" in r]
    return Finding(check, host, "error", errors[0]) if errors else None


def protocols(host: str, tls: dict, profile: str) -> Finding:
    if not tls:
        return Finding("TLS-PROTOCOLS", host, "fail", "no listener speaks TLS")
    error = _tls_error(host, "TLS-PROTOCOLS", tls)
    if error:
        return error
    allowed = {"TLSv1.3"} if profile == "high" else {"TLSv1.2", "TLSv1.3"}
    offered = {port: sorted(p for p, suites in r["protocols"].items() if suites) for port, r in tls.items()}
    bad = {port: sorted(set(v) - allowed) for port, v in offered.items() if set(v) - allowed}
    if bad:
        return Finding("TLS-PROTOCOLS", host, "fail", f"offers {bad} (profile {profile} allows {sorted(allowed)})",
                       {"offered": offered})
    used = {p for versions in offered.values() for p in versions}
    return Finding("TLS-PROTOCOLS", host, "pass", f"offers only {sorted(used)}",
                   {"offered": offered})


def ciphers(host: str, tls: dict) -> Finding:
    if not tls:
        return Finding("TLS-CIPHERS", host, "fail", "no listener speaks TLS")
    error = _tls_error(host, "TLS-CIPHERS", tls)
    if error:
        return error
    weak = sorted({s for r in tls.values() for suites in r["protocols"].values() for s in suites
                   if any(m in s for m in WEAK_CIPHER_MARKERS) or s.startswith("TLS_RSA_")})
    if weak:
        return Finding("TLS-CIPHERS", host, "fail", "weak suites offered: " + ", ".join(weak), {"weak": weak})
    return Finding("TLS-CIPHERS", host, "pass", "only forward-secret AEAD suites")


def _server_chain(broker: dict, ca_file: str | None, port: int) -> tuple[list[x509.Certificate], str | None]:
    """The certificates the broker presents, and why they do not verify against ca_file (None: they do)."""
    ctx = mqttprobe.tls_context(None, verify=False)
    with ctx.wrap_socket(_socket(broker["address"], port), server_hostname=broker["tls_server_name"]) as sock:
        chain = [x509.load_der_x509_certificate(sock.getpeercert(binary_form=True))]  # the leaf
    if not ca_file:
        return chain, "no CA file given (--cafile): the chain was not verified"
    try:
        verify = mqttprobe.tls_context(ca_file)
        with verify.wrap_socket(_socket(broker["address"], port), server_hostname=broker["tls_server_name"]):
            return chain, None
    except ssl.SSLError as exc:
        return chain, f"does not verify against {ca_file} for {broker['tls_server_name']}: {exc.reason or exc}"


def _socket(address: str, port: int) -> socket.socket:
    return socket.create_connection((address, port), timeout=5)


def certificate(host: str, broker: dict, ca_file: str | None, tls_ports: list[int]) -> tuple[Finding, Finding]:
    if not tls_ports:
        none = "no listener speaks TLS: no certificate"
        return Finding("TLS-CERT-CHAIN", host, "fail", none), Finding("TLS-CERT-EXPIRY", host, "fail", none)
    try:
        chain, problem = _server_chain(broker, ca_file, tls_ports[0])
    except OSError as exc:
        err = f"no TLS handshake with {broker['address']}: {exc}"
        return Finding("TLS-CERT-CHAIN", host, "error", err), Finding("TLS-CERT-EXPIRY", host, "error", err)
    leaf = chain[0]
    days = (leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    expiry = Finding("TLS-CERT-EXPIRY", host, "pass" if days > CERT_WARN_DAYS else "fail",
                     f"the server certificate expires in {days:.0f} days (warn under {CERT_WARN_DAYS})",
                     {"days_left": round(days, 1)})
    subject = leaf.subject.rfc4514_string()
    chain_finding = Finding("TLS-CERT-CHAIN", host, "fail" if problem else "pass",
                            f"{subject} {problem}" if problem else f"{subject} chains to the CA and names "
                            f"{broker['tls_server_name']}")
    return chain_finding, expiry


def plaintext(host: str, plain: list[int]) -> Finding:
    if plain:
        return Finding("MQTT-NO-PLAINTEXT", host, "fail", f"plaintext MQTT answers on {plain}", {"ports": plain})
    return Finding("MQTT-NO-PLAINTEXT", host, "pass", f"no plaintext MQTT on {list(PLAINTEXT_PORTS)} or any listener")


def anonymous(host: str, broker: dict, ca_file: str | None, ports: dict[str, list[int]]) -> Finding:
    accepted = [f"{p} (plaintext)" for p in ports["plain"]
                if mqttprobe.raw_connect(broker["address"], p, None, None, timeout=5).accepted]
    for port in ports["tls"]:
        ctx = mqttprobe.tls_context(ca_file, verify=bool(ca_file))
        if mqttprobe.raw_connect(broker["address"], port, ctx, broker["tls_server_name"], timeout=5).accepted:
            accepted.append(f"{port} (TLS)")
    if accepted:
        return Finding("MQTT-NO-ANONYMOUS", host, "fail", f"anonymous CONNECT accepted on {accepted}")
    return Finding("MQTT-NO-ANONYMOUS", host, "pass", "anonymous CONNECT refused on every listener")


def revoked(host: str, broker: dict, description: dict) -> Finding:
    listeners = broker["listeners"]
    port = listeners.get("certificate", listeners.get("certificate+password"))
    admitted = []
    for client in (c for c in description["clients"] if c["expect"] == "revoked" and c["certfile"]):
        if port is None or not Path(client["certfile"]).exists():
            continue
        ctx = mqttprobe.tls_context(description["ca_file"], client["certfile"], client["keyfile"])
        if mqttprobe.raw_connect(broker["address"], port, ctx, broker["tls_server_name"]).accepted:
            admitted.append(client["name"])
    if admitted:
        return Finding("CRL-REVOKED-REFUSED", host, "fail", f"revoked clients still admitted: {admitted}")
    return Finding("CRL-REVOKED-REFUSED", host, "pass", "every revoked client is refused")


def _reader(description: dict, anonymous_ok: bool) -> dict | None:
    """An ordinary client to probe with: a non-admin client with a password (and its certificate when its listener
    requires both), the --target credential, or anonymous."""
    for c in description.get("clients", []):
        if c["expect"] == "allowed" and not c["admin"] and c["auth"] != "certificate" and c.get("password"):
            return c
    if anonymous_ok:
        return {"name": "anonymous", "username": None, "password": None, "subscribe": [], "publish": []}
    return None


def _session(broker: dict, port: int, description: dict, client: dict, tls: bool) -> mqttprobe.Session:
    ctx = mqttprobe.tls_context(description.get("ca_file"), client.get("certfile"), client.get("keyfile"),
                                verify=bool(description.get("ca_file"))) if tls else None
    return mqttprobe.session(broker["address"], port, ctx, broker["tls_server_name"], client["username"],
                             client["password"])


def acl(host: str, broker: dict, description: dict, ports: dict[str, list[int]]) -> list[Finding]:
    anonymous_ok = any(mqttprobe.raw_connect(broker["address"], p, None, None, timeout=3).accepted
                       for p in ports["plain"])
    client = _reader(description, anonymous_ok)
    tls = bool(ports["tls"])
    served = broker["listeners"].get((client or {}).get("auth")) if tls else None
    port = served or (ports["tls"] or ports["plain"] or [None])[0]
    if client is None or port is None:
        why = "no ordinary client to probe with (give --username and --password-env)"
        return [Finding("ACL-SYS-DENIED", host, "error", why), Finding("ACL-WILDCARD-DENIED", host, "error", why)]
    reader = _session(broker, port, description, client, tls)
    try:
        reader.subscribe("$SYS/#")
        reader.subscribe("#")
        probe = _publish_probe(broker, port, description, client, tls)
        got = reader.received(wait=2.0)
    finally:
        reader.close()
    sys_topics = sorted({t for t, _ in got if t.startswith("$SYS")})
    foreign = sorted({t for t, _ in got if not t.startswith("$SYS") and not _granted(t, client["subscribe"])})
    name = client["name"]
    return [
        Finding("ACL-SYS-DENIED", host, "fail" if sys_topics else "pass",
                f"{name} read {sys_topics[:3]}" if sys_topics else f"{name} gets no $SYS topic"),
        Finding("ACL-WILDCARD-DENIED", host, "fail" if foreign else "pass",
                f"{name} read topics outside its grants: {foreign[:3]}" if foreign else
                f"{name} subscribed to # and got only its own topics (not the audit's probe on {probe})"),
    ]


def _writer(description: dict, reader: dict) -> tuple[dict, str]:
    """Who publishes the probe, and where: another client under its own grant, else the reader on rampart-audit/."""
    nonce = uuid.uuid4().hex[:12]
    for c in description.get("clients", []):
        grants = [g for g in c["publish"] if g.endswith("/#")]
        same_listener = c["auth"] == reader.get("auth")
        if c is reader or not same_listener or not c.get("password") or c["expect"] != "allowed" or not grants:
            continue
        topic = f"{grants[0][:-2]}/rampart-audit/{nonce}"
        if not _granted(topic, reader["subscribe"]):
            return c, topic
    return reader, f"rampart-audit/{nonce}"


def _publish_probe(broker: dict, port: int, description: dict, reader: dict, tls: bool) -> str:
    """One QoS 1 message on a topic of the audit's own that the reader may not read; returns the topic."""
    client, topic = _writer(description, reader)
    writer = _session(broker, port, description, client, tls)
    try:
        writer.publish(topic, b"rampart-audit", qos=1)
    finally:
        writer.close()
    return topic


def _granted(topic: str, filters: list[str]) -> bool:
    return any(_matches(f, topic) for f in filters)


def _matches(pattern: str, topic: str) -> bool:
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


def reach(host: str, broker: dict, points: list[dict]) -> Finding:
    # A point that names its broker (a lab of several sites) is this broker's only; one that names none is every one's.
    points = [point for point in points if point.get("broker") in (None, host)]
    probes = [(point, point.get("broker_address") or broker["address"], port)
              for point in points for port in sorted(set(broker["listeners"].values()))]
    with ThreadPoolExecutor(max_workers=len(probes) or 1) as pool:
        reached = list(pool.map(lambda probe: _reaches(probe[0]["container"], probe[1], probe[2]), probes))
    wrong = [f"{point['name']} {'reaches' if got else 'cannot reach'} {address}:{port}"
             for (point, address, port), got in zip(probes, reached, strict=True) if got != point["can_reach_broker"]]
    if wrong:
        return Finding("NET-REACH", host, "fail", "; ".join(wrong), {"wrong": wrong})
    return Finding("NET-REACH", host, "pass", f"{len(points)} vantage points reach exactly what they should")


def _reaches(container: str, address: str, port: int) -> bool:
    code = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
            "except OSError:\n sys.exit(1)")
    proc = subprocess.run(["docker", "exec", container, "python3", "-c", code, address, str(port)],
                          capture_output=True, timeout=30, check=False)
    return proc.returncode == 0
