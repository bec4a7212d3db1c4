"""The audit's drift: a task that would change several files (rampart.mqtt.file_set) is one finding per file."""

from __future__ import annotations

from rampart.audit import drift

CONF, KEY, ACL = "/etc/mosquitto/mosquitto.conf", "/etc/mosquitto/certs/server.key", "/etc/mosquitto/acl"
FILE_SET_DIFF = [
    {"before_header": CONF, "after_header": CONF, "before": "a\n", "after": "b\n"},
    {"before_header": KEY, "after_header": KEY, "prepared": f"{KEY}: content changed (secret: not shown)"},
    {"before": {"path": ACL, "mode": "0644"}, "after": {"path": ACL, "mode": "0600"}},
]


def test_a_file_set_task_gives_one_group_per_file_each_named_by_its_path():
    groups = drift.by_resource(FILE_SET_DIFF)
    assert [drift.resource(g) for g in groups] == [CONF, KEY, ACL]
    assert drift.render_diff(groups[0], []).splitlines()[-2:] == ["-a", "+b"]
    assert drift.render_diff(groups[1], []) == f"{KEY}: content changed (secret: not shown)"
    assert drift.render_diff(groups[2], []) == "mode: '0644' -> '0600'"


def test_a_task_with_one_file_or_none_stays_one_finding():
    one = [*FILE_SET_DIFF[:1], {"prepared": "and a note"}]
    assert drift.by_resource(one) == [one]
    assert drift.by_resource([]) == [[]]
    assert drift.resource([{"prepared": "no path"}]) is None


def test_diff_objects_that_name_no_file_go_with_the_first_file():
    note = {"prepared": "a note without a path"}
    groups = drift.by_resource([FILE_SET_DIFF[0], note, FILE_SET_DIFF[1]])
    assert groups == [[note, FILE_SET_DIFF[0]], [FILE_SET_DIFF[1]]]
