"""scripts/audit with bad input exits 2 with one line naming the cause and the fix (no host is reachable here)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import INVENTORIES, REPO, VENV_BIN, ansible_env


def audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "rampart-audit"), *args], capture_output=True, text=True,
                          env=ansible_env(), cwd=REPO, timeout=300, check=False)


def last_line(res: subprocess.CompletedProcess) -> str:
    return res.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("args", "says"), [
    (["--only", "NO-SUCH-CHECK"], "unknown check 'NO-SUCH-CHECK'; the checks are: DRIFT-TASK"),
    (["--profile", "paranoid"], "invalid choice: 'paranoid'"),
    (["--format", "pdf=x.pdf"], "the formats are text, json, junit, sarif"),
    (["--format", "junit"], "--format junit needs a file"),
    (["-i", "inventories/nowhere"], "inventory inventories/nowhere does not exist"),
])
def test_bad_arguments(args, says):
    res = audit(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert says in last_line(res)


def test_wrong_vault_password(tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    res = audit("-i", str(INVENTORIES / "example"), "--vault-password-file", str(wrong))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "vault could not be decrypted" in last_line(res) and "--vault-password-file" in last_line(res)


def test_unreachable_host(inventory_copy):
    inv = inventory_copy("lab")  # every host pinned to 127.0.0.1:9, where nothing listens
    res = audit("-i", str(inv.path))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "host(s) broker1, client1, logs1, vpn1 unreachable" in last_line(res)
    assert "check the address" in last_line(res)
