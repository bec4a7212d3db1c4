"""Published payloads and tried passwords never reach any log, on the broker or on the collector."""

from __future__ import annotations

import json
import re

from rampart import logprobe, mqttprobe
from tests.support.docker import docker_exec_ok, hostname, sh
from tests.support.wait import wait_for

from .conftest import marker


def _found(container: str, needle: str) -> list[str]:
    """Where needle occurs: the journal, /var/log (compressed files too) and the spool of the queues."""
    quoted = json.dumps(needle)
    places = []
    if sh(container, f"journalctl --no-pager -o cat | grep -c -F -- {quoted} || true").strip() != "0":
        places.append("journal")
    hits = sh(container, f"grep -r -l -a -F -- {quoted} /var/log /var/spool/rsyslog 2>/dev/null || true").split()
    gz = sh(container, f"find /var/log -name '*.gz' -exec zgrep -l -F -- {quoted} {{}} + 2>/dev/null || true").split()
    return places + hits + gz


def test_mosquitto_config_has_no_debug_or_all_log_type(lab):
    """The log_type lines of each broker's mosquitto.conf (a reading of the file, not of what Mosquitto logs)."""
    for broker in lab["brokers"]:
        conf = sh(broker["container"], "cat /etc/mosquitto/mosquitto.conf")
        types = re.findall(r"^log_type\s+(\S+)", conf, re.M)
        assert types, "no log_type lines: mosquitto would fall back to its defaults"
        assert not {"debug", "all"} & set(types), types


def test_payloads_and_passwords_stay_out_of_every_log(lab, broker, attacker, publisher, files, collector):
    payload = marker("payload-must-not-be-logged")
    password = marker("password-must-not-be-logged")
    name = marker("privacy-login")
    topic = publisher["publish"][0].replace("#", "privacy").replace("+", "x")

    ctx = mqttprobe.tls_context(lab["ca_file"])
    session = mqttprobe.session(broker["address"], broker["port"], ctx, broker["tls_server_name"],
                                username=publisher["username"], password=publisher["password"])
    try:
        session.publish(topic, payload, qos=1)
    finally:
        session.close()
    out = docker_exec_ok(attacker["container"], *logprobe.attacker_argv(
        "login", broker["address"], broker["port"], 1, username=publisher["username"], password=password,
        client_id=name)).stdout
    assert logprobe.attacker_results(out) == ["connack:5"], out

    # A line logged after both is on the collector, so the searches below see everything before it
    # (one sender's lines arrive in order); the search itself must find what is there.
    host = hostname(broker["container"])
    wait_for(lambda: files.count(host, "disconnected, not authorised") > 0, timeout=10, what="a failed login")
    fence = marker("privacy-fence")
    sh(broker["container"], f"logger -t rampart-privacy-test {fence}")
    wait_for(lambda: files.count(host, fence) == 1, timeout=10, what="the fence line on the collector")
    assert _found(broker["container"], fence), "the search cannot see the broker's log"

    for container in (broker["container"], collector["container"]):
        for secret in (payload, password):
            assert _found(container, secret) == [], f"{secret} is logged on {container}"
