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


def test_brokers_n_generates_the_lab_inventory_with_n_brokers(tmp_path, monkeypatch):
    """`up --brokers 3`: broker2 and broker3 join broker1 in the brokers and perimeter groups, on the segment, at
    addresses no other host has; the rest of inventories/lab is unchanged, and its variables are the lab's own."""
    import shutil

    import yaml

    root = tmp_path / "project"
    shutil.copytree(lab.PROJECT / "inventories" / "lab", root / "inventories" / "lab")
    monkeypatch.setattr(lab, "INVENTORY", root / "inventories" / "lab")
    monkeypatch.setattr(lab, "LAB_DIR", root / ".lab")
    out = lab.scaled_inventory(3)
    assert out == root / ".lab" / "brokers-3"
    original = yaml.safe_load((root / "inventories" / "lab" / "hosts.yml").read_text())["all"]["children"]
    groups = yaml.safe_load((out / "hosts.yml").read_text())["all"]["children"]
    assert list(groups["brokers"]["hosts"]) == ["broker1", "broker2", "broker3"]
    assert list(groups["perimeter"]["hosts"]) == ["broker1", "broker2", "broker3"]
    assert [groups["brokers"]["hosts"][f"broker{k}"]["ansible_host"] for k in (2, 3)] == ["172.29.83.102",
                                                                                        "172.29.83.103"]
    assert {g: v for g, v in groups.items() if g not in ("brokers", "perimeter")} == {
        g: v for g, v in original.items() if g not in ("brokers", "perimeter")}
    assert (out / "group_vars").resolve() == (root / "inventories" / "lab" / "group_vars").resolve()
    # Generated again (a second up) it is the same; 1 and more than 40 are refused.
    assert lab.scaled_inventory(3) == out
    for bad in (1, 41):
        with pytest.raises(SystemExit, match="give 1 to 40"):
            lab.scaled_inventory(bad)


def test_brokers_reaches_up(monkeypatch):
    seen = {}
    monkeypatch.setattr(lab, "use_project", lambda root: None)
    monkeypatch.setattr(lab.project, "find", lambda arg: None)
    monkeypatch.setattr(lab, "up", lambda args: seen.update(args=args) or 0)
    assert lab.main(["up", "--brokers", "5", "--tags", "x"]) == 0
    assert seen["args"].brokers == 5 and seen["args"].ansible_args == ["--tags", "x"]


@pytest.mark.parametrize("count", [0, -1, 41])
def test_a_broker_count_out_of_range_is_refused_before_anything_starts(count):
    args = lab.argparse.Namespace(brokers=count, collection=None)
    with pytest.raises(SystemExit, match=f"--brokers {count}: give 1 to 40"):
        lab.up(args)


def test_an_up_of_another_topology_stops_while_a_lab_is_up(monkeypatch, tmp_path):
    """.lab/topology records the topology that is up; an up of another one stops (its networks and addresses
    differ), one of the same goes on, and with no container up any topology may start."""
    monkeypatch.setattr(lab, "LAB_DIR", tmp_path)
    monkeypatch.setattr(lab, "TOPOLOGY_STATE", tmp_path / "topology")
    running = ["abc123"]
    monkeypatch.setattr(lab.harness, "docker", lambda *a, **k: type("R", (), {"stdout": "\n".join(running)})())
    lab.claim_topology("single")  # the default lab, up
    with pytest.raises(SystemExit, match="a lab of the topology single is up; scripts/lab down first"):
        lab.claim_topology("multi-site")
    lab.claim_topology("single")
    running.clear()
    lab.claim_topology("multi-site")
    assert (tmp_path / "topology").read_text() == "multi-site\n"


def test_an_unknown_topology_names_the_shipped_ones(monkeypatch, tmp_path):
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "single.yml").write_text("{}")
    monkeypatch.setattr(lab, "PROJECT", tmp_path)
    with pytest.raises(SystemExit, match=r"--topology nope: no such file .*topologies/nope.yml \(shipped: single;"):
        lab.topology_inventory("nope")


def test_brokers_does_not_combine_with_a_topology():
    with pytest.raises(SystemExit, match="does not combine with --topology"):
        lab.up(type("A", (), {"brokers": 5, "topology": "multi-site", "collection": None})())
