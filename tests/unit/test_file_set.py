"""rampart.mqtt.file_set, run as Ansible runs a module (its arguments in a JSON file), against a scratch dir."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "file_set.py"
USER, GROUP = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
SECRET = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-but-secret\n-----END PRIVATE KEY-----\n"


def run(tmp_path: Path, files: list[dict], check: bool = False, **top) -> dict:
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "files": files, **top, "_ansible_check_mode": check, "_ansible_diff": True}}))
    res = subprocess.run([sys.executable, str(MODULE), str(args)], capture_output=True, text=True, timeout=60)
    out = json.loads(res.stdout)
    out["_stdout"] = res.stdout
    return out


def entry(name: str, path: Path, content: str | None = None, secret: str | None = None, **kw) -> dict:
    spec = {"name": name, "dest": str(path), "owner": USER, "group": GROUP, "mode": "0640", **kw}
    if secret is not None:
        spec["secret_content"] = secret
    else:
        spec["content"] = content
    return spec


def mode(path: Path) -> str:
    return f"{path.stat().st_mode & 0o7777:04o}"


def test_installs_each_file_with_its_mode_then_changes_nothing(tmp_path):
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    files = [entry("a", a, "one\n"), entry("b", b, "two\n", mode="0600")]
    first = run(tmp_path, files)
    assert first["changed"] is True
    assert {k: v["changed"] for k, v in first["files"].items()} == {"a": True, "b": True}
    assert (a.read_text(), mode(a), b.read_text(), mode(b)) == ("one\n", "0640", "two\n", "0600")
    assert [d["after_header"] for d in first["diff"]] == [str(a), str(b)]
    assert first["diff"][0]["after"] == "one\n" and first["diff"][0]["before"] == ""
    again = run(tmp_path, files)
    assert again["changed"] is False and again["diff"] == []
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_only_the_file_that_differs_changes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(tmp_path, [entry("a", a, "one\n"), entry("b", b, "two\n")])
    res = run(tmp_path, [entry("a", a, "one\n"), entry("b", b, "three\n")])
    assert {k: v["changed"] for k, v in res["files"].items()} == {"a": False, "b": True}
    assert res["changed_files"] == ["b"]
    assert res["diff"] == [{"before_header": str(b), "after_header": str(b), "before": "two\n", "after": "three\n"}]


def test_check_mode_reports_and_writes_nothing(tmp_path):
    a = tmp_path / "a"
    a.write_text("old\n")
    a.chmod(0o640)
    res = run(tmp_path, [entry("a", a, "new\n"), entry("n", tmp_path / "new", "x")], check=True)
    assert res["changed"] is True and res["files"]["a"]["content"] is True
    assert a.read_text() == "old\n" and not (tmp_path / "new").exists()


def test_a_mode_difference_alone_is_fixed_in_place_and_shown(tmp_path):
    a = tmp_path / "a"
    run(tmp_path, [entry("a", a, "x\n")])
    inode = a.stat().st_ino
    a.chmod(0o644)
    res = run(tmp_path, [entry("a", a, "x\n")])
    assert res["files"]["a"] == {"dest": str(a), "changed": True, "content": False, "attributes": True}
    assert mode(a) == "0640" and a.stat().st_ino == inode
    assert res["diff"][0]["before"]["mode"] == "0644" and res["diff"][0]["after"]["mode"] == "0640"


def test_a_secret_never_reaches_the_result_or_the_diff(tmp_path):
    key = tmp_path / "server.key"
    res = run(tmp_path, [entry("key", key, secret=SECRET)])
    assert key.read_text() == SECRET and res["files"]["key"]["changed"] is True
    assert "not-a-real-key-but-secret" not in res["_stdout"]
    assert res["diff"] == [{"before_header": str(key), "after_header": str(key),
                            "prepared": f"{key}: content added (secret: not shown)"}]


def test_a_rejected_file_is_never_installed_and_the_files_before_it_are(tmp_path):
    first, conf = tmp_path / "first", tmp_path / "broker.conf"
    conf.write_text("good\n")
    reject = f"{sys.executable} -c \"import sys; sys.exit('bad line' in open(sys.argv[1]).read())\" %s"
    res = run(tmp_path, [entry("first", first, "1\n"), entry("conf", conf, "bad line\n", validate=reject)])
    assert res.get("failed") is True and f"failed to validate {conf}" in res["msg"]
    assert conf.read_text() == "good\n" and first.read_text() == "1\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".broker")]
    ok = run(tmp_path, [entry("conf", conf, "fine\n", validate=reject)])
    assert ok["changed"] is True and conf.read_text() == "fine\n"


def test_a_symlink_at_the_destination_is_replaced_not_followed(tmp_path):
    target, link = tmp_path / "elsewhere", tmp_path / "link"
    target.write_text("untouched\n")
    link.symlink_to(target)
    run(tmp_path, [entry("l", link, "mine\n")])
    assert not link.is_symlink() and link.read_text() == "mine\n" and target.read_text() == "untouched\n"


def test_the_task_gives_defaults_for_owner_group_and_mode(tmp_path):
    a = tmp_path / "a"
    res = run(tmp_path, [{"name": "a", "path": str(a), "content": "x", "mode": "0600"}],
              owner=USER, group=GROUP, mode="0644")
    assert res["changed"] is True and mode(a) == "0600"


@pytest.mark.parametrize(("spec", "message"), [
    ({"mode": "rw-r--r--"}, "must be octal"),
    ({"owner": "no-such-user-rampart"}, "no such user or group"),
    ({"validate": "true"}, "must name the file as %s"),
    ({"dest": "relative/path"}, "must be an absolute path in an existing directory"),
])
def test_bad_arguments_fail_and_name_the_file(tmp_path, spec, message):
    res = run(tmp_path, [{**entry("a", tmp_path / "a", "x"), **spec}])
    assert res.get("failed") is True and message in res["msg"]
    assert not (tmp_path / "a").exists()


def test_directories_are_made_before_the_files_in_them_then_left_alone(tmp_path):
    top, sub = tmp_path / "d", tmp_path / "d" / "sub"
    dirs = [{"path": str(top), "mode": "0750"}, {"path": str(sub), "mode": "0700"}]
    files = [entry("f", sub / "f.conf", "x\n")]
    check = run(tmp_path, files, check=True, directories=dirs, owner=USER, group=GROUP)
    assert check["changed"] is True and not top.exists(), "check mode made a directory"
    assert check["directories"][str(sub)] == {"path": str(sub), "changed": True, "created": True}
    first = run(tmp_path, files, directories=dirs, owner=USER, group=GROUP)
    assert (mode(top), mode(sub), (sub / "f.conf").read_text()) == ("0750", "0700", "x\n")
    assert first["diff"][0] == {"before": {"path": str(top), "state": "absent"},
                                "after": {"path": str(top), "state": "directory", "owner": USER, "group": GROUP,
                                          "mode": "0750"}}
    sub.chmod(0o755)
    fixed = run(tmp_path, files, directories=dirs, owner=USER, group=GROUP)
    assert fixed["directories"][str(sub)] == {"path": str(sub), "changed": True, "created": False}
    assert fixed["files"]["f"]["changed"] is False and mode(sub) == "0700"
    again = run(tmp_path, files, directories=dirs, owner=USER, group=GROUP)
    assert again["changed"] is False and again["diff"] == []


@pytest.mark.parametrize(("dirs", "message"), [
    ([{"path": "{tmp}/a/b", "mode": "0755"}], "parent exists or is listed before it"),
    ([{"path": "relative", "mode": "0755"}], "must be an absolute path"),
    ([{"path": "{tmp}/file", "mode": "0755"}], "exists and is not a directory"),
    ([{"path": "{tmp}/d", "mode": "rwx"}], "must be octal"),
])
def test_bad_directories_fail_and_name_the_path(tmp_path, dirs, message):
    (tmp_path / "file").write_text("")
    dirs = [{**d, "path": d["path"].format(tmp=tmp_path)} for d in dirs]
    res = run(tmp_path, [], directories=dirs, owner=USER, group=GROUP)
    assert res.get("failed") is True and message in res["msg"], res
    assert not (tmp_path / "d").exists() and not (tmp_path / "a").exists()
