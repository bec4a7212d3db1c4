"""inventories/example stays valid, and its secrets stay encrypted with the (public) example vault password."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventories" / "example"
VAULT = EXAMPLE / "group_vars" / "all" / "vault.yml"
VAULT_PASSWORD_FILE = EXAMPLE / ".vault-password.example"
VALIDATION_PLAY = "Validate the inventory before touching any host"


def ansible_vault_view(password_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-vault"), "view", "--vault-password-file", str(password_file),
         str(VAULT)],
        cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_example_inventory_passes_validation(run_playbook) -> None:
    # The real folder, not a copy: validate.yml never connects, and the test checks that it did not.
    run = run_playbook("validate.yml", EXAMPLE, "--vault-password-file", str(VAULT_PASSWORD_FILE))

    assert run.rc == 0, run.output
    assert run.plays == [VALIDATION_PLAY], run.output
    assert run.failed_task is None, run.output
    assert not run.contacted_a_host, run.output
    assert "ok: [mqtt-broker-01]" in run.output


def test_example_vault_is_really_encrypted(tmp_path: Path) -> None:
    raw = VAULT.read_text()
    assert raw.startswith("$ANSIBLE_VAULT;1.1;AES256\n"), "group_vars/all/vault.yml is not an ansible-vault file"
    assert VAULT_PASSWORD_FILE.read_text().strip() == "change-me-example-only"
    # An executable password file is run as a script by Ansible instead of read.
    assert not os.access(VAULT_PASSWORD_FILE, os.X_OK)

    view = ansible_vault_view(VAULT_PASSWORD_FILE)
    assert view.returncode == 0, view.stderr
    secrets = yaml.safe_load(view.stdout)
    passwords = secrets["vault_mosquitto_passwords"]
    assert passwords, "the vault holds no passwords"
    for password in passwords.values():
        assert isinstance(password, str)
        assert password not in raw, "a vault password is readable in the encrypted file"

    # Exactly one vault password per password client, and none for certificate clients.
    clients = yaml.safe_load((EXAMPLE / "group_vars" / "all" / "clients.yml").read_text())["mosquitto_clients"]
    password_clients = {c["name"] for c in clients if c.get("auth", "password") == "password"}
    assert set(passwords) == password_clients

    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-example-password\n")
    assert ansible_vault_view(wrong).returncode != 0, "the vault opens with any password"
