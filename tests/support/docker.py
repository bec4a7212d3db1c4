"""Commands inside the deployment's containers, and testinfra hosts for them."""

from __future__ import annotations

import subprocess

import testinfra


def docker_exec(container: str, *argv: str, stdin: str | None = None, check: bool = False,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``argv`` in ``container`` (stdin fed when given); raise with its output when check is set and it fails."""
    res = subprocess.run(["docker", "exec", "-i", container, *argv], input=stdin, capture_output=True, text=True,
                         timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"{container}: {argv} failed ({res.returncode}): {res.stdout}{res.stderr}")
    return res


def sh(container: str, script: str, check: bool = True, timeout: float = 120) -> str:
    """A bash script's stdout in ``container``."""
    return docker_exec(container, "bash", "-c", script, check=check, timeout=timeout).stdout


def hostname(container: str) -> str:
    """The name a host logs under."""
    return sh(container, "hostname").strip()


def container_host(container: str):
    """A testinfra host reached with docker exec."""
    return testinfra.get_host(f"docker://{container}")
