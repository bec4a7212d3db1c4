"""No package archive or registry host name is written anywhere in the repository.

Every machine reaches its archives through its own configuration (apt sources, pip config, Docker's daemon
settings): the lab and the roles read the Debian archive from the machine's apt sources
(module_utils.apt_sources), pip uses its own config. A name written here would be used on machines that
cannot reach it. This file's own list is the only allowed mention.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

HOSTS = (
    # Debian and Ubuntu archives
    "deb.debian.org", "security.debian.org", "ftp.debian.org", "httpredir.debian.org", "http.debian.net",
    "snapshot.debian.org", "archive.debian.org", "archive.ubuntu.com", "security.ubuntu.com", "ports.ubuntu.com",
    # Python
    "pypi.org", "pypi.python.org", "files.pythonhosted.org", "test.pypi.org",
    # container registries
    "registry-1.docker.io", "index.docker.io", "registry.hub.docker.com", "hub.docker.com", "download.docker.com",
    "ghcr.io", "quay.io", "gcr.io", "registry.k8s.io", "mcr.microsoft.com", "public.ecr.aws",
    # Ansible, JavaScript, Go, Rust, Ruby, Java
    "galaxy.ansible.com", "registry.npmjs.org", "registry.yarnpkg.com", "proxy.golang.org", "sum.golang.org",
    "index.crates.io", "static.crates.io", "rubygems.org", "repo.maven.apache.org", "repo1.maven.org",
    # third-party apt repositories
    "deb.nodesource.com", "packages.cloud.google.com", "apt.releases.hashicorp.com",
)
# Country mirrors of the Debian archive (ftp.<two-letter country>.debian.org).
PATTERNS = [re.compile(r"(?<![\w.-])" + re.escape(h) + r"(?![\w-])", re.I) for h in HOSTS]
PATTERNS.append(re.compile(r"(?<![\w.-])ftp\d?\.[a-z]{2}\.debian\.org", re.I))


def repository_files() -> list[Path]:
    """Tracked files, plus new files not yet added that git does not ignore."""
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    return [ROOT / name for name in sorted(set(out.decode().split("\0"))) if name]


def host_names_in(text: str) -> list[str]:
    return [m.group(0) for pattern in PATTERNS for m in pattern.finditer(text)]


def test_patterns_find_host_names_and_leave_package_names():
    # The fixtures are built from HOSTS, the only place this file names an archive.
    for host in HOSTS:
        assert host_names_in(f"URIs: http://{host}/debian") == [host]
        # A longer name that merely contains it (another domain, a package name) is not it.
        assert host_names_in(f"http://mirror-of-{host}/debian http://{host}-cache/ x.{host}") == []
    country_mirror = next(h for h in HOSTS if h.startswith("ftp.")).replace("ftp.", "ftp.de.", 1)
    assert host_names_in(f"deb http://{country_mirror}/debian bookworm main") == [country_mirror]
    # Debian's package docker.io is not a registry.
    assert host_names_in("apt-get install docker.io") == []


def test_no_archive_or_registry_host_names_in_the_repository():
    files = [f for f in repository_files() if f.is_file() and f.relative_to(ROOT).as_posix() != THIS]
    assert len(files) > 100  # the scan really read the repository
    found = {}
    for path in files:
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        names = host_names_in(data.decode("utf-8", "replace"))
        if names:
            found[path.relative_to(ROOT).as_posix()] = sorted(set(names))
    assert found == {}, f"archive/registry host names written into the repository: {found}"
