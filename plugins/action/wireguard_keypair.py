"""Action plugin ``rampart.mqtt.wireguard_keypair``: a WireGuard key pair on the control node.

For peers Ansible does not manage (laptops, field gateways): ``path`` (private key, 0600) is made
once and never replaced; ``path.pub`` is (re)written from it. The target host is never contacted and
the private key never appears in the result.
"""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.rampart.mqtt.plugins.module_utils import perimeter


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={"path": {"type": "path", "required": True}})
        key = Path(args["path"])
        pub = key.with_name(key.name + ".pub")
        changed = False
        if not key.exists():
            changed = True
            if not self._task.check_mode:
                perimeter.write_private(key, perimeter.wg_private_key() + "\n")
        if key.exists():
            public = perimeter.wg_public_key(key.read_text()) + "\n"
            if not pub.exists() or pub.read_text() != public:
                changed = True
                if not self._task.check_mode:
                    perimeter.write_private(pub, public)
        result.update(changed=changed, path=str(key), public_key_path=str(pub))
        return result
