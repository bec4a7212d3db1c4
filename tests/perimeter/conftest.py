"""Behavioural tests of the perimeter (issue 4), run from the control node against real containers.

What to test comes from the deployment description (tests/support/lab.py, the .lab/lab.json schema) named
by RAMPART_TARGET, with its ``vantage_points`` (segment_client, vpn_client, outsider) and its ``perimeter``
entry: per broker its segment, wan and VPN addresses and firewall settings (merged into the broker rows),
plus the exported-peer folder, the spare source network of the rate-limit test and the SSH key of the
control path. molecule/perimeter/verify.yml writes it.
  RAMPART_CONVERGE   JSON list: the command that converges the same hosts (the tests run its
                     ansible-playbook and inventory on the perimeter only, adding arguments)
Probes run inside the vantage-point containers (docker exec + the container's python3, see tests/support/inprobe.py),
so each one comes from that container's own address.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rampart import results
from tests.support import PLAYBOOKS, ansible_env
from tests.support import lab as description
from tests.support.docker import container_host, docker_exec, probe
from tests.support.wait import wait_for

DESC = description.require("perimeter", "vantage_points")
BROKERS = description.brokers(DESC)
SEGMENT_CLIENT = description.vantage_point(DESC, "segment_client")
VPN_CLIENT = description.vantage_point(DESC, "vpn_client")
OUTSIDER = description.vantage_point(DESC, "outsider")
PERIMETER = DESC["perimeter"]


CA_IN_CONTAINERS = "/root/rampart-perimeter-ca.crt"


@pytest.fixture(scope="session", autouse=True)
def ca_in_vantage_points():
    """The probes verify the broker with the deployment's CA: copy it into each client container."""
    ca = Path(DESC["ca_file"]).read_text()
    for point in (SEGMENT_CLIENT, VPN_CLIENT):
        res = docker_exec(point["container"], "sh", "-c", f"cat > {CA_IN_CONTAINERS}", stdin=ca)
        assert res.returncode == 0, res.stderr


@pytest.fixture(scope="session")
def desc() -> dict:
    return DESC


def mqtt_ports(broker: dict) -> list[int]:
    """The broker's MQTT listener ports, the password listener first."""
    listeners = broker["listeners"]
    return [listeners["password"], *sorted(p for name, p in listeners.items() if name != "password")]


def mqtt_roundtrip(container: str, broker: dict, address: str, port: int | None = None) -> dict:
    """TLS + MQTT CONNECT with the admin client, then a subscribe/publish round trip, from ``container``."""
    client = description.admin(DESC)
    return probe(container, "mqtt", address, port or broker["listeners"]["password"], broker["tls_server_name"],
                 CA_IN_CONTAINERS, client["username"], client["password"], "commands/perimeter-probe")


@pytest.fixture(scope="module")
def broker_host(broker):
    return container_host(broker["container"])


host_of = container_host


def converge(*extra: str, timeout: float = 900) -> results.PlaybookResult:
    """Run site.yml --tags perimeter (validation always runs first) with RAMPART_CONVERGE's command and inventory.

    Only the perimeter: the changes these tests make are to the perimeter, and the broker's plays would
    add a minute of fact gathering per run. A test that passes its own --tags (e.g. nftables) narrows it.
    """
    cmd = json.loads(os.environ["RAMPART_CONVERGE"])
    tags = [] if "--tags" in extra else ["--tags", "perimeter"]
    cmd = [*cmd[:-1], str(PLAYBOOKS / "site.yml"), *tags, *extra]
    return results.run(cmd, env=ansible_env(), timeout=timeout)


def wait_until(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    return wait_for(predicate, timeout, interval, what)


def latest_handshakes(container: str, interface: str = "wg0") -> dict[str, int]:
    """Peer public key -> unix time of its latest handshake (0 = never)."""
    res = docker_exec(container, "wg", "show", interface, "latest-handshakes")
    assert res.returncode == 0, res.stderr
    return {line.split()[0]: int(line.split()[1]) for line in res.stdout.splitlines() if line.strip()}
