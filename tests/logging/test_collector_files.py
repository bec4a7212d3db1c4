"""The collector's per-host files: owner, mode, rotation and retention."""

from __future__ import annotations

import re

from tests.support.docker import hostname, sh
from tests.support.wait import wait_for

from .conftest import marker


def _stat(container: str, path: str) -> tuple[str, str, str]:
    owner, group, mode = sh(container, f"stat -c '%U %G %a' {path}").split()
    return owner, group, mode.zfill(4)


def test_per_host_files_have_the_intended_owner_and_mode(lab, collector, files):
    assert _stat(files.container, files.log_dir) == (collector["owner"], collector["group"], collector["dir_mode"])
    for broker in lab["brokers"]:
        host = hostname(broker["container"])
        assert _stat(files.container, f"{files.log_dir}/{host}") == (
            collector["owner"], collector["group"], collector["dir_mode"])
        assert _stat(files.container, files.path(host)) == (
            collector["owner"], collector["group"], collector["file_mode"])


def test_rotation_keeps_the_old_file_and_writing_goes_on(lab, collector, files):
    """A forced logrotate run rotates every per-host file; rsyslog then writes to the new one."""
    broker = lab["brokers"][0]
    host = hostname(broker["container"])
    before = marker("before-rotation")
    sh(broker["container"], f"logger -t rampart-rotation-test {before}")
    wait_for(lambda: files.count(host, before) == 1, timeout=10, what="the line before the rotation")

    sh(files.container, "logrotate -f /etc/logrotate.d/rampart-collector")

    rotated = f"{files.path(host)}.1"
    assert int(sh(files.container, f"grep -c -F {before} {rotated}")) == 1, "the old lines are not in the rotated file"
    assert _stat(files.container, rotated)[:2] == (collector["owner"], collector["group"])
    after = marker("after-rotation")
    sh(broker["container"], f"logger -t rampart-rotation-test {after}")
    wait_for(lambda: files.count(host, after) == 1, timeout=10, what="the line after the rotation in the new file")
    assert files.count(host, before) == 0, "the new file still holds the lines from before the rotation"
    assert _stat(files.container, files.path(host)) == (collector["owner"], collector["group"], collector["file_mode"])


def test_logrotate_dry_run_reads_the_configured_retention(collector, files):
    """logrotate's own reading of the rules (logrotate -d, a dry run): daily, N rotations, older files removed.
    Nothing is rotated or deleted here; test_rotation_keeps_the_old_file_and_writing_goes_on forces one rotation."""
    out = sh(files.container, "logrotate -d /etc/logrotate.d/rampart-collector 2>&1")
    days = collector["retention_days"]
    assert re.search(rf"after 1 days .*\({days} rotations\)", out), out
    assert "old logs are removed" in out, out
