"""The shipped CRL refresh schedule (examples/systemd/): systemd accepts both units, and they run what the
behaviour test proves (tests/behaviour/test_certificate_lifecycle.py, the scheduled CRL refresh)."""

from __future__ import annotations

import json
import shlex
import subprocess

from tests.support import REPO
from tests.support.ansible import CRL_REFRESH_UNITS, scheduled_crl_command, unit_setting

SERVICE = CRL_REFRESH_UNITS / "rampart-crl-refresh.service"
TIMER = CRL_REFRESH_UNITS / "rampart-crl-refresh.timer"


def test_systemd_accepts_both_units(tmp_path):
    """systemd-analyze verify, with the checkout's path in place of /opt/rampart (so ExecStart's ansible-playbook
    exists and is executable)."""
    for unit in (SERVICE, TIMER):
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/rampart", str(REPO)))
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / TIMER.name),
                          str(tmp_path / SERVICE.name)], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr


def test_the_service_runs_site_yml_for_the_crl_only():
    argv = shlex.split(unit_setting(SERVICE, "ExecStart"))
    assert argv[0].endswith("/.venv/bin/ansible-playbook")
    assert argv[1:] == ["-i", "${RAMPART_INVENTORY}", "playbooks/site.yml", "--tags", "crl"]
    assert unit_setting(SERVICE, "Type") == "oneshot"


def test_the_timer_runs_daily_and_catches_up_a_missed_day():
    assert unit_setting(TIMER, "OnCalendar") == "daily"
    assert unit_setting(TIMER, "Persistent") == "true"


def test_the_behaviour_test_runs_the_units_command_on_the_deployment_under_test(monkeypatch):
    """Its ansible-playbook arguments, on Molecule's converge command (an inventory file that also ends in .yml)."""
    molecule = ["/venv/bin/ansible-playbook", "-i", "/m/inventory/ansible_inventory.yml", "/r/converge.yml",
                "--tags", "broker"]
    monkeypatch.setenv("RAMPART_CONVERGE", json.dumps(molecule))
    assert scheduled_crl_command() == ["/venv/bin/ansible-playbook", "-i", "/m/inventory/ansible_inventory.yml",
                                       "/r/converge.yml", "--tags", "crl"]
