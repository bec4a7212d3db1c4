#!/usr/bin/python
"""rampart.mqtt.file_set: install a role's set of files in one module run (the copy/template pattern, batched)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: file_set
short_description: Install a set of files with their ownership and mode in one module run
description:
  - Installs each file of O(files), in order, the way M(ansible.builtin.copy) installs one given C(content).
    A file whose content, owner, group and mode already match is left alone. A new content is written to a
    temporary file in the destination's directory, given its owner and mode, checked with its
    O(files[].validate) command and then renamed over the destination (atomic; a symbolic link at the
    destination is replaced, never followed). An ownership or mode difference alone is fixed in place.
  - One module run for the whole set instead of one per file, so that a converge that changes nothing costs a
    role one round trip for its files instead of one each (the reason this module exists).
  - The first file that fails its validation stops the run; the files before it stay installed, as with a task
    per file (the mosquitto role's rescue puts back its last good set).
  - Check mode reports what would change and writes nothing (validation commands do not run, as with copy).
  - With C(--diff), each changed file gives its own diff entry headed by its path. A file given as
    O(files[].secret_content) gives only its path, never its content.
version_added: "0.2.0"
author: Rampart
options:
  files:
    description: The files, installed in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The file's key in the result's RV(files).
        type: str
        required: true
      dest:
        description: Absolute path of the file on the host; its directory must exist or be one of O(directories).
        type: path
        required: true
        aliases: [path]
      content:
        description: The file's content (text). Exactly one of O(files[].content) and O(files[].secret_content).
        type: str
      secret_content:
        description: The file's content, kept out of logs, results and diffs (keys, password hashes).
        type: str
      owner:
        description: User name that owns the file; default O(owner).
        type: str
      group:
        description: Group name of the file; default O(group).
        type: str
      mode:
        description: Octal mode as a string, for example C("0640"); default O(mode).
        type: str
      validate:
        description: Command run on the new content before it is installed; C(%s) is the temporary file's path.
        type: str
  directories:
    description:
      - Directories created (or given their owner, group and mode) before any file is installed, in this order, as
        M(ansible.builtin.file) with C(state=directory) would; a parent must exist or come earlier in the list.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: User name that owns the directory; default O(owner).
        type: str
      group:
        description: Group of the directory; default O(group).
        type: str
      mode:
        description: Octal mode of the directory, for example C("0755").
        type: str
        required: true
  owner:
    description: Owner of every file and directory that names none.
    type: str
  group:
    description: Group of every file and directory that names none.
    type: str
  mode:
    description: Mode of every file that names none.
    type: str
"""

EXAMPLES = r"""
- name: Install the broker's files
  rampart.mqtt.file_set:
    files:
      - {name: acl, dest: /etc/mosquitto/acl, content: "{{ lookup('template', 'acl.j2') }}",
         owner: mosquitto, group: mosquitto, mode: "0600"}
      - {name: key, dest: /etc/mosquitto/certs/server.key, secret_content: "{{ lookup('file', key_src) }}",
         owner: root, group: mosquitto, mode: "0640"}
  register: installed

- name: Reload when the ACL changed
  ansible.builtin.systemd_service:
    name: mosquitto
    state: reloaded
  when: installed.files.acl.changed
"""

RETURN = r"""
directories:
  description: For each of O(directories), by path, whether it was created or its owner, group or mode fixed.
  returned: always
  type: dict
  sample: {/etc/systemd/system/wg-quick@wg0.service.d: {changed: true, created: true}}
files:
  description: For each file's O(files[].name), whether it changed (or would, in check mode) and how.
  returned: always
  type: dict
  sample: {acl: {dest: /etc/mosquitto/acl, changed: true, content: true, attributes: false}}
changed_files:
  description:
    - The O(files[].name) of every file that changed (or would, in check mode), in the order given.
    - What a handler or a condition reads to act on some files and not others, for instance
      C(result.changed_files | difference(['unit']) | length > 0).
  returned: always
  type: list
  elements: str
  sample: [acl, passwords]
"""


FILE_OPTIONS = dict(
    name=dict(type="str", required=True),
    dest=dict(type="path", required=True, aliases=["path"]),
    content=dict(type="str"),
    secret_content=dict(type="str", no_log=True),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="str"),
    validate=dict(type="str"),
)

DIRECTORY_OPTIONS = dict(
    path=dict(type="path", required=True),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="str", required=True),
)


