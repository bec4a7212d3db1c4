"""The collector's per-host files: filed by the sender's address (review H1), capped, owner, mode, rotation and
retention."""

from __future__ import annotations

import json
import re
import time

from ansible_collections.rampart.mqtt.plugins.module_utils.logship import size_bytes

from rampart import logprobe
from tests.support.docker import docker_exec, hostname, sh
from tests.support.wait import wait_for

from .conftest import marker


def _stat(container: str, path: str) -> tuple[str, str, str]:
    owner, group, mode = sh(container, f"stat -c '%U %G %a' {path}").split()
    return owner, group, mode.zfill(4)


# A sender's own key material (roles/log_shipping/vars/main.yml): what root on that host holds.
SENDER_TLS = "/etc/rampart/log-shipping"


def _send_from(container: str, collector: dict, lines: list[str]) -> list[str]:
    """Send ``lines`` over RELP from inside a sender's container, with that host's own certificate and address."""
    argv, stdin = logprobe.relp_send_argv(collector["address"], int(collector["port"]), collector["tls_server_name"],
                                   f"{SENDER_TLS}/ca.pem", f"{SENDER_TLS}/cert.pem", f"{SENDER_TLS}/key.pem", lines)
    return json.loads(docker_exec(container, *argv, stdin=stdin, check=True).stdout)


def _line(claimed_host: str, text: str) -> str:
    return f"<13>{time.strftime('%b %e %H:%M:%S')} {claimed_host} rampart-h1-test: {text}"


def test_a_sender_writes_only_its_own_file_and_a_line_claiming_another_host_is_quarantined(lab, collector, files):
    """Review H1: root on an admitted sender (its own certificate, from its own address) sends one line under its
    own name and one claiming another sender's. The collector files by the address the connection came from: the
    first lands in the sender's file, the second in the sender's quarantine (with the address and the claimed name),
    and nothing reaches the other host's file."""
    sender = lab["brokers"][0]
    address = next(s["address"] for s in collector["senders"] if s["name"] == sender["name"])
    victim = next(s["name"] for s in collector["senders"] if s["name"] != sender["name"])
    honest, forged = marker("own-name"), marker("claims-another-host")

    replies = _send_from(sender["container"], collector, [_line(sender["name"], honest), _line(victim, forged)])

    assert replies == ["200 OK"] * 3, replies
    wait_for(lambda: files.count(sender["name"], honest) == 1 and files.quarantined(sender["name"], forged) == 1,
             timeout=15, what="the sender's own line in its file and the forged one in its quarantine")
    assert files.count(victim, forged) == 0, f"a line from {sender['name']} was filed as {victim}'s"
    assert files.count(sender["name"], forged) == 0
    quarantined = sh(files.container, f"grep -F -- {forged} {files.quarantine_path(sender['name'])}")
    assert f"from={address} claimed={victim} " in quarantined, quarantined


def test_a_flooding_sender_is_capped_and_its_newest_lines_are_kept(lab, collector, files):
    """A sender that writes more than log_collector_max_file_size into one file: the full file is set aside as
    syslog.log.capped and a new one begins, holding the newest lines. Every file of the collector is written by
    one action template (roles/log_collector/templates/.../50-rampart-collector.conf.j2); the flood goes to the
    sender's quarantine file, so the sender's own file (which other tests read) is left alone."""
    cap = size_bytes(collector["max_file_size"])
    sender = lab["brokers"][0]
    flood = marker("flood")
    padding = "x" * 900
    count = cap // 900 + 300
    lines = [_line("not-" + sender["name"], f"{flood} {i:06d} {padding}") for i in range(count)]
    path = files.quarantine_path(sender["name"])

    replies = _send_from(sender["container"], collector, lines)

    assert replies == ["200 OK"] * (count + 1)
    last = f"{flood} {count - 1:06d}"
    wait_for(lambda: files.count_in(path, last) == 1, timeout=30, what="the flood's last line in the new file")
    capped_size = int(sh(files.container, f"stat -c %s {path}.capped"))
    current_size = int(sh(files.container, f"stat -c %s {path}"))
    assert capped_size >= cap, f"{path}.capped holds {capped_size} bytes, less than the cap {cap}"
    assert current_size < cap, f"{path} holds {current_size} bytes, past the cap {cap}"
    assert files.count_in(f"{path}.capped", f"{flood} 000000") == 1, "the flood's first line is not in the capped file"
    assert _stat(files.container, path) == (collector["owner"], collector["group"], collector["file_mode"])


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


def test_rotated_files_older_than_the_retention_are_deleted(collector, files):
    """logrotate itself, with the installed rules, forced to rotate: a rotated file older than the retention (by its
    modification time, which maxage reads) is deleted, a younger one is kept. The files sit in a scratch sender
    folder the rules match like any other (removed afterwards)."""
    days = int(collector["retention_days"])
    folder = f"{files.log_dir}/rampart-retention-test"
    old, young = marker("older-than-retention"), marker("younger-than-retention")
    owner = f"{collector['owner']}:{collector['group']}"
    sh(files.container, f"""set -e
        install -d -m {collector['dir_mode']} -o {collector['owner']} -g {collector['group']} {folder}
        echo current-line > {folder}/syslog.log
        echo {young} > {folder}/syslog.log.1
        echo {old} | gzip > {folder}/syslog.log.2.gz
        chown {owner} {folder}/syslog.log*
        chmod {collector['file_mode']} {folder}/syslog.log*
        touch -d '1 day ago' {folder}/syslog.log.1
        touch -d '{days + 5} days ago' {folder}/syslog.log.2.gz""")
    try:
        sh(files.container, "logrotate -f /etc/logrotate.d/rampart-collector")
        kept = sh(files.container, f"cd {folder} && ls -1 && zcat -f syslog.log.* | cat")
        assert young in kept, f"the file younger than {days} days was deleted:\n{kept}"
        assert old not in kept, f"the file older than {days} days is still there:\n{kept}"
    finally:
        sh(files.container, f"rm -rf {folder}", check=False)
