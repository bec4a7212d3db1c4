#!/usr/bin/python
"""rampart.mqtt.wireguard_keys: a host's WireGuard private key and the preshared keys it owns, in one module run."""

from __future__ import annotations

import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: wireguard_keys
short_description: Make this host's WireGuard private key and owned preshared keys, and read what peers need
description:
  - Makes the key's directory and O(psk_dir) directories owned by root with mode C(0700) (created when missing,
    their owner and mode fixed otherwise), generates the private key with
    C(wg genkey) and each preshared key of O(psks) with C(wg genpsk) when it does not exist yet (created
    C(0600), so a key is never readable by others), and returns the public key (C(wg pubkey)) and the preshared keys.
  - An existing key is never replaced or rewritten. The private key never leaves the host; the preshared keys
    are returned because the peer on the other side of each pair needs them, so give the task
    C(no_log=true).
  - One module run instead of one task per directory, key and read (the reason this module exists).
  - Check mode generates nothing and reports what it would generate; it returns what already exists.
version_added: "0.2.0"
author: Rampart
options:
  key:
    description: Absolute path of the private key.
    type: path
    required: true
  psk_dir:
    description: Directory of the preshared keys, one C(<name>.psk) per name in O(psks).
    type: path
    required: true
  psks:
    description: Names of the preshared keys this host owns (peer names; no C(/)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Make and read the keys
  rampart.mqtt.wireguard_keys:
    key: /etc/wireguard/wg0.key
    psk_dir: /etc/wireguard/wg0.psk
    psks: [vpn1]
  register: keys
  no_log: true
"""

RETURN = r"""
public_key:
  description: The public key of O(key); empty when the key does not exist (check mode on a fresh host).
  returned: always
  type: str
psks:
  description: Each existing preshared key of O(psks), by name.
  returned: always
  type: dict
generated:
  description: The key files generated (or, in check mode, that would be).
  returned: always
  type: list
directories:
  description: The directories created or given root and C(0700) (or, in check mode, that would be).
  returned: always
  type: list
"""


def ensure_directory(module, path):
    """Make path a directory owned by root with mode 0700; True when it was (or would be) created or fixed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        module.fail_json(msg=f"wireguard_keys: {path} exists and is not a directory")
    if st is not None and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o700):
        return False
    if not module.check_mode:
        if st is None:
            os.mkdir(path, 0o700)
        os.chown(path, 0, 0)
        os.chmod(path, 0o700)
    return True


def generate(module, path, command):
    """Write the output of `wg <command>` to path, 0600 from its first byte, unless path exists; True if new."""
    if os.path.lexists(path):
        return False
    if module.check_mode:
        return True
    rc, out, err = module.run_command(["wg", command])
    if rc != 0 or not out.strip():
        module.fail_json(msg=f"wireguard_keys: wg {command} failed: {err.strip()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(out.strip() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True


def read_text(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(key=dict(type="path", required=True, no_log=False),
                           psk_dir=dict(type="path", required=True),
                           psks=dict(type="list", elements="str", default=[], no_log=False)),
        supports_check_mode=True,
    )
    key, psk_dir, names = module.params["key"], module.params["psk_dir"], module.params["psks"]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in (".", ".."):
            module.fail_json(msg=f"wireguard_keys: {name!r} cannot name a preshared key file")
    if not os.path.isabs(key) or not os.path.isabs(psk_dir):
        module.fail_json(msg="wireguard_keys: key and psk_dir must be absolute paths")
    made = [d for d in dict.fromkeys([os.path.dirname(key), psk_dir]) if ensure_directory(module, d)]
    generated = [key] if generate(module, key, "genkey") else []
    psk_paths = {name: os.path.join(psk_dir, f"{name}.psk") for name in names}
    generated += [path for path in psk_paths.values() if generate(module, path, "genpsk")]
    public_key = ""
    private = read_text(key)
    if private:
        rc, out, err = module.run_command(["wg", "pubkey"], data=private)
        if rc != 0:
            module.fail_json(msg=f"wireguard_keys: wg pubkey could not read {key}: {err.strip()}")
        public_key = out.strip()
    psks = {name: value for name, path in psk_paths.items() if (value := read_text(path))}
    module.exit_json(changed=bool(made or generated), public_key=public_key, psks=psks, generated=generated,
                     directories=made)


if __name__ == "__main__":
    main()
