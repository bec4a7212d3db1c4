"""--target: a broker Rampart did not deploy. A stock Debian Mosquitto, anonymous on 1883 as guide 004 starts
(before hardening), fails exactly the checks an insecure broker must fail; its TLS listener, which still allows
TLS 1.1 and CBC suites (a certificate from a throw-away CA), fails the TLS checks with exactly those versions."""

from __future__ import annotations

import subprocess

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import pki

from tests.support.wait import wait_for

from .conftest import run_audit

STOCK = "rampart-audit-stock"
IMAGE = "rampart/debian12:latest"
# Guide 004's insecure starting point: a plaintext listener anyone may use; and a TLS listener whose minimum is
# TLS 1.1, with every suite OpenSSL still has (security level 0 lets Debian's OpenSSL 3 speak TLS 1.1).
CONFIG = ("listener 1883\nallow_anonymous true\n"
          "listener 8883\ncertfile /tmp/tls/chain.pem\nkeyfile /tmp/tls/key.pem\n"
          "tls_version tlsv1.1\nciphers ALL:@SECLEVEL=0\n")


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True)


def logs() -> str:
    res = subprocess.run(["docker", "logs", STOCK], capture_output=True, text=True, check=False)
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def stock_pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("stock-pki")
    pki.ensure_ca(d)
    pki.issue(d, [{"name": "stock", "profile": "server", "dns_names": ["stock.test"], "ip_addresses": []}])
    # A throw-away key, read by mosquitto after it drops root.
    (d / "servers/stock").chmod(0o755)
    (d / "servers/stock/key.pem").chmod(0o644)
    return d


@pytest.fixture(scope="module")
def stock_broker(stock_pki) -> str:
    """The address of Debian's mosquitto with the insecure config, in a throw-away container."""
    subprocess.run(["docker", "rm", "-f", STOCK], capture_output=True, check=False)
    script = (f"apt-get update -qq && apt-get install -y -qq --no-install-recommends mosquitto >/dev/null"
              f" && printf '{CONFIG}' > /tmp/stock.conf && exec mosquitto -c /tmp/stock.conf")
    docker("create", "--name", STOCK, "--label", "org.rampart.owner=audit-test", IMAGE, "bash", "-c", script)
    try:
        docker("cp", str(stock_pki / "servers/stock"), f"{STOCK}:/tmp/tls")
        docker("start", STOCK)
        address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", STOCK).stdout
        wait_for(lambda: " running" in logs(), timeout=240, interval=2,
                 what="the stock broker to run (mosquitto logs 'version ... running' once every listener is up)")
        yield address.strip()
    finally:
        subprocess.run(["docker", "rm", "-f", STOCK], capture_output=True, check=False)


INSECURE = {"TLS-PROTOCOLS", "TLS-CIPHERS", "TLS-CERT-CHAIN", "TLS-CERT-EXPIRY", "MQTT-NO-PLAINTEXT",
            "MQTT-NO-ANONYMOUS", "ACL-SYS-DENIED", "ACL-WILDCARD-DENIED"}


def test_a_stock_anonymous_broker_fails_the_expected_checks(stock_broker, tmp_path):
    target = f"{stock_broker}:1883"
    audit = run_audit(tmp_path, "--target", target)
    assert audit.rc == 1, audit.output[-3000:]
    assert audit.failing == {(check, target) for check in INSECURE}, audit.output[-3000:]
    assert {f["check"] for f in audit.findings} == INSECURE, "a posture check did not run against the target"
    audit.validate()


def test_a_tls_listener_that_allows_tls_1_1_and_cbc_suites_fails_the_tls_checks(stock_broker, stock_pki, tmp_path):
    target = f"{stock_broker}:8883"
    audit = run_audit(tmp_path, "--target", target, "--cafile", str(stock_pki / "ca/chain.pem"),
                      "--server-name", "stock.test")
    assert audit.rc == 1, audit.output[-3000:]
    # The chain and names are right (the given CA, the given name). The rest of the host is as insecure as
    # before: anonymous on both listeners, and the plaintext port the audit always tries on the target's host.
    assert audit.failing == {(check, target) for check in ("TLS-PROTOCOLS", "TLS-CIPHERS", "MQTT-NO-ANONYMOUS",
                                                            "MQTT-NO-PLAINTEXT", "ACL-SYS-DENIED",
                                                            "ACL-WILDCARD-DENIED")}, audit.output[-3000:]
    found = {f["check"]: f["message"] for f in audit.findings}
    assert "TLSv1.1" in found["TLS-PROTOCOLS"] and "TLSv1.0" not in found["TLS-PROTOCOLS"], found["TLS-PROTOCOLS"]
    assert "CBC" in found["TLS-CIPHERS"], found["TLS-CIPHERS"]
