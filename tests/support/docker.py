"""Commands inside the deployment's containers, and testinfra hosts for them."""

from __future__ import annotations

import subprocess

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
