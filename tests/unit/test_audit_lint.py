"""scripts/audit lint: the config, ACL and password checks catch each bad case, and pass Rampart's own files."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import passwords

from rampart.audit import cli, lint

DATA = Path(__file__).parent / "data" / "audit"


def ids(found: list[lint.Lint]) -> list[tuple[int, str]]:
    return [(f.line, f.id) for f in found]


def test_blog_inventions_are_unknown_options():
    found = lint.lint_conf("c", ["max_connections_per_IP 10", "max_payload_size 1024", "max_connections 100",
                                 "auth_opt_backend files", "plugin_opt_x 1"])
    assert ids(found) == [(1, "LINT-UNKNOWN-OPTION"), (2, "LINT-UNKNOWN-OPTION")]


def test_anonymous_and_plaintext_listeners():
    conf = ["per_listener_settings false", "allow_anonymous true", "listener 1883", "listener 9001",
            "protocol websockets", "listener 8883 10.0.0.1", "certfile /c.pem", "keyfile /k.pem"]
    found = lint.lint_conf("c", conf)
    assert ids(found) == [(2, "LINT-ANONYMOUS"), (3, "LINT-PLAINTEXT"), (4, "LINT-PLAINTEXT")]
    assert "WebSockets" in found[2].message


def test_bridges_without_tls_or_with_the_name_unverified():
    conf = ["listener 8883 10.0.0.1", "certfile /c.pem", "connection plain", "address core:1883",
            "topic # out 1", "connection lax", "address core:8884", "bridge_cafile /ca.pem", "bridge_insecure true",
            "connection good", "address core:8884", "bridge_cafile /ca.pem", "bridge_insecure false",
            "listener 8884 10.0.0.1", "certfile /c.pem"]
    assert ids(lint.lint_conf("c", conf)) == [(3, "LINT-BRIDGE-INSECURE"), (6, "LINT-BRIDGE-INSECURE")]
    # The bridge section Rampart writes passes (its unit test, tests/unit/test_bridges.py, gives the lines).
    from ansible_collections.rampart.mqtt.plugins.module_utils import bridges
    section = bridges.conf_lines("edge1", {"name": "core", "remote": "core1", "out": [{"topic": "a/#"}]},
                                 {"address": "core1", "port": 8884}, {"ca": "/a", "cert": "/b", "key": "/c"}, "tlsv1.2")
    assert lint.lint_conf("c", section) == []


def test_acl_wildcards_for_anyone_but_the_admins():
    acl = ["topic read $SYS/#", "user ops", "topic read #", "user dashboard", "topic read sensors/#",
           "topic readwrite #", "pattern read #"]
    found = lint.lint_acl("a", acl, admins={"ops"})
    assert ids(found) == [(1, "LINT-ACL-WILDCARD"), (6, "LINT-ACL-WILDCARD"), (7, "LINT-ACL-WILDCARD")]
    assert ids(lint.lint_acl("a", acl, admins=set()))[1] == (3, "LINT-ACL-WILDCARD")


def test_weak_hashes_are_named_never_printed():
    good = passwords.hash_line("sensor-01", "a-long-demo-password", iterations=1000)
    found = lint.lint_passwd("p", [good, "old:$6$salt$abcdef", "plain:hunter2"])
    assert ids(found) == [(2, "LINT-WEAK-HASH"), (3, "LINT-WEAK-HASH")]
    assert all("hunter2" not in str(f) and "abcdef" not in str(f) for f in found)


@pytest.mark.parametrize(("name", "kind"), [("mosquitto.conf", "conf"), ("acl", "acl")])
def test_rampart_deployed_files_are_clean(name, kind):
    """The files the mosquitto role wrote on the converged lab broker (captured as they are)."""
    path = DATA / {"mosquitto.conf": "lab-mosquitto.conf", "acl": "lab-acl.txt"}[name]
    assert lint.kind_of(path.read_text().splitlines()) == kind
    assert lint.lint_file(path, None, admins={"ops-admin"}) == []


def test_the_cli_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.conf"
    bad.write_text("listener 1883\nallow_anonymous true\n")
    assert cli.main(["lint", str(bad)]) == 1
    assert "LINT-PLAINTEXT" in capsys.readouterr().out
    assert cli.main(["lint", str(DATA / "lab-mosquitto.conf")]) == 0
    assert cli.main(["lint", str(tmp_path / "missing.conf")]) == 2
