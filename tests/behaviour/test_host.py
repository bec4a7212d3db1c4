"""The broker host itself: process identity, sandbox, sockets and file ownership."""

import re

import pytest


def test_broker_runs_as_mosquitto_without_capabilities(host):
    pid = host.check_output("systemctl show --property=MainPID --value mosquitto")
    assert pid != "0"
    status = host.file(f"/proc/{pid}/status").content_string
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)
    assert host.user("mosquitto").uid == int(uid)
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^CapPrm:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status


def test_listening_sockets_are_exactly_the_configured_ones(host, broker):
    """Every TCP listener on the host is accounted for: the broker's TLS listeners and nothing else of its own.

    (ss cannot name the sandboxed broker's sockets from inside a container without CAP_SYS_PTRACE, so
    the test subtracts the known others, sshd and Docker's embedded DNS, instead.)
    """
    rows = host.check_output("ss -Hltnp").splitlines()
    others = {line.split()[3] for line in rows if '"sshd"' in line or line.split()[3].startswith("127.0.0.11:")}
    listening = {line.split()[3] for line in rows} - others
    expected = {f"{broker['address']}:{port}" for port in broker["listeners"].values()}
    if broker.get("local_listener_port"):
        expected.add(f"127.0.0.1:{broker['local_listener_port']}")
    assert listening == expected  # in particular no stray 0.0.0.0:1883 / [::]:1883
    assert not any(a.startswith(("0.0.0.0:", "*:", "[::]:")) for a in listening)


def test_systemd_exposure_at_most_2(host):
    out = host.check_output("systemd-analyze security --no-pager mosquitto.service")
    level = float(re.search(r"Overall exposure level for mosquitto.service: ([0-9.]+)", out).group(1))
    assert level <= 2.0, out.splitlines()[-1]


@pytest.mark.parametrize(("path", "user", "group", "mode"), [
    ("/etc/mosquitto/mosquitto.conf", "root", "mosquitto", 0o640),
    ("/etc/mosquitto/passwd", "mosquitto", "mosquitto", 0o600),
    ("/etc/mosquitto/acl", "mosquitto", "mosquitto", 0o600),
    ("/etc/mosquitto/certs/server.key", "root", "mosquitto", 0o640),
    ("/etc/mosquitto/certs", "root", "mosquitto", 0o750),
    ("/var/backups/rampart-mosquitto", "root", "root", 0o700),
])
def test_sensitive_files_owner_and_mode(host, path, user, group, mode):
    f = host.file(path)
    assert f.exists
    assert (f.user, f.group, f.mode) == (user, group, mode)


def test_password_file_holds_only_pbkdf2_lines_with_12_byte_salts(host, lab):
    text = host.file("/etc/mosquitto/passwd").content_string.splitlines()
    lines = [line for line in text if not line.startswith("#")]
    expected = {c["username"] for c in lab["clients"] if c["auth"] == "password"}
    assert {line.split(":", 1)[0] for line in lines} == expected
    for line in lines:
        assert re.fullmatch(r"[^:]+:\$7\$\d+\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", line), line
    # The rest are comments to the broker: the seals' header, and the seals (PBKDF2 too, never a secret in clear).
    comments = [line for line in text if line.startswith("#")]
    assert comments[0].startswith("# rampart: ") and len(comments) > 1
    for line in comments[1:]:
        assert re.fullmatch(r"# rampart-seal \d+ \$7\$\d+\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", line), line


def test_persistence_is_on(host):
    assert host.file("/var/lib/mosquitto").user == "mosquitto"
    assert "persistence true" in host.file("/etc/mosquitto/mosquitto.conf").content_string


LOCAL_PROBE = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(bytes.fromhex(sys.argv[2]))
print(s.recv(4).hex())
"""


def test_loopback_listener_when_enabled_still_requires_a_password(host, broker):
    """The optional plaintext listener is loopback-only (socket test above) and refuses anonymous clients."""
    port = broker.get("local_listener_port")
    if not port:
        assert not host.socket("tcp://127.0.0.1:1883").is_listening
        return
    from rampart import mqttprobe

    packet = mqttprobe.connect_packet("local-probe").hex()
    reply = host.check_output(f"python3 -c '{LOCAL_PROBE}' {port} {packet}")
    assert reply == "20020005"  # CONNACK, rc 5 not authorised


def test_journal_logs_connections_but_no_payloads_or_passwords(host, broker, lab):
    """Connection events are logged; the payloads and passwords the suite sent never are."""
    from rampart import mqttprobe

    from .conftest import open_session, probe

    publisher = next(c for c in lab["clients"] if c["auth"] == "password" and c["publish"] and not c["admin"])
    secret_payload, wrong_password = "payload-must-not-be-logged-7f3a", "password-must-not-be-logged-9c1e"
    s = open_session(broker, publisher)
    topic = publisher["publish"][0].replace("#", "log-probe")
    s.publish(topic, secret_payload)
    s.close()
    probe(broker, broker["listeners"]["password"], username=publisher["username"], password=wrong_password,
          protocol=mqttprobe.MQTT5)
    log = host.check_output("journalctl -u mosquitto --no-pager --output=cat")
    assert f"as {publisher['username']}" in log or f"u'{publisher['username']}'" in log
    assert secret_payload not in log
    assert wrong_password not in log
    assert publisher["password"] not in log
