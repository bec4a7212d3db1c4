"""Fixtures for the log pipeline tests (tests/logging), run from the control node.

What to test comes from the deployment description (.lab/lab.json schema) with its `collector`
entry ({container, log_dir, address, owner, group, file_mode, dir_mode}); molecule/logging's
verify.yml writes it. Hosts are reached with `docker exec` (their containers are named in it).
The attacker is a throw-away container on the deployment's Docker network (RAMPART_LOG_NETWORK),
started here and removed afterwards; the legitimate client is the control node itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ATTACKER = "rampart-log-attacker"
OWNER_LABEL = "org.rampart.owner=log-test"


def _target() -> dict:
    path = Path(os.environ.get("RAMPART_TARGET", REPO / ".lab" / "lab.json"))
    if not path.exists():
        pytest.exit(f"no deployment description at {path}: set RAMPART_TARGET", 2)
    data = json.loads(path.read_text())
    if "collector" not in data:
        pytest.exit(f"{path} has no collector entry: the deployment has no log collector", 2)
    return data


LAB = _target()


def dexec(container: str, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command in a container; raises with its output when it fails and check is set."""
    res = subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{container}: {argv} failed ({res.returncode}): {res.stdout}{res.stderr}")
    return res


def sh(container: str, script: str, check: bool = True, timeout: float = 120) -> str:
    return dexec(container, "bash", "-c", script, check=check, timeout=timeout).stdout


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() returns a truthy value; return it, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def marker(tag: str) -> str:
    return f"rampart-{tag}-{uuid.uuid4().hex[:12]}"


def pytest_generate_tests(metafunc):
    if "broker" in metafunc.fixturenames:
        metafunc.parametrize("broker", LAB["brokers"], ids=[b["name"] for b in LAB["brokers"]], scope="module")


@pytest.fixture(scope="session")
def lab() -> dict:
    return LAB


@pytest.fixture(scope="session")
def collector() -> dict:
    return LAB["collector"]


@pytest.fixture(scope="session")
def pki_dir() -> Path:
    return Path(LAB["ca_file"]).parent.parent


@pytest.fixture(scope="session")
def publisher() -> dict:
    for c in LAB["clients"]:
        if c["expect"] == "allowed" and c["auth"] == "password" and not c["admin"] and c["publish"]:
            return c
    pytest.fail("the deployment defines no password client that may publish")


class CollectorFiles:
    """The per-host files on the collector."""

    def __init__(self, collector: dict):
        self.container = collector["container"]
        self.log_dir = collector["log_dir"]

    def path(self, host: str) -> str:
        return f"{self.log_dir}/{host}/syslog.log"

    def count(self, host: str, text: str) -> int:
        out = sh(self.container, f"grep -c -F -- {json.dumps(text)} {self.path(host)} || true")
        return int(out.strip() or 0)


@pytest.fixture(scope="session")
def files(collector) -> CollectorFiles:
    return CollectorFiles(collector)


def hostname(container: str) -> str:
    """The name a host logs under (the per-host folder on the collector)."""
    return sh(container, "hostname").strip()


@pytest.fixture(scope="session")
def attacker(collector) -> dict:
    """A container on the deployment's network with its own address; removed after the session."""
    network = os.environ.get("RAMPART_LOG_NETWORK", "rampart-log")
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
