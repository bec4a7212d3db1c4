"""``ansible-galaxy collection build`` packs the collection and nothing else; the tarball installs offline.

The lab step of scripts/test converges the lab from this tarball (``scripts/lab up --collection``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
BIN = Path(sys.executable).parent
TOP_LEVEL = {"roles", "plugins", "playbooks", "meta", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.json",
             "FILES.json"}


def galaxy(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ansible-galaxy"), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, check=True)


def test_tarball_holds_the_collection_only_and_installs_offline(tmp_path):
    galaxy("collection", "build", "--output-path", str(tmp_path), cwd=ROOT)
    tarball = tmp_path / f"rampart-mqtt-{GALAXY['version']}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert {n.split("/")[0] for n in names} == TOP_LEVEL
    assert [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".tar.gz"))] == []
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    assert sorted({n.split("/")[1] for n in names if n.startswith("roles/") and n.count("/") >= 1}) == roles
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "playbooks", "plugins", "roles"],
                             capture_output=True, text=True, check=True).stdout.split()
    missing = [f for f in tracked if f not in names and (ROOT / f).exists() and "__pycache__" not in f]
    assert missing == []

    (tmp_path / "ansible.cfg").write_text("[defaults]\n")  # nothing from the checkout's ansible.cfg
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "c"),
           "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    galaxy("collection", "install", "--offline", "-p", str(tmp_path / "c"), str(tarball), cwd=tmp_path, env=env)
    listed = json.loads(galaxy("collection", "list", "rampart.mqtt", "--format", "json", cwd=tmp_path, env=env).stdout)
    assert listed == {str(tmp_path / "c" / "ansible_collections"): {"rampart.mqtt": {"version": GALAXY["version"]}}}
