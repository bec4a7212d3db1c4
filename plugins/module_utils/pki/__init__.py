"""Private two-tier CA on the control node, on `cryptography` alone (no community.crypto).

A root CA signs only an issuing (intermediate) CA and the root's own CRL; the intermediate signs
every leaf and the CRL the broker checks. Entry points, all idempotent, all with a check mode that
writes nothing at all:

* :func:`ensure_ca` creates the root and the intermediate once and afterwards only reuses them.
  A CA is never regenerated behind the operator's back: a key type other than requested is kept
  with a warning; a half-present CA is an error (the fix is a restore, not a new root). Bumping
  ``intermediate_generation`` rotates the intermediate (the one step, with creating it, that needs
  the root key: the root may otherwise stay offline). The retired intermediate stays trusted in
  ``ca/chain.pem`` (and keeps a fresh CRL in ``ca/crl.pem``) for ``intermediate_overlap_days``.
* :func:`update_crl` records revocations in ``ca/revoked.json`` (they are never lost) and keeps
  ``ca/crl.pem`` (the intermediate's CRL) and ``ca/root-crl.pem`` fresh, re-signing only when the
  revoked set changed or nextUpdate is inside the renew window; otherwise the files stay
  byte-for-byte.
* :func:`issue` issues, re-issues or leaves alone a whole list of leaf certificates in one call,
  loading the issuing CA once, skipping revoked clients. Every re-issue carries a reason. Run it
  before :func:`update_crl`, so a client declared revoked from the start gets a certificate that
  the CRL then lists.
* :func:`backup` / :func:`restore` archive and restore the whole ``pki_dir`` (also as
  ``rampart-pki backup|restore``, rampart/pkitool.py).

The package is cut along those seams: ``common`` (constants, errors, validation, keys, the layout,
file writing), ``authority`` (a loaded CA: signs certificates and CRLs), ``hierarchy`` (root and
intermediates on disk, :func:`ensure_ca`, rotation), ``issuance`` (leaves, re-issue rules, bundles,
PKCS#12), ``revocation`` (``revoked.json``, CRLs) and ``custody`` (backup, restore). Callers use
the names re-exported here, as ``pki.<name>``. They are loaded on first use (PEP 562), so that importing
``pki.names`` or ``pki.settings`` for validation, in every Ansible worker, never loads ``cryptography``.

Layout under ``pki_dir`` (every directory 0700, every private key 0600)::

    ca/ca.key                 root key (PKCS#8 PEM, encrypted with the CA passphrase if set);
                              may be absent: root kept offline
    ca/ca.crt                 self-signed root, pathlen 1: the trust anchor clients verify the broker with
    ca/intermediate.key       issuing CA key (encrypted like the root key)
    ca/intermediate.crt       issuing CA, pathlen 0, CN "<root CN> Issuing CA <generation>"
    ca/chain.pem              intermediate (+ previous one during a rotation overlap) + root:
                              the bundle a broker verifies client certificates with (mosquitto cafile)
    ca/crl.pem                CRL of the intermediate (+ previous one during the overlap): mosquitto crlfile
    ca/root-crl.pem           CRL of the root (revoked intermediates, pre-hierarchy leaves)
    ca/revoked.json           every revocation ever made: serial, name, date, issuer
    ca/retired/               intermediate-<generation>.{crt,key} of rotated-out intermediates
    servers/<name>/           key.pem, cert.pem, chain.pem (leaf + intermediate), ca.pem (root)
    clients/<name>/           the same four files, plus bundle.p12 when a PKCS#12 passphrase is set

Key material and passphrases never leave this package: results carry names, reasons and paths only.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> (submodule, attribute)
_EXPORTS = {
    # .authority
    "CertificateAuthority": ("authority", "CertificateAuthority"),
    # .common
    "CERT_MODE": ("common", "CERT_MODE"),
    "DEFAULT_KEY_TYPE": ("common", "DEFAULT_KEY_TYPE"),
    "DIR_MODE": ("common", "DIR_MODE"),
    "KEY_MODE": ("common", "KEY_MODE"),
    "KEY_TYPES": ("common", "KEY_TYPES"),
    "PROFILES": ("common", "PROFILES"),
    "CertSpec": ("common", "CertSpec"),
    "Layout": ("common", "Layout"),
    "LeafPaths": ("common", "LeafPaths"),
    "PkiError": ("common", "PkiError"),
    "check_key_type": ("common", "check_key_type"),
    "generate_key": ("common", "generate_key"),
    "is_ip_address": ("common", "is_ip_address"),
    "is_unspecified_address": ("common", "is_unspecified_address"),
    "is_valid_dns_name": ("names", "is_valid_dns_name"),
    "is_valid_name": ("names", "is_valid_name"),
    "key_type_of": ("common", "key_type_of"),
    "validate_specs": ("common", "validate_specs"),
    # .custody
    "MIN_BACKUP_PASSPHRASE": ("custody", "MIN_PASSPHRASE"),
    "backup": ("custody", "backup"),
    "restore": ("custody", "restore"),
    # .hierarchy
    "Hierarchy": ("hierarchy", "Hierarchy"),
    "ensure_ca": ("hierarchy", "ensure_ca"),
    "load_hierarchy": ("hierarchy", "load_hierarchy"),
    "load_issuing_ca": ("hierarchy", "load_issuing_ca"),
    # .issuance
    "issue": ("issuance", "issue"),
    # .revocation
    "pinned_fingerprints": ("revocation", "pinned_fingerprints"),
    "read_revocations": ("revocation", "read_revocations"),
    "revoked_serials": ("revocation", "revoked_serials"),
    "update_crl": ("revocation", "update_crl"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
