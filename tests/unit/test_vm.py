"""The VM lab's pure parts (rampart/vm.py): what goes on a guest's kernel command line, how its host key is read
from its serial console, and that an image's cache key follows its recipe."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from rampart import harness, vm


@pytest.fixture(autouse=True)
def vm_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(vm, "VM_DIR", tmp_path)


def guest(tmp_path, name="vmbroker12", index=0):
    return vm.Guest(name, index, "debian12", 2210 + index, 768, (("vlan_id", 42),))


def test_the_kernel_command_line_carries_the_identity_and_nothing_secret(tmp_path):
    pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE rampart-lab"
    line = vm.kernel_cmdline(guest(tmp_path), pubkey)
    words = dict(w.split("=", 1) for w in line.split() if "=" in w)
    assert words["rampart.hostname"] == "vmbroker12"
    assert base64.b64decode(words["rampart.authorized_key"]).decode() == pubkey
    assert words["root"] == "LABEL=rampart-root" and words["console"] == "ttyS0" and words["net.ifnames"] == "0"
    assert "PRIVATE" not in line and len(line) < 2048  # x86's command line limit


def test_the_host_key_is_the_last_one_the_console_printed(tmp_path):
    g = guest(tmp_path)
    g.folder.mkdir(parents=True)
    (g.folder / "console.log").write_text(
        "boot noise\nrampart-vm-hostkey ssh-ed25519 AAAAfirst\nmore\r\nrampart-vm-hostkey ssh-ed25519 AAAAsecond\n")
    key = vm.console_host_key(g, timeout=1)
    assert key == "ssh-ed25519 AAAAsecond"
    assert vm.known_hosts_line(g, key) == "[127.0.0.1]:2210 ssh-ed25519 AAAAsecond"


def test_no_host_key_on_a_stopped_guest_is_a_clear_error(tmp_path):
    g = guest(tmp_path)
    g.folder.mkdir(parents=True)
    (g.folder / "console.log").write_text("kernel panic\n")
    with pytest.raises(SystemExit, match="stopped while booting"):
        vm.console_host_key(g, timeout=1)


def test_each_guest_has_its_own_taps_and_macs(tmp_path):
    a, b = guest(tmp_path, "a", 0), guest(tmp_path, "b", 1)
    assert set(a.taps).isdisjoint(b.taps) and all(len(t) <= 15 for t in a.taps + b.taps)
    macs = {g.mac(n) for g in (a, b) for n in range(3)}
    assert len(macs) == 6


def test_the_image_cache_key_follows_the_recipe(monkeypatch):
    p12, p13 = harness.PLATFORMS["debian12"], harness.PLATFORMS["debian13"]
    before = vm.recipe_hash(p12, "http://mirror.invalid/debian")
    assert before != vm.recipe_hash(p13, "http://mirror.invalid/debian")
    assert before != vm.recipe_hash(p12, "http://other.invalid/debian")
    monkeypatch.setattr(vm, "VM_PACKAGES", (*vm.VM_PACKAGES, "tcpdump"))
    assert before != vm.recipe_hash(p12, "http://mirror.invalid/debian")


@pytest.mark.parametrize(("argv", "topology", "passed"), [
    (["up", "--tags", "nftables", "--limit", "vmbroker12", "-v"], "full", ["--tags", "nftables", "--limit",
                                                                          "vmbroker12", "-v"]),
    (["up", "--topology", "brokers", "--", "-e", '{"a": 1}'], "brokers", ["-e", '{"a": 1}']),
    (["test", "--topology", "brokers", "-q", "-k", "outsider"], "brokers", ["-q", "-k", "outsider"]),
    (["test"], "full", []),
])
def test_arguments_the_lab_does_not_know_reach_ansible_or_pytest_intact(monkeypatch, argv, topology, passed):
    seen = {}
    monkeypatch.setattr(vm, "use_project", lambda root, topo: seen.update(topology=topo))
    monkeypatch.setattr(vm.project, "find", lambda arg: None)
    for name in ("up", "test"):
        monkeypatch.setattr(vm, name, lambda args: seen.update(args=args) or 0)
    assert vm.main(argv) == 0
    assert seen["topology"] == topology
    assert getattr(seen["args"], seen["args"].extra) == passed


def test_down_and_status_take_no_stray_arguments(monkeypatch, capsys):
    monkeypatch.setattr(vm.project, "find", lambda arg: None)
    with pytest.raises(SystemExit) as stop:
        vm.main(["down", "--limit", "x"])
    assert stop.value.code == 2 and "down takes no arguments: --limit x" in capsys.readouterr().err


def test_each_topology_is_an_inventory_whose_hosts_are_full_topology_hosts():
    """The brokers topology is a subset of the full one (down stops the full one's guests, whichever is up), and
    every marker a topology deselects is a registered one, so a typo cannot deselect nothing."""
    import tomllib

    import yaml

    root = vm.project.find(None)

    def hosts(path):
        files = sorted(path.glob("*.yml")) if path.is_dir() else [path]
        out = {}
        for data in (yaml.safe_load(f.read_text()) for f in files):
            for group in data["all"]["children"].values():
                out.update({name: values for name, values in group["hosts"].items() if values})
        return out

    full = hosts(root / vm.TOPOLOGIES["full"])
    assert set(full) == {"vmbroker12", "vmbroker13", "vmclient"}
    brokers = hosts(root / vm.TOPOLOGIES["brokers"])
    assert set(brokers) == {"vmbroker12", "vmbroker13"}
    assert all(full[name] == values for name, values in brokers.items())
    markers = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    registered = {m.split(":")[0] for m in markers}
    for expression in vm.TOPOLOGY_DESELECTS.values():
        assert set(expression.split()) - {"not", "and"} <= registered, expression


def test_the_packages_the_image_carries_for_the_roles_are_the_roles_own():
    """The image pre-installs only what the nftables and fail2ban roles install on a broker (never Mosquitto), so a
    role that stops installing one does not leave it in the VMs unseen."""
    roles = Path(__file__).resolve().parents[2] / "roles"
    fail2ban = yaml.safe_load((roles / "fail2ban" / "vars" / "main.yml").read_text())["__fail2ban_packages"]
    nftables = (roles / "nftables" / "vars" / "main.yml").read_text()
    assert set(vm.VM_ROLE_PACKAGES) == {*fail2ban, "nftables"}
    assert "['nftables']" in nftables and "mosquitto" not in vm.VM_PACKAGES
    assert set(vm.VM_ROLE_PACKAGES) <= set(vm.VM_PACKAGES)
