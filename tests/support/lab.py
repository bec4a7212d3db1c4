"""The deployment description every suite reads: one format, .lab/lab.json's (see the README).

RAMPART_TARGET names the file (default .lab/lab.json); scripts/lab up and the Molecule scenarios'
verify playbooks write it from the inventory that drove the deployment. Keys a suite needs beyond the
common ones are added under their own name (``collector``, ``fail2ban``, ``vantage_points``,
``perimeter``); existing keys keep their meaning.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from . import REPO


def target_path() -> Path:
    return Path(os.environ.get("RAMPART_TARGET", REPO / ".lab" / "lab.json"))


@functools.cache
def load() -> dict:
    """The description; stops the session (exit 2) when there is none."""
    path = target_path()
    if not path.exists():
        pytest.exit(f"no deployment description at {path}: run scripts/lab up or set RAMPART_TARGET", 2)
    return json.loads(path.read_text())


def require(*keys: str) -> dict:
    """The description, stopping the session when it lacks a key the suite needs."""
    lab = load()
    for key in keys:
        if key not in lab:
            pytest.exit(f"{target_path()} has no {key!r} entry: the deployment does not have what this suite tests", 2)
    return lab


def brokers(lab: dict) -> list[dict]:
    """The brokers, each with its ``perimeter.brokers.<name>`` entry merged in when the description has one."""
    extra = (lab.get("perimeter") or {}).get("brokers") or {}
    return [{**b, **extra.get(b["name"], {})} for b in lab["brokers"]]


def vantage_point(lab: dict, role: str) -> dict:
    """The vantage point of a role (segment_client, vpn_client, outsider)."""
    for point in lab.get("vantage_points") or []:
        if point["role"] == role:
            return point
    pytest.fail(f"the description has no vantage point with role {role!r}")


def client(lab: dict, predicate, what: str) -> dict:
    """The first allowed client that satisfies ``predicate``; fails the test when the deployment has none."""
    for c in lab["clients"]:
        if c["expect"] == "allowed" and predicate(c):
            return c
    pytest.fail(f"the deployment defines no {what}; the lab inventory must show every feature")


def publisher(lab: dict) -> dict:
    """A password client that may publish but is not an admin."""
    return client(lab, lambda c: c["auth"] == "password" and not c["admin"] and c["publish"], "password publisher")


def reader(lab: dict) -> dict:
    """A password client that may only read."""
    return client(lab, lambda c: c["auth"] == "password" and not c["admin"] and not c["publish"] and c["subscribe"],
                  "read-only client")


def admin(lab: dict) -> dict:
    """A password client with admin: true."""
    return client(lab, lambda c: c["admin"] and c["auth"] == "password", "admin client")


def cert_client(lab: dict) -> dict:
    return client(lab, lambda c: c["auth"] == "certificate", "certificate client")


def pki_dir(lab: dict) -> Path:
    """The deployment's pki_dir (ca_file is <pki_dir>/ca/ca.crt)."""
    return Path(lab["ca_file"]).parent.parent


def inventory_clients(lab: dict) -> list[dict]:
    """mosquitto_clients rebuilt from the description (which carries the deployment's demo passwords)."""
    out = []
    for c in lab["clients"]:
        entry = {"name": c["name"], "auth": c["auth"], "admin": c["admin"], "publish": c["publish"],
                 "subscribe": c["subscribe"], "deny": c.get("deny", [])}
        if c["expect"] == "revoked":
            entry["revoked"] = True
        if c["auth"] == "password":
            if not c["password"]:
                pytest.fail("the description carries no passwords (rampart_describe_passwords is false)")
            entry["password"] = c["password"]
        out.append(entry)
    return out
