"""Leaf certificates: issue, re-issue (always with a reason) or keep each requested leaf, with its
bundle files (``chain.pem``, ``ca.pem``) and, for clients with a PKCS#12 passphrase, ``bundle.p12``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.pki import authority, common, hierarchy, revocation
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

Authority = authority.CertificateAuthority


def leaf_extensions(spec: common.CertSpec, key_type: str) -> list[tuple[x509.ExtensionType, bool]]:
    """The profile of a leaf: not a CA, signs (and for RSA, enciphers keys), one EKU, the SANs."""
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (authority.key_usage(ca=False, key_encipherment=key_type.startswith("rsa")), True),
        (x509.ExtendedKeyUsage([common.PROFILE_EKU[spec.profile]]), False),
    ]
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns_names]
    sans += [x509.IPAddress(i) for i in spec.ip_addresses]
    if sans:
        exts.append((x509.SubjectAlternativeName(sans), False))
    return exts


def _cert_sans(cert: x509.Certificate) -> frozenset[tuple[str, str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(
        [("dns", d.lower()) for d in san.get_values_for_type(x509.DNSName)]
        + [("ip", str(i)) for i in san.get_values_for_type(x509.IPAddress)]
    )


def _cert_ekus(cert: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


# --------------------------------------------------------------------------------------------
# Re-issue rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """A leaf's files as read once per run (content and mode each): every check of the leaf uses these."""

    key: common.FileState
    cert: common.FileState
    chain: common.FileState
    ca: common.FileState


def _read_leaf(paths: common.LeafPaths) -> _Found:
    return _Found(*(common.read_state(p) for p in (paths.key, paths.cert, paths.chain, paths.ca)))


@dataclass
class _Plan:
    """What to do with one leaf: why (None = keep the certificate) and whether to make a new key."""

    spec: common.CertSpec
    paths: common.LeafPaths
    reason: str | None
    new_key: bool
    key: common.PrivateKey | None
    cert: x509.Certificate | None
    found: _Found | None = None


def _plan_leaf(
    spec: common.CertSpec,
    paths: common.LeafPaths,
    ca: Authority | None,
    key_type: str,
    renew_before: dt.timedelta,
    now: dt.datetime,
    revoked_serials: frozenset[int] = frozenset(),
) -> _Plan:
    found = _read_leaf(paths)
    if not found.cert.present and not found.key.present:
        return _Plan(spec, paths, "new", True, None, None, found)
    cert = common.parse_cert(found.cert.data)
    key = common.parse_key(found.key.data)

    reasons: list[str] = []
    new_key = _key_reasons(key, key_type, reasons)
    if cert is None:
        reasons.append("certificate missing or unreadable")
        return _Plan(spec, paths, "; ".join(reasons), new_key, None if new_key else key, None, found)

    if cert.serial_number in revoked_serials:
        # Un-revoked: a fresh certificate and, since the old one was revoked for a reason, a fresh key.
        reasons.append(f"certificate was revoked (serial {cert.serial_number:x}); new key and certificate")
        new_key = True
    if ca is None or not ca.issued(cert):
        reasons.append("issuer is not the current CA")
    if key is not None and not new_key and not common.same_public_key(key.public_key(), cert.public_key()):
        reasons.append("key does not match certificate")
    reasons += _content_reasons(spec, cert)
    reasons += _expiry_reasons(cert, ca, renew_before, now)
    return _Plan(spec, paths, "; ".join(reasons) or None, new_key, None if new_key else key, cert, found)


def _key_reasons(key: common.PrivateKey | None, key_type: str, reasons: list[str]) -> bool:
    """Append why the leaf's key must be replaced, if it must; True when it must."""
    if key is None:
        reasons.append("key missing or unreadable")
        return True
    if common.key_type_of(key) != key_type:
        reasons.append(f"key type changed ({common.key_type_of(key) or 'unknown'} -> {key_type})")
        return True
    return False


