"""--target: a broker Rampart did not deploy. A stock Debian Mosquitto, anonymous on 1883 as guide 004 starts
(before hardening), fails exactly the checks an insecure broker must fail."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.wait import wait_for

from .conftest import run_audit

STOCK = "rampart-audit-stock"
IMAGE = "rampart/debian12:latest"
# Guide 004's insecure starting point: a plaintext listener anyone may use.
CONFIG = "listener 1883\nallow_anonymous true\n"


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True)


def logs() -> str:
    res = subprocess.run(["docker", "logs", STOCK], capture_output=True, text=True, check=False)
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def stock_broker() -> str:
    """HOST:PORT of Debian's mosquitto with the insecure config, in a throw-away container."""
    subprocess.run(["docker", "rm", "-f", STOCK], capture_output=True, check=False)
    script = (f"apt-get update -qq && apt-get install -y -qq --no-install-recommends mosquitto >/dev/null"
              f" && printf '{CONFIG}' > /tmp/stock.conf && exec mosquitto -c /tmp/stock.conf")
    docker("run", "-d", "--name", STOCK, "--label", "org.rampart.owner=audit-test", IMAGE, "bash", "-c", script)
    try:
        address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", STOCK).stdout
        wait_for(lambda: "listen socket on port 1883" in logs(), timeout=240, interval=2,
                 what="the stock broker to listen")
        yield f"{address.strip()}:1883"
    finally:
        subprocess.run(["docker", "rm", "-f", STOCK], capture_output=True, check=False)


INSECURE = {"TLS-PROTOCOLS", "TLS-CIPHERS", "TLS-CERT-CHAIN", "TLS-CERT-EXPIRY", "MQTT-NO-PLAINTEXT",
            "MQTT-NO-ANONYMOUS", "ACL-SYS-DENIED", "ACL-WILDCARD-DENIED"}


def test_a_stock_anonymous_broker_fails_the_expected_checks(stock_broker, tmp_path):
    audit = run_audit(tmp_path, "--target", stock_broker)
    assert audit.rc == 1, audit.output[-3000:]
    assert audit.failing == {(check, stock_broker) for check in INSECURE}, audit.output[-3000:]
    assert {f["check"] for f in audit.findings} == INSECURE, "a posture check did not run against the target"
    audit.validate()
