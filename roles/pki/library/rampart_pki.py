#!/usr/bin/python
"""Documentation only: ``rampart_pki`` is implemented by ../action_plugins/rampart_pki.py.

Ansible picks the action plugin of the same name, which runs in the controller process and
never executes this file; it exists so ``ansible-doc -M roles/pki/library rampart_pki`` shows the
interface (the ansible.builtin.template pattern). tests/unit/test_pki_role.py checks that the
options below agree with the action plugin's ARGUMENT_SPEC.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: rampart_pki
short_description: Minimal private CA on the control node (Rampart pki role)
description:
  - Creates a root CA under O(dir) once and reuses it afterwards; never regenerates it.
  - Issues, re-issues or keeps the server and client certificates in O(certificates), loading the CA once.
  - A certificate is re-issued when its subjectAltNames, key type, issuer, profile or subject differ, or when
    it expires within O(renew_before_days); an unchanged key type reuses the existing key.
  - Runs entirely in the controller process (action plugin); the target host is never contacted.
  - Key material is never returned; results carry names, reasons and file paths.
version_added: "0.1.0"
author: Rampart
options:
  dir:
    description: Directory on the control node holding the CA and every key (created 0700).
    type: path
    required: true
  key_type:
    description: Key type for a new CA and for every leaf; an existing CA of another type is kept, with a warning.
    type: str
    default: ec-p256
    choices: [ec-p256, ec-p384, rsa-3072]
  ca_common_name:
    description: Common name of the root CA, used when it is created.
    type: str
    default: Rampart CA
  ca_valid_days:
    description: Lifetime of the root CA in days, used when it is created.
    type: int
    default: 3650
  cert_valid_days:
    description: Lifetime of leaf certificates in days (capped at the CA's expiry).
    type: int
    default: 397
  renew_before_days:
    description: Re-issue a leaf that expires within this many days; must be below O(cert_valid_days).
    type: int
    default: 30
  ensure_ca:
    description: Create the CA if it is absent. When false a missing CA is an error (outside check mode).
    type: bool
    default: true
  certificates:
    description: Leaf certificates to keep issued. Names are unique per call.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Certificate name, CN and folder name (servers/<name>/ or clients/<name>/).
        type: str
        required: true
      profile:
        description: C(server) (EKU serverAuth only) or C(client) (EKU clientAuth only).
        type: str
        required: true
        choices: [server, client]
      dns_names:
        description: DNS subjectAltNames.
        type: list
        elements: str
        default: []
      ip_addresses:
        description: IP address subjectAltNames.
        type: list
        elements: str
        default: []
attributes:
  check_mode:
    support: full
    description: Reports what would be issued or renewed and writes nothing, not even directories.
  diff_mode:
    support: full
    description: Lists the certificates issued, re-issued (with the reason) or repaired; never key material.
  platform:
    platforms: posix
    description: Runs on the control node only.
"""

EXAMPLES = r"""
- name: Create the certificate authority unless it exists
  rampart_pki:
    dir: /srv/rampart/pki
    ensure_ca: true

- name: Issue the server certificate for this host
  rampart_pki:
    dir: /srv/rampart/pki
    ensure_ca: false
    certificates:
      - name: broker1
        profile: server
        dns_names: [broker1.example.org]
        ip_addresses: [192.0.2.10]
"""

RETURN = r"""
ca:
  description: The CA, when O(ensure_ca) is true.
  returned: when ensure_ca
  type: dict
  contains:
    changed: {description: The CA was (would be) created or its chain.pem or modes repaired., type: bool}
    created: {description: The CA was (or in check mode would be) created., type: bool}
    key_type: {description: Key type of the CA in use., type: str}
    paths: {description: Paths of C(cert), C(key) and C(chain) (the bundle brokers verify clients with)., type: dict}
issued:
  description: Names of certificates that were (would be) issued for the first time.
  returned: always
  type: list
  elements: str
renewed:
  description: Certificates that were (would be) re-issued, each with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{name: broker1, reason: subject alternative names changed}]
repaired:
  description: Certificates kept as they are whose bundle files or modes were fixed, with what was fixed.
  returned: always
  type: list
  elements: dict
unchanged:
  description: Names of certificates left untouched.
  returned: always
  type: list
  elements: str
paths:
  description: Per certificate name, the paths of C(cert), C(key), C(chain) (leaf + intermediates) and C(ca) (root).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (after the doc blocks, as Ansible modules do)


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.fail_json(msg="rampart_pki runs as an action plugin on the controller; this file is documentation")


if __name__ == "__main__":
    main()