def _content_reasons(spec: common.CertSpec, cert: x509.Certificate) -> list[str]:
    """Where the certificate no longer says what ``spec`` asks for."""
    reasons = []
    if cert.subject != common.cn(spec.name):
        reasons.append("subject changed")
    if _cert_ekus(cert) != {common.PROFILE_EKU[spec.profile]}:
        reasons.append(f"profile changed (extended key usage is not {spec.profile} only)")
    if _cert_sans(cert) != spec.san_set():
        reasons.append("subject alternative names changed")
    return reasons


def _expiry_reasons(
    cert: x509.Certificate, ca: Authority | None, renew_before: dt.timedelta, now: dt.datetime
) -> list[str]:
    """Renewal is driven by the leaf's own notAfter.

    Renewing only helps if the new certificate would outlive the old one; when the issuing CA's
    expiry caps both, the fix is rotating the intermediate, reported as a warning by issue().
    """
    not_after = cert.not_valid_after_utc
    remaining = not_after - now
    if remaining > renew_before or (ca is not None and not_after >= ca.not_after):
        return []
    if remaining <= dt.timedelta(0):
        return [f"expired on {not_after:%Y-%m-%d}"]
    return [f"expires within {renew_before.days} days ({not_after:%Y-%m-%d})"]


# --------------------------------------------------------------------------------------------
# Issuing
# --------------------------------------------------------------------------------------------


def issue(
    pki_dir: str | os.PathLike[str],
    certificates: Iterable[Mapping[str, Any]],
    key_type: str = common.DEFAULT_KEY_TYPE,
    valid_days: int = 397,
    renew_before_days: int = 30,
    check_mode: bool = False,
    now: dt.datetime | None = None,
    *,
    revoked: Iterable[str] = (),
    passphrase: str | None = None,
    pkcs12_passphrase: str | None = None,
    intermediate_generation: int | None = None,
) -> dict[str, Any]:
    """Issue, re-issue or keep each requested leaf, loading the issuing CA once for the whole list.

    Re-issues (with a reason) when the SANs, key type, issuer, profile or subject differ, the
    certificate's serial is in ``ca/revoked.json`` (an un-revoked client: new key and serial) or
    it expires within ``renew_before_days``; otherwise an unchanged key type reuses the existing
    key. Client names in ``revoked`` that have a certificate are skipped entirely and listed under
    ``revoked``; one that never had a certificate is issued one (for :func:`update_crl`, which
    runs after issuing, to revoke). With ``pkcs12_passphrase`` every client also gets
    ``bundle.p12`` (key, certificate, intermediate, root), rewritten only when its decrypted
    content differs; without it a stale ``bundle.p12`` is removed.

    Returns ``{changed, issued, renewed: [{name, reason}], unchanged, repaired: [{name, reason}],
    revoked, paths: {name: {cert, key, chain, ca[, pkcs12]}}, warnings}``; ``repaired`` lists
    leaves whose certificate was kept but whose bundle files or modes were fixed. In check mode
    the same report is computed and nothing is written. Without an issuing CA (or with a rotation
    pending, see :func:`update_crl`) check mode reports every leaf as (re-)issued; otherwise it
    raises PkiError (call :func:`ensure_ca` first).
    """
    specs, skip, pw, p12_pw = _check_issue_arguments(
        certificates, key_type, valid_days, renew_before_days, revoked, passphrase, pkcs12_passphrase,
        intermediate_generation,
    )
    now = now or common.utcnow()
    layout = common.Layout(Path(pki_dir))
    ca = _issuing_ca(layout, pw, intermediate_generation, check_mode)
    run = _IssueRun(layout, ca, check_mode, now, revocation.revoked_serials(layout), key_type, valid_days,
                    dt.timedelta(days=renew_before_days), p12_pw)
    try:
        for spec in specs:
            _issue_one(run, spec, skip)
    finally:
        run.batch.flush()  # what was written is durable before the result (or the error) is returned
    run.result["changed"] = bool(run.result["issued"] or run.result["renewed"] or run.result["repaired"])
    return run.result


