#!/usr/bin/python
"""Documentation only: ``rampart.mqtt.pki`` is implemented by ../action/pki.py.

Ansible picks the action plugin of the same name, which runs in the controller process and
never executes this file; it exists so ``ansible-doc rampart.mqtt.pki`` shows the
interface (the ansible.builtin.template pattern). tests/unit/test_pki_role.py checks that the
options below agree with the action plugin's ARGUMENT_SPEC.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: pki
short_description: Private two-tier CA on the control node (Rampart pki role)
description:
  - Creates a root CA and an issuing (intermediate) CA under O(dir) once and reuses them afterwards; never
    regenerates either implicitly. The root signs only intermediates and its own CRL; the intermediate signs leaves.
  - A pki dir of the one-tier layout (root signs leaves) gets its intermediate on the next run; every leaf is then
    re-issued because its issuer changed.
  - Bumping O(intermediate_generation) rotates the intermediate (needs C(ca/ca.key)); the retired one stays in
    C(ca/chain.pem) and keeps a CRL in C(ca/crl.pem) for O(intermediate_overlap_days).
  - The root key may be kept offline; only creating or rotating the intermediate and re-signing the root CRL need it.
  - Issues, re-issues or keeps the server and client certificates in O(certificates) and O(clients), loading the CA
    once; revoked clients that have a certificate are skipped (one that never had one is issued one, for the CRL to
    list).
  - Then records revocations of the clients in O(revoked) in C(ca/revoked.json) and keeps C(ca/crl.pem) (the
    intermediate's CRL, for mosquitto's crlfile) and C(ca/root-crl.pem) fresh.
  - A certificate is re-issued when its subjectAltNames, key type, issuer, profile or subject differ, when it was
    revoked and is no longer listed, or when it expires within O(renew_before_days); otherwise the key is reused.
  - Runs entirely in the controller process (action plugin); the target host is never contacted.
  - Key material and passphrases are never returned; results carry names, reasons and file paths.
version_added: "0.1.0"
author: Rampart
options:
  dir:
    description: Directory on the control node holding the CAs and every key (created 0700).
    type: path
    required: true
  key_type:
    description: Key type for new CAs and for every leaf; an existing CA of another type is kept, with a warning.
    type: str
    default: ec-p256
    choices: [ec-p256, ec-p384, rsa-3072]
  ca_common_name:
    description: Common name of the root CA, used when it is created; the intermediate is named after it.
    type: str
    default: Rampart CA
  ca_valid_days:
    description: Lifetime of the root CA in days, used when it is created.
    type: int
    default: 3650
  intermediate_valid_days:
    description: Lifetime of the issuing CA in days (capped at the root's expiry), used when it is created or rotated.
    type: int
    default: 1825
  intermediate_generation:
    description:
      - Generation of the issuing CA. Higher than the current one rotates it (needs the root key); lower is an error.
      - Unset keeps the current generation (1 for a new CA). Pass the same value to every call of a run so check
        mode reports a pending rotation correctly.
    type: int
  intermediate_overlap_days:
    description: Days a rotated-out intermediate stays in C(ca/chain.pem) and C(ca/crl.pem); 0 drops it at once.
    type: int
    default: 30
  ca_key_passphrase:
    description:
      - Passphrase of the root and intermediate keys. New CA keys are written encrypted and unencrypted ones are
        encrypted in place. Empty means unencrypted keys.
    type: str
    default: ""
    no_log: true
  cert_valid_days:
    description: Lifetime of leaf certificates in days (capped at the issuing CA's expiry).
    type: int
    default: 397
  renew_before_days:
    description: Re-issue a leaf that expires within this many days; must be below O(cert_valid_days).
    type: int
    default: 30
  ensure_ca:
    description: Create or rotate the CAs as needed. When false a missing CA is an error (outside check mode).
    type: bool
    default: true
  update_crl:
    description:
      - Record the revocations in O(revoked) and re-sign the CRLs when the revoked set changed or nextUpdate is within
        O(crl_renew_before_days). Set it false in per-host tasks so parallel forks do not race on the CRL.
    type: bool
    default: true
  revoked:
    description:
      - Client names whose current certificate is revoked (with O(update_crl)) and that O(certificates) and
        O(clients) skip once they have a certificate.
      - Revocations are never forgotten; a name removed from the list gets a fresh certificate (new key and serial)
        while its old serial stays on the CRL.
    type: list
    elements: str
    default: []
  keep_clients:
    description:
      - Every client name the deployment still has (review M3). With O(update_crl), the folder of any other client
        under C(clients/) is retired - every certificate it holds, current and C(previous/), is revoked; once
        C(ca/revoked.json) records them the folder moves whole to C(retired-clients/<name>-<UTC time>) - so a name that
        comes back gets a new key and serial.
      - Unset (the default), nothing is retired. An empty list retires every client folder.
    type: list
    elements: str
  crl_valid_days:
    description: Lifetime of a newly signed CRL (nextUpdate) in days.
    type: int
    default: 30
  crl_renew_before_days:
    description: Re-sign a CRL within this many days of its nextUpdate; must be below O(crl_valid_days).
    type: int
    default: 15
  pkcs12_passphrase:
    description:
      - When set, every client also gets C(bundle.p12) (key, certificate, intermediate, root) encrypted with it,
        rewritten only when its decrypted content differs. Empty means no PKCS#12 bundles (stale ones are removed).
    type: str
    default: ""
    no_log: true
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
  clients:
    description:
      - Names of client certificates to keep issued, after those in O(certificates); each is the same as an entry
        there with that name and profile C(client). One list of strings is cheaper to pass and check than thousands
        of mappings. A name may not also appear in O(certificates).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports what would be created, rotated, revoked, re-signed or issued and writes nothing at all.
  diff_mode:
    support: full
    description: Lists CAs, revocations, CRLs and certificates changed (with the reason); never key material.
  platform:
    platforms: posix
    description: Runs on the control node only.
"""

