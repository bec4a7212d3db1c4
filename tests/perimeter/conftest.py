"""Behavioural tests of the perimeter (issue 4), run from the control node against real containers.

What to test comes from a description written by the scenario's verify playbook:
  RAMPART_PERIMETER  path of the description (brokers with their segment, wan and VPN addresses and
                     firewall limits; the segment client, VPN client and outsider containers)
  RAMPART_CONVERGE   JSON list: the command that converges the same hosts (the tests run its
                     ansible-playbook and inventory on playbooks/perimeter.yml, adding arguments)
Probes run inside the vantage-point containers (docker exec + the container's python3, see inprobe.py),
so each one comes from that container's own address.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

HERE = Path(__file__).resolve().parent
PROBE = (HERE / "inprobe.py").read_text()


def _description() -> dict:
    path = os.environ.get("RAMPART_PERIMETER")
    if not path or not Path(path).exists():
        pytest.exit("RAMPART_PERIMETER does not name a perimeter description (run molecule verify -s perimeter)", 2)
    return json.loads(Path(path).read_text())


DESC = _description()


def pytest_generate_tests(metafunc):
    if "broker" in metafunc.fixturenames:
        metafunc.parametrize("broker", DESC["brokers"], ids=[b["name"] for b in DESC["brokers"]], scope="module")


CA_IN_CONTAINERS = "/root/rampart-perimeter-ca.crt"


@pytest.fixture(scope="session", autouse=True)
def ca_in_vantage_points():
    """The probes verify the broker with the deployment's CA: copy it into each client container."""
    ca = Path(DESC["ca_file"]).read_text()
    for key in ("segment_client", "vpn_client"):
        res = docker_exec(DESC[key]["container"], "sh", "-c", f"cat > {CA_IN_CONTAINERS}", stdin=ca)
        assert res.returncode == 0, res.stderr


@pytest.fixture(scope="session")
def desc() -> dict:
    return DESC


def docker_exec(container: str, *argv: str, stdin: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", "-i", container, *argv], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)


def probe(container: str, *args: str, timeout: float = 60) -> dict:
    """Run inprobe.py inside ``container`` and return its JSON answer."""
    res = docker_exec(container, "python3", "-", *[str(a) for a in args], stdin=PROBE, timeout=timeout)
    assert res.returncode == 0, f"probe in {container} failed: {res.stderr}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def tcp(container: str, address: str, port: int, timeout: float = 2.0, source: str | None = None) -> str:
    args = ["tcp", address, port, timeout] + ([source] if source else [])
    return probe(container, *args)["result"]


def mqtt_roundtrip(container: str, broker: dict, address: str, port: int | None = None) -> dict:
    """TLS + MQTT CONNECT with the probe client, then a subscribe/publish round trip, from ``container``."""
    client = DESC["probe_client"]
    return probe(container, "mqtt", address, port or broker["ports"][0], broker["tls_server_name"],
                 CA_IN_CONTAINERS, client["username"], client["password"], "commands/perimeter-probe")


@pytest.fixture(scope="module")
def broker_host(broker):
    return testinfra.get_host(f"docker://{broker['container']}")


def host_of(container: str):
    return testinfra.get_host(f"docker://{container}")


def converge(*extra: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run playbooks/perimeter.yml (validation included) with RAMPART_CONVERGE's command and inventory.

    Only the perimeter: the changes these tests make are to the perimeter, and the broker's plays would
    add a minute of fact gathering per run.
    """
    cmd = json.loads(os.environ["RAMPART_CONVERGE"])
    cmd = [*cmd[:-1], str(HERE.parents[1] / "playbooks" / "perimeter.yml"), *extra]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          check=False)


def wait_until(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {timeout:.0f}s (last: {last!r})")


def latest_handshakes(container: str, interface: str = "wg0") -> dict[str, int]:
    """Peer public key -> unix time of its latest handshake (0 = never)."""
    res = docker_exec(container, "wg", "show", interface, "latest-handshakes")
    assert res.returncode == 0, res.stderr
    return {line.split()[0]: int(line.split()[1]) for line in res.stdout.splitlines() if line.strip()}
