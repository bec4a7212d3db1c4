"""The reload helper (roles/wireguard/.../rampart-wg-syncconf) hands the private key to wg syncconf without putting
it in any process's argv (review L3: argv is world-readable in /proc/<pid>/cmdline)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import ROLES_DIR

SCRIPT = ROLES_DIR / "wireguard/templates/usr/local/sbin/rampart-wg-syncconf.j2"
KEY = "kFAKEprivateKEYforTHEtest+never+on+argv00000="
STRIPPED = "[Interface]\nListenPort = 51820\n\n[Peer]\nPublicKey = peerKEY=\nAllowedIPs = 10.83.0.30/32\n"
# Tools a shell script could pass the key to; each is wrapped to record its argv before running the real one.
TOOLS = ("sed", "cat", "awk", "head", "tail", "tee", "grep", "printf", "echo", "env", "xargs", "dd", "cp")


def _wrapper(real: str, log: Path) -> str:
    return f'#!/bin/bash\nprintf "%s\\n" "$0 $*" >> {log}\nexec {real} "$@"\n'


def test_the_private_key_reaches_syncconf_on_stdin_and_never_an_argv(tmp_path):
    keys = tmp_path / "etc-wireguard"
    keys.mkdir()
    (keys / "wg0.key").write_text(KEY + "\n")
    tools = tmp_path / "bin"
    tools.mkdir()
    argv_log = tmp_path / "argv.log"
    argv_log.write_text("")
    for tool in TOOLS:
        real = shutil.which(tool)
        if real:
            (tools / tool).write_text(_wrapper(real, argv_log))
    # wg-quick strip prints the configuration without keys; wg syncconf keeps what it was fed.
    fed = tmp_path / "fed.conf"
    stripped = tmp_path / "stripped.conf"
    stripped.write_text(STRIPPED)
    (tools / "wg-quick").write_text(f'#!/bin/bash\nprintf "%s\\n" "$0 $*" >> {argv_log}\n/bin/cat {stripped}\n')
    (tools / "wg").write_text(f'#!/bin/bash\nprintf "%s\\n" "$0 $*" >> {argv_log}\n/bin/cat "$3" > {fed}\n')
    for path in tools.iterdir():
        path.chmod(0o755)
    lines = SCRIPT.read_text().splitlines()
    script = tmp_path / "rampart-wg-syncconf"
    script.write_text("\n".join(line for line in lines if "ansible_managed" not in line)
                      .replace("/etc/wireguard/", f"{keys}/") + "\n")
    script.chmod(0o755)

    res = subprocess.run([str(script), "wg0"], env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
                         capture_output=True, text=True, timeout=30, check=False)

    assert res.returncode == 0, res.stderr
    recorded = argv_log.read_text()
    assert "wg syncconf wg0" in recorded.replace(f"{tools}/", ""), recorded
    assert KEY not in recorded, f"the private key was on a command line:\n{recorded}"
    assert fed.read_text() == STRIPPED.replace("[Interface]\n", f"[Interface]\nPrivateKey = {KEY}\n", 1)