EXAMPLES = r"""
- name: Create the certificate authorities unless they exist
  rampart.mqtt.pki:
    dir: /srv/rampart/pki
    ensure_ca: true
    update_crl: false
    ca_key_passphrase: "{{ vault_pki_ca_key_passphrase }}"

- name: Revoke a lost device and keep the CRL fresh
  rampart.mqtt.pki:
    dir: /srv/rampart/pki
    ensure_ca: false
    revoked: [sensor-17]
    ca_key_passphrase: "{{ vault_pki_ca_key_passphrase }}"

- name: Issue the server certificate for this host
  rampart.mqtt.pki:
    dir: /srv/rampart/pki
    ensure_ca: false
    update_crl: false
    ca_key_passphrase: "{{ vault_pki_ca_key_passphrase }}"
    certificates:
      - name: broker1
        profile: server
        dns_names: [broker1.example.org]
        ip_addresses: [192.0.2.10]

- name: Issue one client certificate per device name
  rampart.mqtt.pki:
    dir: /srv/rampart/pki
    ensure_ca: false
    update_crl: false
    ca_key_passphrase: "{{ vault_pki_ca_key_passphrase }}"
    clients: [sensor-01, sensor-02, sensor-03]
"""

RETURN = r"""
ca:
  description: The CAs, when O(ensure_ca) is true.
  returned: when ensure_ca
  type: dict
  contains:
    changed: {description: A CA was (would be) created or rotated, a key encrypted or chain.pem repaired., type: bool}
    created: {description: The root CA was (or in check mode would be) created., type: bool}
    key_type: {description: Key type of the root CA in use., type: str}
    paths:
      description: >-
        Paths of C(cert) (root), C(key) (root), C(chain) (the bundle brokers verify clients with), C(intermediate_cert),
        C(intermediate_key), C(crl), C(root_crl) and C(revoked) (the revocation state file).
      type: dict
    intermediate:
      description: >-
        The issuing CA: C(generation), C(created), C(rotated), C(reason), C(not_after) and C(previous_generation)
        (the rotated-out intermediate still trusted during the overlap, or null).
      type: dict
    root_key_present: {description: False when the root key is offline (ca/ca.key absent)., type: bool}
    encrypted: {description: CA key files encrypted in place with O(ca_key_passphrase) in this run., type: list}
crl:
  description: The broker's CRL file, when O(update_crl) is true.
  returned: when update_crl
  type: dict
  contains:
    changed: {description: A revocation was recorded or a CRL file (re)written., type: bool}
    path: {description: Path of C(ca/crl.pem)., type: str}
    next_update: {description: nextUpdate of the current intermediate's CRL (ISO 8601, UTC)., type: str}
    reason: {description: Why ca/crl.pem was (would be) re-signed, or null., type: str}
    revoked: {description: Names in O(revoked) whose certificate is on a CRL., type: list}
    newly_revoked: {description: Names revoked in this run., type: list}
    retired: {description: Client folders retired in this run (see O(keep_clients))., type: list}
    entries: {description: Serials on the current intermediate's CRL., type: int}
    root: {description: C(changed), C(path), C(next_update) and C(reason) of C(ca/root-crl.pem)., type: dict}
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
  description: Certificates kept as they are whose bundle files (chain.pem, ca.pem, bundle.p12) or modes were fixed.
  returned: always
  type: list
  elements: dict
unchanged:
  description: Names of certificates left untouched.
  returned: always
  type: list
  elements: str
revoked:
  description: >-
    Names in O(certificates) or O(clients) skipped because they are listed in O(revoked) and have a certificate.
  returned: always
  type: list
  elements: str
paths:
  description: >-
    Per certificate name, the paths of C(cert), C(key), C(chain) (leaf + intermediate) and C(ca) (root), plus
    C(pkcs12) for clients when O(pkcs12_passphrase) is set.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (after the doc blocks, as Ansible modules do)


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.fail_json(msg="rampart.mqtt.pki runs as an action plugin on the controller; this file is documentation")


if __name__ == "__main__":
    main()
