"""rampart.mqtt.private_file: a control-node file, 0600 in a 0700 directory, written in the controller's process.

One ansible-playbook run on localhost; each task's result (changed, diff) is read through the results callback,
each file's bytes and modes from the disk.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from rampart import results
from tests.support import ANSIBLE_PLAYBOOK, REPO, ansible_env

PLAYBOOK = """\
- name: private_file
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: first write
      rampart.mqtt.private_file: {content: "one\\n", dest: "{{ scratch }}/new/a.txt"}
    - name: same again
      rampart.mqtt.private_file: {content: "one\\n", dest: "{{ scratch }}/new/a.txt"}
    - name: other text in check mode
      rampart.mqtt.private_file: {content: "two\\n", dest: "{{ scratch }}/new/a.txt"}
      check_mode: true
    - name: a mode someone widened
      rampart.mqtt.private_file: {content: "kept\\n", dest: "{{ scratch }}/open/b.txt"}
    - name: a directory others may enter, made private
      rampart.mqtt.private_file: {content: "kept\\n", dest: "{{ scratch }}/open/b.txt", private_dir: true}
    - name: a secret, no diff
      rampart.mqtt.private_file: {content: "hunter2-value\\n", dest: "{{ scratch }}/new/c.txt"}
      diff: false
    # Last, since it fails the run: the test reads its message.
    - name: not text
      rampart.mqtt.private_file: {content: {a: 1}, dest: "{{ scratch }}/new/d.txt"}
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_private_files_reports_changes_and_respects_check_and_diff(tmp_path):
    (tmp_path / "open").mkdir(mode=0o755)
    (tmp_path / "open").chmod(0o755)
    (tmp_path / "open" / "b.txt").write_text("kept\n")
    (tmp_path / "open" / "b.txt").chmod(0o644)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(tmp_path / "play.yml"), "--diff",
           "-e", f"scratch={tmp_path}", "-e", f"ansible_python_interpreter={sys.executable}"]
    run = results.run(cmd, env=ansible_env(ANSIBLE_CONFIG=str(REPO / "ansible.cfg")), cwd=tmp_path, timeout=120)
    assert run.rc == 2 and [t.task for t in run.failures] == ["not text"], run.output[-2000:]
    task = {t.task: t for t in run.tasks}
    assert [task[n].status for n in ("first write", "same again", "other text in check mode")] == \
        ["changed", "ok", "changed"]
    assert (tmp_path / "new" / "a.txt").read_text() == "one\n"  # check mode wrote nothing
    assert (mode(tmp_path / "new"), mode(tmp_path / "new" / "a.txt")) == (0o700, 0o600)
    assert [(d["before"], d["after"]) for d in task["other text in check mode"].diff] == [("one\n", "two\n")]
    # The widened file mode is a change; its directory keeps its mode unless private_dir says otherwise.
    assert task["a mode someone widened"].status == "changed" and task["a mode someone widened"].diff == []
    assert mode(tmp_path / "open" / "b.txt") == 0o600
    assert task["a directory others may enter, made private"].status == "changed"
    assert mode(tmp_path / "open") == 0o700
    assert task["a secret, no diff"].status == "changed" and task["a secret, no diff"].diff == []
    shown = run.output.split("TASK [a secret, no diff]")[1].split("TASK [")[0]
    assert "changed: [localhost]" in shown and "hunter2" not in shown
    assert task["not text"].status == "failed"
    assert "content must be text, not a mapping" in " ".join(task["not text"].messages)