def _check_issue_arguments(
    certificates: Iterable[Mapping[str, Any]],
    key_type: str,
    valid_days: Any,
    renew_before_days: Any,
    revoked: Iterable[str],
    passphrase: Any,
    pkcs12_passphrase: Any,
    intermediate_generation: Any,
) -> tuple[list[common.CertSpec], set[str], bytes | None, bytes | None]:
    """Validate :func:`issue`'s arguments (ValueError naming the first bad one).

    Returns the specs, the revoked names, the CA key passphrase and the PKCS#12 passphrase.
    """
    common.check_key_type(key_type)
    common.check_window("valid_days", valid_days, "renew_before_days", renew_before_days)
    specs = common.validate_specs(certificates)
    skip = set(common.check_names("revoked", revoked))
    pw = common.check_passphrase("the CA key passphrase", passphrase)
    p12_pw = common.check_passphrase("the PKCS#12 passphrase", pkcs12_passphrase)
    common.check_generation(intermediate_generation)
    return specs, skip, pw, p12_pw


def _issuing_ca(
    layout: common.Layout, pw: bytes | None, generation: int | None, check_mode: bool
) -> Authority | None:
    """The issuing CA, loaded once; None in check mode without one (or with a rotation pending)."""
    h = hierarchy.load_hierarchy(layout, pw)
    ca = None if hierarchy.pending_rotation(h, generation, check_mode) else h.issuing_ca()
    if ca is None and not check_mode:
        raise common.PkiError(f"no CA in {layout.ca_dir} (no issuing intermediate); create it first (ensure_ca)")
    return ca


@dataclass
class _IssueRun:
    """One :func:`issue` call: the CA loaded once, the settings every leaf shares, the report."""

    layout: common.Layout
    ca: Authority | None  # None only in check mode (no CA yet, or a rotation pending)
    check_mode: bool
    now: dt.datetime
    serials: frozenset[int]  # every serial ever revoked
    key_type: str
    valid_days: int
    renew_before: dt.timedelta
    p12_pw: bytes | None = field(repr=False)
    root_pem: bytes = field(init=False)
    chain_pem: bytes = field(init=False)  # what follows a leaf in its chain.pem: the issuing chain, no root
    result: dict[str, Any] = field(init=False)
    # Leaf files are written in one batch, made durable once at the end (common.WriteBatch).
    batch: common.WriteBatch = field(init=False, default_factory=common.WriteBatch)
    # Whether each directory above the leaves (pki_dir, servers/, clients/) needs creating or its mode
    # fixed: checked once per run and again only after this run touched it.
    parents: dict[Path, bool] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.root_pem = common.pem([self.ca.root]) if self.ca is not None else b""
        self.chain_pem = common.pem(self.ca.chain) if self.ca is not None else b""
        self.result = {
            "changed": False,
            "issued": [],
            "renewed": [],
            "unchanged": [],
            "repaired": [],
            "revoked": [],
            "paths": {},
            "warnings": [],
        }
        ca = self.ca
        if ca is not None and ca.not_after - self.now <= self.renew_before:
            self.result["warnings"].append(
                f"the issuing CA expires on {ca.not_after:%Y-%m-%d}; certificates it issues cannot outlive it: "
                "bump pki_intermediate_generation (needs the root key)"
            )

    def parents_need(self, paths: common.LeafPaths) -> bool:
        """True when pki_dir or the profile directory above ``paths`` must be created or its mode fixed."""
        needs = False
        for d in (paths.dir.parent.parent, paths.dir.parent):
            if d not in self.parents:
                self.parents[d] = common.dir_needs(d)
            needs = needs or self.parents[d]
        return needs

    def write(self, plan: _Plan, key: common.PrivateKey | None, cert: x509.Certificate) -> None:
        """:func:`write_leaf` for this run: batched, and the parent directories ensured only when they need it."""
        parents = self.parents_need(plan.paths)
        write_leaf(plan.paths, key, cert, self.ca, self.root_pem, batch=self.batch, found=plan.found, parents=parents)
        if parents:
            self.parents.update(dict.fromkeys((plan.paths.dir.parent.parent, plan.paths.dir.parent), False))


