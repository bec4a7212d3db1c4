"""Behavioural tests against a deployed broker, from the control node.

What to test comes from a deployment description (the .lab/lab.json schema), written from the same
inventory that drove the deployment:
  RAMPART_TARGET     path of the description (default .lab/lab.json)
  RAMPART_INVENTORY  Ansible inventory of the same hosts (testinfra checks, converges)
  RAMPART_CONVERGE   JSON list: the command that converges the brokers (tests add -e @extra-vars);
                     default: playbooks/broker.yml on inventories/lab (the tests change only the broker)
scripts/test sets these for the lab; molecule/default/verify.yml for Molecule.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import testinfra

from rampart import mqttprobe

REPO = Path(__file__).resolve().parents[2]


def _target() -> dict:
    path = Path(os.environ.get("RAMPART_TARGET", REPO / ".lab" / "lab.json"))
    if not path.exists():
        pytest.exit(f"no deployment description at {path}: run scripts/lab up or set RAMPART_TARGET", 2)
    return json.loads(path.read_text())


LAB = _target()


def pytest_generate_tests(metafunc):
    if "broker" in metafunc.fixturenames:
        metafunc.parametrize("broker", LAB["brokers"], ids=[b["name"] for b in LAB["brokers"]], scope="module")


@pytest.fixture(scope="session")
def lab() -> dict:
    return LAB


def _pick(predicate, what: str) -> dict:
    for c in LAB["clients"]:
        if c["expect"] == "allowed" and predicate(c):
            return c
    pytest.fail(f"the deployment defines no {what}; the lab inventory must show every feature")


@pytest.fixture(scope="session")
def publisher() -> dict:
    """A password client that may publish but is not an admin."""
    return _pick(lambda c: c["auth"] == "password" and not c["admin"] and c["publish"], "password publisher")


@pytest.fixture(scope="session")
def reader() -> dict:
    """A password client that may only read."""
    return _pick(lambda c: c["auth"] == "password" and not c["admin"] and not c["publish"] and c["subscribe"],
                 "read-only client")


@pytest.fixture(scope="session")
def admin() -> dict:
    return _pick(lambda c: c["admin"] and c["auth"] == "password", "admin client")


@pytest.fixture(scope="session")
def cert_client() -> dict:
    return _pick(lambda c: c["auth"] == "certificate", "certificate client")


def concrete(topic_filter: str, tag: str | None = None) -> str:
    """A concrete topic that the filter matches, unique per call."""
    tag = tag or uuid.uuid4().hex[:8]
    levels = [("x" if lvl == "+" else lvl) for lvl in topic_filter.split("/")]
    if levels[-1] == "#":
        levels[-1] = f"probe-{tag}"
    return "/".join(levels)  # a filter without '#' names its topic (with '+' levels filled in)


def port_for(broker: dict, client: dict) -> int:
    return broker["listeners"]["certificate"] if client["auth"] == "certificate" else broker["listeners"]["password"]


def open_session(broker: dict, client: dict, protocol: int = mqttprobe.MQTT5, password: str | None = None,
                 **tls) -> mqttprobe.Session:
    ctx = mqttprobe.tls_context(LAB["ca_file"], client.get("certfile"), client.get("keyfile"), **tls)
    pw = password if password is not None else client.get("password")
    return mqttprobe.session(broker["address"], port_for(broker, client), ctx, broker["tls_server_name"],
                             username=client["username"] if client["auth"] == "password" else None,
                             password=pw, protocol=protocol, client_id=client["username"])


@pytest.fixture
def connect(broker):
    """Open sessions for clients of the description; closes them after the test."""
    opened: list[mqttprobe.Session] = []

    def _connect(client: dict, **kw) -> mqttprobe.Session:
        s = open_session(broker, client, **kw)
        opened.append(s)
        return s

    yield _connect
    for s in opened:
        s.close()


def probe(broker: dict, port: int, username=None, password=None, protocol=mqttprobe.MQTT311, ctx=None,
          server_name=None, certfile=None, keyfile=None) -> mqttprobe.ConnectResult:
    ctx = ctx or mqttprobe.tls_context(LAB["ca_file"], certfile, keyfile)
    return mqttprobe.raw_connect(broker["address"], port, ctx, server_name or broker["tls_server_name"],
                                 username=username, password=password, protocol=protocol)


def broker_host(broker: dict):
    """The broker host: through Docker when it is one of our containers (lab, Molecule), else through Ansible."""
    if broker.get("container"):
        return testinfra.get_host(f"docker://{broker['container']}")
    inventory = os.environ.get("RAMPART_INVENTORY", str(REPO / "inventories" / "lab"))
    return testinfra.get_host(f"ansible://{broker['name']}", ansible_inventory=inventory)


@pytest.fixture(scope="module")
def host(broker):
    return broker_host(broker)


RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def converge(extra_vars: dict | None, tmp_path: Path, *args: str) -> tuple[int, str, int]:
    """Run the deployment's converge command (plus args, e.g. --check); returns (rc, output, total changed)."""
    cmd = json.loads(os.environ.get("RAMPART_CONVERGE", json.dumps(
        [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(REPO / "inventories" / "lab"),
         str(REPO / "playbooks" / "broker.yml")])))
    if extra_vars is not None:
        path = tmp_path / f"extra-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(extra_vars))
        cmd += ["-e", f"@{path}"]
    cmd += args
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    out = res.stdout + res.stderr
    changed = sum(int(m.group(2)) for m in RECAP.finditer(out))
    return res.returncode, out, changed


def inventory_clients() -> list[dict]:
    """mosquitto_clients rebuilt from the description (which carries the deployment's demo passwords)."""
    out = []
    for c in LAB["clients"]:
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