def read(path):
    """(lstat, bytes or None) of what is at path; (None, None) when nothing is."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return st, None
    with open(path, "rb") as fh:
        return st, fh.read()


def attributes(st):
    if st is None:
        return {}
    return {"owner": _name(pwd.getpwuid, st.st_uid), "group": _name(grp.getgrgid, st.st_gid),
            "mode": f"{stat.S_IMODE(st.st_mode):04o}"}


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def install(module, spec, data, uid, gid, mode):
    """Write data next to dest, give it its owner and mode, validate it, rename it over dest."""
    dest = spec["dest"]
    directory = os.path.dirname(dest)
    # Hidden, and ending in the destination's own name: checkers that go by the file name (fail2ban-regex loads
    # filter.d/<name>.conf) read the candidate as they will read the file.
    fd, tmp = tempfile.mkstemp(prefix=".", suffix="." + os.path.basename(dest), dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchown(fh.fileno(), uid, gid)
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        if spec["validate"]:
            argv = [tmp if arg == "%s" else arg for arg in shlex.split(spec["validate"])]
            rc, out, err = module.run_command(argv)
            if rc != 0:
                module.fail_json(msg=f"failed to validate {dest}: {(err or out).strip()}",
                                 name=spec["name"], dest=dest, rc=rc, stdout=out, stderr=err)
        os.replace(tmp, dest)
        tmp = None
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def ownership(module, spec, what):
    """Fill in the task's owner and group defaults; fail naming the path when one is missing or unknown."""
    for key in ("owner", "group", "mode"):
        spec[key] = spec[key] if spec[key] is not None else module.params[key]
        if spec[key] is None:
            module.fail_json(msg=f"file_set: {what} has no {key}, and the task gives no default")
    if not re.match(r"^0?[0-7]{3}$", spec["mode"]):
        module.fail_json(msg=f"file_set: mode {spec['mode']!r} of {what} must be octal, like \"0640\"")
    try:
        return pwd.getpwnam(spec["owner"]).pw_uid, grp.getgrnam(spec["group"]).gr_gid, int(spec["mode"], 8)
    except KeyError as exc:
        module.fail_json(msg=f"file_set: {what}: no such user or group on the host ({exc})")


def directory(module, spec, planned):
    """Create one directory or fix its owner, group and mode; (result, diff object or None)."""
    path = spec["path"]
    uid, gid, mode = ownership(module, spec, path)
    parent = os.path.dirname(path.rstrip("/"))
    if not os.path.isabs(path) or not (os.path.isdir(parent) or parent in planned):
        module.fail_json(msg=f"file_set: directory {path} must be an absolute path whose parent exists or is "
                             "listed before it")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        module.fail_json(msg=f"file_set: {path} exists and is not a directory")
    want = {"owner": spec["owner"], "group": spec["group"], "mode": f"{mode:04o}"}
    had = attributes(st)
    result = {"path": path, "changed": st is None or had != want, "created": st is None}
    if not result["changed"]:
        return result, None
    if not module.check_mode:
        if st is None:
            os.mkdir(path, mode)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    before = {"path": path, "state": "absent"} if st is None else dict(path=path, **had)
    return result, {"before": before, "after": dict(path=path, state="directory", **want)}


def checked(module, spec, names, planned=()):
    """The file's spec with the task's defaults filled in, or the run fails naming the file and the fix."""
    name, dest = spec["name"], spec["dest"]
    ownership(module, spec, f"{dest} ({name})")
    if name in names:
        module.fail_json(msg=f"file_set: the name {name!r} is given twice")
    if not os.path.isabs(dest) or not (os.path.isdir(os.path.dirname(dest)) or os.path.dirname(dest) in planned):
        module.fail_json(msg=f"file_set: {dest} ({name}) must be an absolute path in an existing directory "
                             "or one of directories")
    if spec["validate"] and "%s" not in shlex.split(spec["validate"]):
        module.fail_json(msg=f"file_set: the validate command of {dest} must name the file as %s")
    return spec


def apply(module, spec):
    """Install one file unless it already matches; (result, diff object or None)."""
    dest, secret = spec["dest"], spec["content"] is None
    data = (spec["secret_content"] if secret else spec["content"]).encode("utf-8")
    uid, gid, mode = ownership(module, spec, dest)
    st, old = read(dest)
    want, had = {"owner": spec["owner"], "group": spec["group"], "mode": f"{mode:04o}"}, attributes(st)
    content_changed = old != data
    attributes_changed = st is not None and not content_changed and had != want
    result = {"dest": dest, "changed": content_changed or attributes_changed,
              "content": content_changed, "attributes": attributes_changed}
    if not result["changed"]:
        return result, None
    if not module.check_mode:
        if content_changed:
            install(module, spec, data, uid, gid, mode)
        else:
            os.chown(dest, uid, gid)
            os.chmod(dest, mode)
    if attributes_changed:
        return result, {"before": dict(path=dest, **had), "after": dict(path=dest, **want)}
    if secret:
        return result, {"before_header": dest, "after_header": dest,
                        "prepared": f"{dest}: content {'added' if old is None else 'changed'} (secret: not shown)"}
    return result, {"before_header": dest, "after_header": dest,
                    "before": "" if old is None else old.decode("utf-8", "replace"), "after": spec["content"]}


def main():
    module = AnsibleModule(
        argument_spec=dict(files=dict(type="list", elements="dict", required=True, options=FILE_OPTIONS,
                                      mutually_exclusive=[("content", "secret_content")],
                                      required_one_of=[("content", "secret_content")]),
                           directories=dict(type="list", elements="dict", default=[], options=DIRECTORY_OPTIONS),
                           owner=dict(type="str"), group=dict(type="str"), mode=dict(type="str")),
        supports_check_mode=True,
    )
    made, results, diffs = {}, {}, []
    for spec in module.params["directories"]:
        made[spec["path"].rstrip("/")], diff = directory(module, spec, made)
        if diff is not None:
            diffs.append(diff)
    for spec in module.params["files"]:
        spec = checked(module, spec, results, made)
        results[spec["name"]], diff = apply(module, spec)
        if diff is not None:
            diffs.append(diff)
    changed = any(r["changed"] for r in [*made.values(), *results.values()])
    module.exit_json(changed=changed, directories=made, files=results,
                     changed_files=[name for name, r in results.items() if r["changed"]],
                     **({"diff": diffs} if module._diff else {}))


if __name__ == "__main__":
    main()
