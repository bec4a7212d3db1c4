"""scripts/lab's command line: arguments it does not know reach ansible-playbook intact (issue 11: `up -- --tags x`
used to pass a literal `--`, and `up --tags x` was refused)."""

from __future__ import annotations

import pytest

from rampart import lab


@pytest.mark.parametrize(("argv", "passed", "collection"), [
    (["up", "--tags", "nftables", "--limit", "broker1", "-v"], ["--tags", "nftables", "--limit", "broker1", "-v"],
     None),
    (["up", "--", "--tags", "x"], ["--tags", "x"], None),
    (["up", "-v", "--", "--tags", "x"], ["-v", "--tags", "x"], None),
    (["up", "--collection", "dist/c.tar.gz", "-e", '{"a": 1}'], ["-e", '{"a": 1}'], "dist/c.tar.gz"),
    (["up", "--assert-unchanged"], [], None),
])
def test_arguments_the_lab_does_not_know_reach_ansible_playbook_intact(monkeypatch, argv, passed, collection):
    seen = {}
    monkeypatch.setattr(lab, "use_project", lambda root: None)
    monkeypatch.setattr(lab.project, "find", lambda arg: None)
    monkeypatch.setattr(lab, "up", lambda args: seen.update(args=args) or 0)
    assert lab.main(argv) == 0
    assert seen["args"].ansible_args == passed
    assert seen["args"].collection == collection
    assert seen["args"].assert_unchanged == ("--assert-unchanged" in argv)


@pytest.mark.parametrize("argv", [["down", "--limit", "x"], ["status", "-v"]])
def test_down_and_status_take_no_stray_arguments(monkeypatch, capsys, argv):
    monkeypatch.setattr(lab.project, "find", lambda arg: None)
    with pytest.raises(SystemExit) as stop:
        lab.main(argv)
    assert stop.value.code == 2 and f"{argv[0]} takes no arguments: {' '.join(argv[1:])}" in capsys.readouterr().err


def test_an_abbreviated_lab_option_is_not_taken_for_ansibles(monkeypatch):
    """`--coll` is not `--collection`: with abbreviations off, an ansible-playbook option that happens to be a prefix
    of one of the lab's own goes to ansible-playbook, unchanged."""
    seen = {}
    monkeypatch.setattr(lab, "use_project", lambda root: None)
    monkeypatch.setattr(lab.project, "find", lambda arg: None)
    monkeypatch.setattr(lab, "up", lambda args: seen.update(args=args) or 0)
    assert lab.main(["up", "--coll", "x"]) == 0
    assert seen["args"].ansible_args == ["--coll", "x"] and seen["args"].collection is None
