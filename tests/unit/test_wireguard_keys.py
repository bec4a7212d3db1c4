"""rampart.mqtt.wireguard_keys, run as Ansible runs a module, where it needs no `wg`: its refusals and check mode.

Generating and reading real keys needs wireguard-tools, which the control node lacks: the perimeter scenario
(Molecule) and the lab run that part on Debian 12 and 13, where the tunnels come up with the keys it made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "wireguard_keys.py"


def run(tmp_path: Path, check: bool = False, **args) -> dict:
    spec = tmp_path / "args.json"
    spec.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}))
    res = subprocess.run([sys.executable, str(MODULE), str(spec)], capture_output=True, text=True, timeout=60)
    return json.loads(res.stdout)


def test_check_mode_on_a_fresh_host_reports_every_key_and_makes_nothing(tmp_path):
    wg = tmp_path / "wireguard"
    res = run(tmp_path, check=True, key=str(wg / "wg0.key"), psk_dir=str(wg / "wg0.psk"), psks=["vpn1", "laptop"])
    assert res["changed"] is True, res
    psk = wg / "wg0.psk"
    assert res["generated"] == [str(wg / "wg0.key"), str(psk / "vpn1.psk"), str(psk / "laptop.psk")]
    assert res["directories"] == [str(wg), str(wg / "wg0.psk")]
    assert (res["public_key"], res["psks"]) == ("", {})
    assert not wg.exists(), "check mode made a directory"


def test_existing_preshared_keys_are_read_back_and_never_replaced(tmp_path):
    wg = tmp_path / "wireguard"
    (wg / "wg0.psk").mkdir(parents=True)
    wg.chmod(0o700), (wg / "wg0.psk").chmod(0o700)
    (wg / "wg0.psk" / "vpn1.psk").write_text("c2VjcmV0LXByZXNoYXJlZC1rZXktMzItYnl0ZXMhISE=\n")
    res = run(tmp_path, check=True, key=str(wg / "wg0.key"), psk_dir=str(wg / "wg0.psk"), psks=["vpn1"])
    assert res["psks"] == {"vpn1": "c2VjcmV0LXByZXNoYXJlZC1rZXktMzItYnl0ZXMhISE="}
    assert res["generated"] == [str(wg / "wg0.key")], "an existing preshared key would be generated again"
    assert (wg / "wg0.psk" / "vpn1.psk").read_text().startswith("c2Vj")


@pytest.mark.parametrize(("args", "message"), [
    ({"psks": ["../etc/passwd"]}, "cannot name a preshared key file"),
    ({"psks": [".."]}, "cannot name a preshared key file"),
    ({"psks": ["a\nb"]}, "cannot name a preshared key file"),
    ({"key": "wg0.key"}, "must be absolute paths"),
])
def test_bad_arguments_fail_before_anything_is_made(tmp_path, args, message):
    wg = tmp_path / "wireguard"
    res = run(tmp_path, **{"key": str(wg / "wg0.key"), "psk_dir": str(wg / "wg0.psk"), **args})
    assert res.get("failed") is True and message in res["msg"], res
    assert not wg.exists()


def test_a_file_where_the_key_directory_belongs_is_refused(tmp_path):
    (tmp_path / "wireguard").write_text("")
    res = run(tmp_path, key=str(tmp_path / "wireguard" / "wg0.key"), psk_dir=str(tmp_path / "psk"))
    assert res.get("failed") is True and "is not a directory" in res["msg"], res
