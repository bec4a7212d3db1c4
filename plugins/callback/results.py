"""Callback plugin ``rampart.mqtt.results``: every task result and the final stats as JSON lines.

A notification callback: it runs next to the human stdout callback and never replaces it. Tools and
tests read what a run did from its records instead of from the screen output (issue 9), and the audit
(check mode with diff) turns each record of a task that would change into a finding.
"""

from __future__ import annotations

import json

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: results
type: notification
short_description: Write task results and per-host stats as JSON lines to a file
version_added: "0.2.0"
description:
  - Writes one JSON object per line to the file named by O(path), appending, flushed after every record.
  - A record of C(type) C(play) (with C(play), its name) when a play starts.
  - A record of C(type) C(task) for every task result (handlers included, C(handler) true), with C(host), C(play),
    C(role), C(task), C(action), C(status) (one of ok, changed, failed, skipped, unreachable), C(changed) and
    C(path) (the file and line the task is written at).
  - A task record carries C(diff) (a list of Ansible diff objects) when the task produced one, C(msg) when it
    failed or was unreachable, and C(failed_items) (loop label and message) for failed loop items.
  - For a C(no_log) task the record says only what happened, C(censored) is true and no diff, message or
    loop label is written.
  - A record of C(type) C(stats) per host at the end of the run, with the counts C(ok), C(changed), C(failed),
    C(unreachable), C(skipped), C(rescued) and C(ignored).
  - Nothing is written when O(path) is unset.
requirements:
  - Enabled with C(ANSIBLE_CALLBACKS_ENABLED=rampart.mqtt.results) (or C(callbacks_enabled) in ansible.cfg).
options:
  path:
    description: The file to append the JSON lines to.
    type: path
    env:
      - name: RAMPART_RESULTS
    ini:
      - section: callback_rampart_results
        key: path
"""

_GATHER_ACTIONS = frozenset({"gather_facts", "setup", "ansible.builtin.gather_facts", "ansible.builtin.setup",
                             "ansible.legacy.gather_facts", "ansible.legacy.setup"})


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "rampart.mqtt.results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._path = None
        self._play = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._path = self.get_option("path")

    def _write(self, record: dict) -> None:
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True, default=str) + "\n")

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()
        self._write({"type": "play", "play": self._play})

    def _task_record(self, result, status: str) -> dict:
        task, data = result.task, result.result
        censored = bool(task.no_log is True or data.get("_ansible_no_log") or "censored" in data)
        record = {
            "type": "task",
            "host": result.host.get_name(),
            "play": self._play,
            "role": task._role.get_name() if task._role else None,
            "task": str(result.task_fields.get("name") or "") or task.name or task.action,
            "action": task.action,
            "handler": isinstance(task, Handler),
            "status": status,
            "changed": bool(data.get("changed", False)),
            "censored": censored,
            "gathers_facts": task.action in _GATHER_ACTIONS,
            "path": task.get_path() or None,
        }
        if censored:
            return record
        diffs = _diffs(data)
        if diffs:
            record["diff"] = diffs
        if status in ("failed", "unreachable"):
            record["msg"] = str(data.get("msg", ""))
            failed_items = [{"item": _label(item), "msg": str(item.get("msg", ""))}
                            for item in data.get("results") or []
                            if isinstance(item, dict) and item.get("failed") and "censored" not in item]
            if failed_items:
                record["failed_items"] = failed_items
        return record

    def v2_runner_on_ok(self, result):
        self._write(self._task_record(result, "changed" if result.result.get("changed") else "ok"))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        record = self._task_record(result, "failed")
        if ignore_errors:
            record["ignored"] = True
        self._write(record)

    def v2_runner_on_skipped(self, result):
        self._write(self._task_record(result, "skipped"))

    def v2_runner_on_unreachable(self, result):
        self._write(self._task_record(result, "unreachable"))

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            self._write({"type": "stats", "host": host, "failed": summary.get("failures", 0),
                         **{key: summary.get(key, 0) for key in
                            ("ok", "changed", "unreachable", "skipped", "rescued", "ignored")}})


def _diffs(data: dict) -> list:
    """The task's diff objects: its own, else those of its loop items (items that were not no_log)."""
    own = data.get("diff")
    if own:
        return own if isinstance(own, list) else [own]
    out = []
    for item in data.get("results") or []:
        if isinstance(item, dict) and not item.get("_ansible_no_log") and "censored" not in item and item.get("diff"):
            out.extend(item["diff"] if isinstance(item["diff"], list) else [item["diff"]])
    return out


def _label(item: dict) -> str:
    """A loop item's label as the screen shows it (loop_control.label when set)."""
    if "_ansible_item_label" in item:
        return str(item["_ansible_item_label"])
    return str(item.get("item", ""))
