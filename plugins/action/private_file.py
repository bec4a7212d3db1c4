"""Action plugin ``rampart.mqtt.private_file``: a file on the control node, readable by its owner only.

Writes ``content`` (text) to ``dest`` with mode 0600, atomically, in the controller's own process. A local
``ansible.builtin.copy`` costs two module runs (a stat, then the copy), each with its own temporary directory:
0.6-1 s on a 2-core machine, on the critical path of every run that writes a file on the control node (the
description, the audit's reading, WireGuard's exported configs). The host the task runs for is never contacted.

- ``dest``'s directory is made (0700) when missing; ``private_dir: true`` also makes an existing one 0700.
- changed when the content, the file's mode or (``private_dir``) the directory's mode differs from what is asked.
- Check mode writes nothing and says whether it would; diff mode shows the text unless the task says ``diff: false``.
"""

from __future__ import annotations

import stat
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.rampart.mqtt.plugins.module_utils import perimeter

SPEC = {
    "content": {"type": "raw", "required": True},
    "dest": {"type": "path", "required": True},
    "private_dir": {"type": "bool", "default": False},
}


def _mode(path: Path) -> int | None:
    return stat.S_IMODE(path.stat().st_mode) if path.exists() else None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=SPEC)
        content, dest = args["content"], Path(args["dest"])
        if not isinstance(content, str):
            kind = "a mapping" if isinstance(content, dict) else "a list" if isinstance(content, list) else "not text"
            raise AnsibleActionFail(f"content must be text, not {kind}: render it with to_json or to_nice_json")
        before = dest.read_bytes() if dest.is_file() else None
        changed = (before != content.encode() or _mode(dest) != 0o600
                   or (args["private_dir"] and _mode(dest.parent) != 0o700))
        if changed and not self._task.check_mode:
            perimeter.write_private(dest, content, private_dir=args["private_dir"])
        if changed and self._task.diff and before != content.encode():
            result["diff"] = {"before": before.decode(errors="replace") if before is not None else "",
                              "after": content, "before_header": str(dest), "after_header": str(dest)}
        result.update(changed=changed, dest=str(dest))
        return result
