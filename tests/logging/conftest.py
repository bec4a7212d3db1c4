"""Fixtures for the log pipeline tests (tests/logging), run from the control node.

What to test comes from the deployment description (tests/support/lab.py, the .lab/lab.json schema) with
its `collector` entry ({container, log_dir, address, owner, group, file_mode, dir_mode}); Molecule default's
verify.yml writes it. Hosts are reached with `docker exec` (their containers are named in it).
The attacker is a throw-away container on the deployment's Docker network (RAMPART_LOG_NETWORK),
started here and removed afterwards; the legitimate client is the control node itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import lab as description
from tests.support.docker import sh

ATTACKER = "rampart-log-attacker"
OWNER_LABEL = "org.rampart.owner=log-test"

LAB = description.require("collector")


def marker(tag: str) -> str:
    return f"rampart-{tag}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def collector() -> dict:
    return LAB["collector"]


@pytest.fixture(scope="session")
def pki_dir() -> Path:
    """The infrastructure CA's folder (its own root; the log senders' and the collector's certificates, review M4):
    the only CA the collector trusts."""
    return Path(LAB["collector"]["ca_file"]).parent.parent


@pytest.fixture(scope="session")
def devices_pki_dir() -> Path:
    """The devices' CA's folder (the brokers' and the MQTT clients' certificates)."""
    return description.pki_dir(LAB)


class CollectorFiles:
    """The per-host files on the collector."""

    def __init__(self, collector: dict):
        self.container = collector["container"]
        self.log_dir = collector["log_dir"]
        self.quarantine_dir = collector["quarantine_dir"]

    def path(self, host: str) -> str:
        return f"{self.log_dir}/{host}/syslog.log"

    def count(self, host: str, text: str) -> int:
        return self.count_in(self.path(host), text)

    def quarantine_path(self, sender: str) -> str:
        """Lines from ``sender``'s address that claim another hostname (or, for "unknown-address", from any address
        the collector does not know)."""
        return f"{self.quarantine_dir}/{sender}/syslog.log"

    def quarantined(self, sender: str, text: str) -> int:
        return self.count_in(self.quarantine_path(sender), text)

    def count_in(self, path: str, text: str) -> int:
        out = sh(self.container, f"grep -c -F -- {json.dumps(text)} {path} || true")
        return int(out.strip() or 0)


@pytest.fixture(scope="session")
def files(collector) -> CollectorFiles:
    return CollectorFiles(collector)


@pytest.fixture(scope="session")
def attacker(collector) -> dict:
    """A container on the deployment's network with its own address; removed after the session."""
    network = os.environ.get("RAMPART_LOG_NETWORK", "rampart-molecule")
    image = os.environ.get("RAMPART_ATTACKER_IMAGE", "rampart/debian13:latest")
    subprocess.run(["docker", "rm", "-f", ATTACKER], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", ATTACKER, "--label", OWNER_LABEL, "--network", network,
                    image, "sleep", "1800"], capture_output=True, text=True, check=True)
    try:
        address = subprocess.run(
            ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", ATTACKER],
            capture_output=True, text=True, check=True).stdout.strip()
        yield {"container": ATTACKER, "address": address}
    finally:
        subprocess.run(["docker", "rm", "-f", ATTACKER], capture_output=True, check=False)
