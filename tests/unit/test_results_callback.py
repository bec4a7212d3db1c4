"""The rampart.mqtt.results callback and rampart.results, with a tiny real playbook on localhost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rampart import results
from tests.support import ANSIBLE_PLAYBOOK, REPO, ansible_env

SECRET = "s3cret-never-in-the-records"

PLAYBOOK = """\
- name: Tiny play
  hosts: localhost
  connection: local
  gather_facts: false
  force_handlers: true  # the handler runs although the play fails
  roles:
    - demo
  tasks:
    - name: Write a file
      ansible.builtin.copy:
        content: "hello\\n"
        dest: "{{ scratch }}/plain.txt"
        mode: "0600"
      notify: Say done
    - name: Write a secret
      ansible.builtin.copy:
        content: "SECRET\\n"
        dest: "{{ scratch }}/secret.txt"
        mode: "0600"
      no_log: true
    - name: Check items
      ansible.builtin.assert:
        that: item != 'b'
        fail_msg: "item {{ item }} is b"
      loop: [a, b]
      loop_control:
        label: "label-{{ item }}"
      # This playbook is the fixture of the results callback's tests, not deployment code: the callback must report
      # an ignored failure as failed and ignored (the audit and the tests read that), which needs one to happen.
      ignore_errors: true
    - name: Never runs
      ansible.builtin.debug:
        msg: skipped
      when: false
    - name: Fail on purpose
      ansible.builtin.fail:
        msg: failed on purpose
  handlers:
    - name: Say done
      ansible.builtin.debug:
        msg: done
""".replace("SECRET", SECRET)

ROLE_TASKS = """\
- name: Touch from the role
  ansible.builtin.copy:
    content: "role\\n"
    dest: "{{ scratch }}/role.txt"
    mode: "0600"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> results.PlaybookResult:
    work = tmp_path_factory.mktemp("callback")
    (work / "roles" / "demo" / "tasks").mkdir(parents=True)
    (work / "roles" / "demo" / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (work / "play.yml").write_text(PLAYBOOK)
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(work / "play.yml"), "--diff",
           "-e", f"scratch={work}", "-e", f"ansible_python_interpreter={sys.executable}"]
    return results.run(cmd, env=ansible_env(ANSIBLE_CONFIG=str(REPO / "ansible.cfg")), cwd=REPO, timeout=120)


def by_task(run: results.PlaybookResult, name: str) -> results.TaskResult:
    (task,) = [t for t in run.tasks if t.task == name]
    return task


def test_the_human_output_is_still_there(run):
    assert run.rc == 2
    assert "TASK [Write a file]" in run.output
    assert "PLAY [Tiny play]" in run.output


def test_play_and_task_records(run):
    assert run.plays == ["Tiny play"]
    assert [t.task for t in run.tasks] == ["Touch from the role", "Write a file", "Write a secret", "Check items",
                                           "Never runs", "Fail on purpose", "Say done"]
    role_task = by_task(run, "Touch from the role")
    assert (role_task.role, role_task.name, role_task.host) == ("demo", "demo : Touch from the role", "localhost")
    assert {t.play for t in run.tasks} == {"Tiny play"}


def test_each_task_says_where_it_is_written(run):
    role_task = by_task(run, "Touch from the role")
    assert role_task.path.endswith("roles/demo/tasks/main.yml:1"), role_task.path
    assert by_task(run, "Write a file").path.endswith("play.yml:9"), by_task(run, "Write a file").path


def test_statuses_and_the_changed_diff(run):
    plain = by_task(run, "Write a file")
    assert (plain.status, plain.changed, plain.action) == ("changed", True, "ansible.builtin.copy")
    assert plain.diff and plain.diff[0]["after"] == "hello\n"
    assert by_task(run, "Never runs").status == "skipped"
    assert run.statuses("Never") == {"skipped"}
    handler = by_task(run, "Say done")
    assert handler.handler and handler.status == "ok"
    assert not plain.handler


def test_no_log_task_says_it_changed_but_never_what(run, tmp_path):
    secret = by_task(run, "Write a secret")
    assert (secret.status, secret.changed, secret.censored) == ("changed", True, True)
    assert secret.diff == [] and secret.msg is None
    assert SECRET not in json.dumps(list(run.records))


def test_failures_carry_their_messages(run):
    items = by_task(run, "Check items")
    assert items.status == "failed" and items.ignored
    assert items.failed_items == [{"item": "label-b", "msg": "item b is b"}]
    failed = run.failures
    assert [t.task for t in failed] == ["Fail on purpose"]
    assert failed[0].messages == ["failed on purpose"]


def test_final_stats_per_host(run):
    assert run.stats == {"localhost": results.HostStats(ok=5, changed=3, failed=1, unreachable=0, skipped=1,
                                                        rescued=0, ignored=1)}
    assert run.changed == 3
    assert [t.task for t in run.changed_tasks] == ["Touch from the role", "Write a file", "Write a secret"]
    assert not run.contacted_a_host


def test_nothing_is_written_without_a_path(tmp_path):
    play = tmp_path / "play.yml"
    play.write_text("- name: Empty\n  hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    env = results.callback_env(ansible_env(ANSIBLE_CONFIG=str(REPO / "ansible.cfg")), Path("unused"))
    env.pop("RAMPART_RESULTS")
    res = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(play)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["play.yml"]


def test_callbacks_already_enabled_are_kept():
    env = results.callback_env({"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}, Path("/x/r.jsonl"))
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "ansible.posix.profile_tasks,rampart.mqtt.results"
    assert env["RAMPART_RESULTS"] == "/x/r.jsonl"