def _issue_one(run: _IssueRun, spec: common.CertSpec, skip: set[str]) -> None:
    """Issue, re-issue, repair or keep one leaf, recording which in the report."""
    result = run.result
    paths = run.layout.leaf(spec.profile, spec.name)
    # A revoked client keeps the certificate it has (never renewed, re-keyed or repaired). One
    # that never had a certificate gets one, for update_crl to revoke: a device declared
    # revoked from the start still has a certificate to prove the broker refuses.
    if spec.profile == "client" and spec.name in skip and (paths.cert.exists() or paths.key.exists()):
        result["revoked"].append(spec.name)
        return
    bundle = run.p12_pw is not None and spec.profile == "client"
    result["paths"][spec.name] = paths.as_result() | ({"pkcs12": str(paths.p12)} if bundle else {})
    plan = _plan_leaf(spec, paths, run.ca, run.key_type, run.renew_before, run.now, run.serials)
    if plan.reason == "new":
        result["issued"].append(spec.name)
    elif plan.reason:
        result["renewed"].append({"name": spec.name, "reason": plan.reason})

    if plan.reason is None and run.ca is not None and plan.cert is not None:
        _keep_leaf(run, plan, run.ca, bundle)
    elif not run.check_mode and run.ca is not None:  # ca is None only in check mode (raised otherwise)
        _sign_leaf(run, plan, run.ca, bundle)


def _keep_leaf(run: _IssueRun, plan: _Plan, ca: Authority, bundle: bool) -> None:
    """Certificate kept: only the bundles and modes may need a touch-up."""
    assert plan.cert is not None  # noqa: S101
    fixes = _leaf_fixes(run, plan)
    p12 = _p12_fix(plan.paths, plan.key, plan.cert, ca, run.p12_pw, plan.spec.profile)
    if p12:
        fixes.append(p12)
    if not fixes:
        run.result["unchanged"].append(plan.spec.name)
        return
    run.result["repaired"].append({"name": plan.spec.name, "reason": ", ".join(fixes)})
    if not run.check_mode:
        run.write(plan, None, plan.cert)
        if p12:
            _write_p12(plan.paths, plan.key, plan.cert, ca, run.p12_pw if bundle else None, run.batch)


def _sign_leaf(run: _IssueRun, plan: _Plan, ca: Authority, bundle: bool) -> None:
    """Sign a new certificate (with a new key when the plan says so) and write the leaf's files."""
    key = common.generate_key(run.key_type) if plan.new_key or plan.key is None else plan.key
    cert = ca.sign(
        subject=common.cn(plan.spec.name),
        public_key=key.public_key(),
        extensions=leaf_extensions(plan.spec, run.key_type),
        not_before=run.now - common.CLOCK_SKEW,
        not_after=run.now + dt.timedelta(days=run.valid_days),
    )
    if plan.cert is not None and plan.spec.profile == "client":
        _keep_previous(plan.paths, plan.cert, run.now, run.batch)
    run.write(plan, key if key is not plan.key else None, cert)
    if bundle or plan.paths.p12.exists():
        _write_p12(plan.paths, key, cert, ca, run.p12_pw if bundle else None, run.batch)


def _keep_previous(paths: common.LeafPaths, cert: x509.Certificate, now: dt.datetime,
                   batch: common.WriteBatch | None) -> None:
    """Keep a client's certificate that a new one replaces while it is still valid (review M2): a renewal may keep
    the key, so the device can still present the old certificate, and revoking the client must list it too."""
    if cert.not_valid_after_utc <= now:
        return
    common.ensure_dir(paths.previous, batch)
    common.write_atomic(paths.previous / f"{cert.serial_number:x}.pem", common.pem([cert]), common.CERT_MODE, batch)


# --------------------------------------------------------------------------------------------
# Leaf files
# --------------------------------------------------------------------------------------------


def _leaf_fixes(run: _IssueRun, plan: _Plan) -> list[str]:
    """What a kept leaf's files need, from what :func:`_plan_leaf` read (each file read once)."""
    paths, found = plan.paths, plan.found
    assert plan.cert is not None and found is not None  # noqa: S101
    fixes = []
    if run.parents_need(paths) or common.dir_needs(paths.dir):
        fixes.append("directory mode")
    if found.key.mode != common.KEY_MODE:
        fixes.append("key mode")
    cert_pem = common.pem([plan.cert])
    if common.file_needs(paths.cert, cert_pem, common.CERT_MODE, found.cert):
        fixes.append("cert.pem")
    if common.file_needs(paths.chain, cert_pem + run.chain_pem, common.CERT_MODE, found.chain):
        fixes.append("chain.pem")
    if common.file_needs(paths.ca, run.root_pem, common.CERT_MODE, found.ca):
        fixes.append("ca.pem")
    return fixes


