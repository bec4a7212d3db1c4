"""Action plugin ``rampart.mqtt.qr_code``: a QR code PNG (0600) of a text file, on the control node.

Draws ``dest`` from ``src`` (a WireGuard client config) with segno, when ``dest`` is missing or older
than ``src``. The target host is never contacted; the config's content is never returned.
"""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.rampart.mqtt.plugins.module_utils import perimeter


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("src", "dest"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        spec = {"src": {"type": "path", "required": True}, "dest": {"type": "path", "required": True}}
        _, args = self.validate_argument_spec(argument_spec=spec)
        src, dest = Path(args["src"]), Path(args["dest"])
        stale = not dest.exists() or (src.exists() and src.stat().st_mtime > dest.stat().st_mtime)
        if stale and not self._task.check_mode:
            perimeter.write_private(dest, perimeter.qr_png(src.read_text()))
        result.update(changed=stale, dest=str(dest))
        return result
