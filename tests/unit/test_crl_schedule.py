"""The shipped CRL refresh schedule (examples/systemd/): systemd accepts both units, and they run what the
behaviour test proves (tests/behaviour/test_certificate_lifecycle.py, the scheduled CRL refresh)."""

from __future__ import annotations

import shlex
import subprocess

from tests.support import REPO
from tests.support.ansible import CRL_REFRESH_UNITS, unit_setting

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