def write_leaf(
    paths: common.LeafPaths,
    new_key: common.PrivateKey | None,
    cert: x509.Certificate,
    ca: Authority,
    root_pem: bytes,
    *,
    batch: common.WriteBatch | None = None,
    found: _Found | None = None,
    parents: bool = True,
) -> None:
    """Write a leaf's files. Key first: a crash before the certificate is replaced leaves a key
    that no longer matches, which the next run detects and re-issues for.

    ``found`` is what the run read from the leaf's files before (not read again); ``parents``
    false skips ensuring the directories above the leaf's own (the caller checked them). With
    ``batch`` the writes are made durable by ``batch.flush()``, else each file and the leaf's
    directory are fsynced here.
    """
    found = found if found is not None else _read_leaf(paths)
    dirs = [paths.dir.parent.parent, paths.dir.parent] if parents else []
    for d in [*dirs, paths.dir]:
        common.ensure_dir(d, batch)
    if new_key is not None:
        common.write_atomic(paths.key, common.key_pem(new_key), common.KEY_MODE, batch)
    elif found.key.mode != common.KEY_MODE:
        paths.key.chmod(common.KEY_MODE)
        if batch is not None:
            batch.wrote(paths.key)
    cert_pem = common.pem([cert])
    common.sync_file(paths.cert, cert_pem, common.CERT_MODE, found.cert, batch)
    common.sync_file(paths.chain, cert_pem + common.pem(ca.chain), common.CERT_MODE, found.chain, batch)
    common.sync_file(paths.ca, root_pem, common.CERT_MODE, found.ca, batch)
    if batch is None:
        common.fsync_dir(paths.dir)


# --------------------------------------------------------------------------------------------
# PKCS#12 device bundles
# --------------------------------------------------------------------------------------------


def _p12_fix(
    paths: common.LeafPaths,
    key: common.PrivateKey | None,
    cert: x509.Certificate,
    ca: Authority,
    passphrase: bytes | None,
    profile: str,
) -> str | None:
    """What a kept certificate's bundle.p12 needs: None, "bundle.p12" (write) or "bundle.p12 removed".

    PKCS#12 output is randomised (salts, IVs), so the file is compared by decrypting it with the
    passphrase: a changed passphrase, key, certificate or chain all rewrite it.
    """
    if passphrase is None or profile != "client":
        return "bundle.p12 removed" if paths.p12.exists() else None
    if key is None:
        return None
    try:
        data = paths.p12.read_bytes()
        old_key, old_cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
    except (OSError, ValueError, TypeError):
        return "bundle.p12"
    ok = (
        old_key is not None
        and common.same_public_key(old_key.public_key(), key.public_key())
        and old_cert == cert
        and list(extra) == [*ca.chain, ca.root]
        and paths.p12.stat().st_mode & 0o7777 == common.KEY_MODE
    )
    return None if ok else "bundle.p12"


def _write_p12(
    paths: common.LeafPaths,
    key: common.PrivateKey | None,
    cert: x509.Certificate,
    ca: Authority,
    pw: bytes | None,
    batch: common.WriteBatch | None = None,
) -> None:
    """Write bundle.p12 (key, certificate, intermediate, root), or remove it when ``pw`` is None."""
    if pw is None or key is None:
        paths.p12.unlink(missing_ok=True)
        if batch is not None:
            batch.made_dir(paths.dir)  # the removal is a change of the leaf directory
        return
    data = pkcs12.serialize_key_and_certificates(
        paths.dir.name.encode(), key, cert, [*ca.chain, ca.root], serialization.BestAvailableEncryption(pw)
    )
    common.write_atomic(paths.p12, data, common.KEY_MODE, batch)
