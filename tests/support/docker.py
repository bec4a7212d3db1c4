"""Commands inside the deployment's containers, and testinfra hosts for them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import testinfra


def docker_exec(container: str, *argv: str, stdin: str | None = None, check: bool = False,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``argv`` in ``container`` (stdin fed when given); raise with its output when check is set and it fails."""
    interactive = ["-i"] if stdin is not None else []
    res = subprocess.run(["docker", "exec", *interactive, container, *argv], input=stdin,
                         stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"{container}: {argv} failed ({res.returncode}): {res.stdout}{res.stderr}")
    return res


def docker_exec_ok(container: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """docker_exec that raises with the command's output when it fails."""
    return docker_exec(container, *argv, check=True, timeout=timeout)


def sh(container: str, script: str, check: bool = True, timeout: float = 120) -> str:
    """A bash script's stdout in ``container``."""
    return docker_exec(container, "bash", "-c", script, check=check, timeout=timeout).stdout


def hostname(container: str) -> str:
    """The name a host logs under."""
    return sh(container, "hostname").strip()


def container_host(container: str):
    """A testinfra host reached with docker exec."""
    return testinfra.get_host(f"docker://{container}")


# The probe run inside a container with its own python3 (tests/support/inprobe.py: tcp, hold, mqtt).
PROBE = (Path(__file__).with_name("inprobe.py")).read_text()


def probe(container: str, *args: str, timeout: float = 60) -> dict:
    """Run inprobe.py inside ``container`` and return its JSON answer."""
    res = docker_exec(container, "python3", "-", *[str(a) for a in args], stdin=PROBE, timeout=timeout)
    assert res.returncode == 0, f"probe in {container} failed: {res.stderr}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def tcp(container: str, address: str, port: int, timeout: float = 2.0, source: str | None = None) -> str:
    """One TCP connection from inside ``container``: open, refused, timeout or unreachable."""
    args = ["tcp", address, port, timeout] + ([source] if source else [])
    return probe(container, *args)["result"]
