"""The CA hierarchy in ``ca/``: the root, the current issuing intermediate and the retired ones.

:func:`load_hierarchy` reads it (refusing half-present or broken CAs); :func:`ensure_ca` creates
the root and the intermediate once, rotates the intermediate when ``intermediate_generation`` goes
up, encrypts CA keys in place once a passphrase is set, and keeps ``ca/chain.pem`` current.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.pki import authority, common
from cryptography import x509
from cryptography.x509.oid import NameOID

# Root -> intermediate -> leaf: the root allows exactly one CA below it, the intermediate none.
ROOT_PATH_LENGTH = 1
INTERMEDIATE_PATH_LENGTH = 0
# ensure_ca warns this long before the intermediate expires (leaves are capped at its expiry).
INTERMEDIATE_WARN_DAYS = 90

_INTERMEDIATE_CN_RE = re.compile(r" Issuing CA (\d+)$")
_RETIRED_RE = re.compile(r"^intermediate-(\d+)\.crt$")

Write = tuple[Path, bytes, int]


@dataclass
class Intermediate:
    """An intermediate on disk: the current one or a retired one (key loaded on demand)."""

    generation: int
    cert: x509.Certificate
    cert_path: Path
    key_path: Path
    key: common.PrivateKey | None = field(default=None, repr=False)
    encrypted: bool = False
    chains: bool = True  # signed by the current root

    def load_key(self, passphrase: bytes | None) -> common.PrivateKey | None:
        """The key, loaded once; None when its file is absent."""
        if self.key is None and self.key_path.exists():
            self.key, self.encrypted = common.load_ca_key(self.key_path, passphrase)
            if not common.same_public_key(self.key.public_key(), self.cert.public_key()):
                raise common.PkiError(f"{self.key_path} does not belong to {self.cert_path}; restore ca/ from backup")
        return self.key


def _generation_of(cert: x509.Certificate, path: Path) -> int:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    match = _INTERMEDIATE_CN_RE.search(str(cns[0].value)) if cns else None
    if match is None:
        raise common.PkiError(
            f"cannot tell the generation of {path}: its CN must end in 'Issuing CA <n>'; restore ca/ from backup"
        )
    return int(match.group(1))


def _intermediate_cn(common_name: str, generation: int) -> str:
    suffix = f" Issuing CA {generation}"
    return common_name[: common.CN_MAX - len(suffix)].rstrip() + suffix


@dataclass
class Hierarchy:
    """Everything in ``ca/``, loaded once: root, current intermediate, retired intermediates.

    The root key is loaded on demand (it is only needed to sign an intermediate or the root CRL
    and may be offline); the current intermediate's key is loaded by :func:`load_hierarchy` when
    asked for, since issuing and the CRL need it.
    """

    layout: common.Layout
    passphrase: bytes | None = field(repr=False)
    root_cert: x509.Certificate | None = None
    intermediate: Intermediate | None = None
    retired: list[Intermediate] = field(default_factory=list)
    _root_key: common.PrivateKey | None = field(default=None, repr=False)
    root_key_encrypted: bool = False

    @property
    def root_key_present(self) -> bool:
        return self.layout.ca_key.exists()

    def root_key(self) -> common.PrivateKey | None:
        if self._root_key is None and self.root_key_present and self.root_cert is not None:
            self._root_key, self.root_key_encrypted = common.load_ca_key(self.layout.ca_key, self.passphrase)
            if not common.same_public_key(self._root_key.public_key(), self.root_cert.public_key()):
                raise common.PkiError(
                    f"{self.layout.ca_key} does not belong to {self.layout.ca_cert}; restore ca/ from backup"
                )
        return self._root_key

    def require_root_key(self, operation: str) -> common.PrivateKey:
        """The root key, or a common.PkiError naming the operation that needs it and how to bring it back."""
        key = self.root_key()
        if key is None:
            layout = self.layout
            raise common.PkiError(
                f"{operation} needs the root CA key {layout.ca_key}, which is absent (root kept offline). "
                f"Bring it back from offline storage (copy it to {layout.ca_key}, mode 0600, or "
                f"'tar -xzf BACKUP.tar.gz -C {layout.root} ca/ca.key' from a rampart.pki backup), re-run, "
                "then move it offline again. Everything else (issuing, renewing, revoking, the broker's CRL) "
                "works without it."
            )
        return key

    def issuing_ca(self) -> authority.CertificateAuthority | None:
        """The intermediate as a signing CA (key loaded), None when there is none yet."""
        inter = self.intermediate
        if inter is None or self.root_cert is None:
            return None
        if not inter.chains:
            raise common.PkiError(
                f"{inter.cert_path} is not signed by {self.layout.ca_cert}; run ensure_ca, which tells how to fix it"
            )
        key = inter.load_key(self.passphrase)
        return authority.CertificateAuthority(cert=inter.cert, key=key, root=self.root_cert, chain=(inter.cert,))

    def previous(self, now: dt.datetime, overlap_days: int) -> Intermediate | None:
        """The intermediate retired by the last rotation, while its overlap lasts; else None.

        The overlap starts when the current intermediate was made (its notBefore + clock skew) and
        lasts ``overlap_days``; it also ends when the previous intermediate expires.
        """
        inter = self.intermediate
        if inter is None:
            return None
        older = [r for r in self.retired if r.generation < inter.generation and r.chains]
        if not older:
            return None
        prev = max(older, key=lambda r: r.generation)
        retired_at = inter.cert.not_valid_before_utc + common.CLOCK_SKEW
        if now >= retired_at + dt.timedelta(days=overlap_days) or prev.cert.not_valid_after_utc <= now:
            return None
        return prev

    def all_cas(self) -> list[authority.CertificateAuthority]:
        """Every CA a leaf of this PKI may carry as issuer (for revocation bookkeeping)."""
        if self.root_cert is None:
            return []
        cas = [authority.CertificateAuthority(cert=self.root_cert, key=None, root=self.root_cert)]
        for inter in [self.intermediate, *self.retired]:
            if inter is not None:
                cas.append(
                    authority.CertificateAuthority(cert=inter.cert, key=None, root=self.root_cert, chain=(inter.cert,))
                )
        return cas


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_hierarchy(layout: common.Layout, passphrase: bytes | None = None) -> Hierarchy:
    """Read ``ca/``; common.PkiError for half-present or broken CAs (never repaired implicitly).

    A root certificate without its key is fine (root offline); a root key without its
    certificate, or an intermediate missing one half, is refused.
    """
    h = Hierarchy(layout=layout, passphrase=passphrase)
    h.root_cert = _load_root_cert(layout)
    h.intermediate = _load_current_intermediate(layout, h.root_cert)
    if layout.retired_dir.is_dir() and h.root_cert is not None:
        h.retired = _load_retired(layout)
    if h.root_cert is not None:
        root = authority.CertificateAuthority(cert=h.root_cert, key=None, root=h.root_cert)
        for inter in [h.intermediate, *h.retired]:
            if inter is not None:
                inter.chains = root.issued(inter.cert)
    return h


def _load_root_cert(layout: common.Layout) -> x509.Certificate | None:
    """The root certificate, None when there is no CA yet; a root key without it is refused."""
    if layout.ca_key.exists() and not layout.ca_cert.exists():
        raise common.PkiError(
            f"{layout.ca_key} exists but {layout.ca_cert} does not; refusing to create a new CA over it. "
            f"Restore {layout.ca_dir} from backup, or move it away to start a new CA."
        )
    if not layout.ca_cert.exists():
        return None
    root_cert = common.load_cert(layout.ca_cert)
    if root_cert is None:
        raise common.PkiError(f"cannot read the root CA {layout.ca_cert}; restore {layout.ca_dir} from backup")
    return root_cert


def _load_current_intermediate(layout: common.Layout, root_cert: x509.Certificate | None) -> Intermediate | None:
    """The current intermediate (key not loaded yet), None when absent; half of one is refused."""
    key_exists, cert_exists = layout.intermediate_key.exists(), layout.intermediate_cert.exists()
    if key_exists != cert_exists:
        present, missing = (
            (layout.intermediate_key, layout.intermediate_cert)
            if key_exists
            else (layout.intermediate_cert, layout.intermediate_key)
        )
        raise common.PkiError(
            f"{present} exists but {missing} does not; refusing to replace the issuing CA implicitly. "
            f"Restore {layout.ca_dir} from backup."
        )
    if not cert_exists:
        return None
    if root_cert is None:
        raise common.PkiError(
            f"{layout.intermediate_cert} exists without the root {layout.ca_cert}; restore it from backup"
        )
    cert = common.load_cert(layout.intermediate_cert)
    if cert is None:
        raise common.PkiError(f"cannot read {layout.intermediate_cert}; restore {layout.ca_dir} from backup")
    return Intermediate(
        generation=_generation_of(cert, layout.intermediate_cert),
        cert=cert,
        cert_path=layout.intermediate_cert,
        key_path=layout.intermediate_key,
    )


def _load_retired(layout: common.Layout) -> list[Intermediate]:
    """The readable ``ca/retired/intermediate-<n>.crt`` files, in name order."""
    retired = []
    for path in sorted(layout.retired_dir.iterdir()):
        match = _RETIRED_RE.fullmatch(path.name)
        cert = common.load_cert(path) if match else None
        if match and cert is not None:
            gen = int(match.group(1))
            retired.append(Intermediate(gen, cert, path, layout.retired_key(gen)))
    return retired


def load_issuing_ca(
    layout: common.Layout, passphrase: bytes | None = None
) -> authority.CertificateAuthority | None:
    """The CA that signs leaves (the intermediate, key loaded), or None when there is none yet."""
    return load_hierarchy(layout, passphrase).issuing_ca()


def pending_rotation(h: Hierarchy, generation: int | None, check_mode: bool) -> str | None:
    """A reason when ensure_ca would still create or rotate the intermediate, else None.

    In check mode that is the expected state (ensure_ca wrote nothing) and the caller reports
    what would happen; outside check mode ensure_ca must have run first.
    """
    inter = h.intermediate
    if generation is None or inter is None or inter.generation == generation:
        return None
    if not check_mode:
        raise common.PkiError(
            f"the issuing CA {inter.cert_path} is generation {inter.generation}, not the requested {generation}; "
            "run ensure_ca first (it rotates the intermediate)"
        )
    return f"issuing CA rotation to generation {generation} pending"


# --------------------------------------------------------------------------------------------
# Creating and rotating
# --------------------------------------------------------------------------------------------


def new_root(common_name: str, key: common.PrivateKey, valid_days: int, now: dt.datetime) -> x509.Certificate:
    """A self-signed root certificate for ``key`` (pathlen 1), valid from now (back-dated)."""
    name = common.cn(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - common.CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    for ext, critical in authority.ca_extensions(ROOT_PATH_LENGTH):
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(key, authority.hash_for(key))


def new_intermediate(
    root: authority.CertificateAuthority,
    common_name: str,
    generation: int,
    key: common.PrivateKey,
    valid_days: int,
    now: dt.datetime,
) -> x509.Certificate:
    """An issuing CA certificate (pathlen 0) for ``key``, CN "<common_name> Issuing CA <generation>"."""
    return root.sign(
        subject=common.cn(_intermediate_cn(common_name, generation)),
        public_key=key.public_key(),
        extensions=authority.ca_extensions(INTERMEDIATE_PATH_LENGTH),
        not_before=now - common.CLOCK_SKEW,
        not_after=now + dt.timedelta(days=valid_days),
    )


def ensure_ca(
    pki_dir: str | os.PathLike[str],
    common_name: str = "Rampart CA",
    key_type: str = common.DEFAULT_KEY_TYPE,
    valid_days: int = 3650,
    check_mode: bool = False,
    now: dt.datetime | None = None,
    *,
    intermediate_valid_days: int = 1825,
    intermediate_generation: int | None = None,
    intermediate_overlap_days: int = 30,
    passphrase: str | None = None,
) -> dict[str, Any]:
    """Create the root and the intermediate if absent, rotate the intermediate on request, else reuse.

    ``valid_days`` is the root's lifetime. A pki_dir of the one-tier layout (root only) gets its
    intermediate on the next run; :func:`issue` then re-issues every leaf (issuer changed).
    Bumping ``intermediate_generation`` (None: keep the current one, 1 for a new CA) retires the
    current intermediate to ``ca/retired/`` and signs a new one; the retired one stays in
    ``ca/chain.pem`` for ``intermediate_overlap_days``.
    Both steps need the root key; without it they fail with a PkiError naming the operation.
    With ``passphrase`` new CA keys are written encrypted and existing unencrypted CA keys are
    encrypted in place (same key).

    Returns ``{changed, created, warnings, key_type, paths, intermediate: {generation, created,
    rotated, reason, not_after, previous_generation}, root_key_present, encrypted: [paths]}``;
    ``created`` is about the root. In check mode nothing is written.
    """
    pw = _check_ca_arguments(
        common_name,
        key_type,
        valid_days,
        intermediate_valid_days,
        intermediate_generation,
        intermediate_overlap_days,
        passphrase,
    )
    now = now or common.utcnow()
    layout = common.Layout(Path(pki_dir))
    run = _plan_ca(load_hierarchy(layout, pw), key_type, intermediate_generation, now)
    root_cert = _build_root(run, common_name, valid_days)
    if run.inter_reason is not None:
        _build_intermediate(run, root_cert, common_name, intermediate_valid_days)
    else:
        _check_current_intermediate(run)
    _encrypt_ca_keys(run)
    chain, mode_fixes = _plan_chain_and_modes(run, root_cert, intermediate_overlap_days)
    if not check_mode:
        _write_ca(run, chain, mode_fixes)
    return run.result


def _check_ca_arguments(
    common_name: Any,
    key_type: str,
    valid_days: Any,
    intermediate_valid_days: Any,
    intermediate_generation: Any,
    intermediate_overlap_days: Any,
    passphrase: Any,
) -> bytes | None:
    """Validate :func:`ensure_ca`'s arguments (ValueError naming the first bad one); the passphrase as bytes."""
    common.check_key_type(key_type)
    common.check_positive_int("valid_days", valid_days)
    common.check_positive_int("intermediate_valid_days", intermediate_valid_days)
    common.check_generation(intermediate_generation)
    common.check_positive_int("intermediate_overlap_days", intermediate_overlap_days, minimum=0)
    pw = common.check_passphrase("the CA key passphrase", passphrase)
    if not isinstance(common_name, str) or not common_name.strip() or len(common_name) > common.CN_MAX:
        raise ValueError(f"CA common name must be 1-{common.CN_MAX} characters, got {common_name!r}")
    return pw


@dataclass
class _CaRun:
    """One :func:`ensure_ca` call between deciding and writing: what was found, the report, the writes."""

    h: Hierarchy
    pw: bytes | None = field(repr=False)
    key_type: str
    now: dt.datetime
    inter: Intermediate | None  # the current intermediate as found on disk
    generation: int
    inter_reason: str | None  # why a new intermediate is made; None: keep the current one
    result: dict[str, Any]
    writes: list[Write] = field(default_factory=list)

    @property
    def layout(self) -> common.Layout:
        return self.h.layout

    @property
    def created(self) -> bool:
        return self.result["created"]

    @property
    def warnings(self) -> list[str]:
        return self.result["warnings"]


def _plan_ca(h: Hierarchy, key_type: str, generation: int | None, now: dt.datetime) -> _CaRun:
    """Decide what :func:`ensure_ca` does; fail before anything is built when a needed CA key cannot be opened."""
    created = h.root_cert is None
    inter = h.intermediate
    if generation is None:  # keep whatever generation is there
        generation = inter.generation if inter is not None else 1
    inter_reason = _intermediate_reason(h.layout, inter, created, generation)
    if inter_reason and not created:
        operation = "creating the issuing CA" if inter is None else f"rotating the issuing CA ({inter_reason})"
        h.require_root_key(operation)
    # Fail before writing anything when an existing CA key cannot be opened.
    if not created:
        h.root_key()
        if inter is not None:
            inter.load_key(h.passphrase)
    result = _ca_result(h, key_type, created, inter, generation, inter_reason)
    return _CaRun(h, h.passphrase, key_type, now, inter, generation, inter_reason, result)


def _intermediate_reason(
    layout: common.Layout, inter: Intermediate | None, created: bool, generation: int
) -> str | None:
    """Why a new intermediate is needed (None: keep the current one); PkiError for a generation going down."""
    if inter is None:
        return "created" if created else "created (the root signed leaves directly until now)"
    if generation < inter.generation:
        raise common.PkiError(
            f"intermediate_generation {generation} is below the generation of the current issuing CA "
            f"({inter.generation}, {layout.intermediate_cert}); it only ever goes up: set it to {inter.generation}"
        )
    if generation > inter.generation:
        return f"rotated from generation {inter.generation} to {generation}"
    if not inter.chains:
        raise common.PkiError(
            f"{layout.intermediate_cert} is not signed by {layout.ca_cert}; restore {layout.ca_dir} from one "
            f"backup, or bump intermediate_generation to {inter.generation + 1} to issue a new intermediate "
            "under this root"
        )
    return None


def _ca_result(
    h: Hierarchy, key_type: str, created: bool, inter: Intermediate | None, generation: int, inter_reason: str | None
) -> dict[str, Any]:
    """The report :func:`ensure_ca` returns, before building anything."""
    return {
        "changed": created or inter_reason is not None,
        "created": created,
        "warnings": [],
        "key_type": key_type if created else (common.key_type_of(h.root_cert.public_key()) or "unknown"),
        "paths": h.layout.ca_paths(),
        "intermediate": {
            "generation": generation if inter_reason else inter.generation,
            "created": inter_reason is not None,
            "rotated": inter is not None and inter_reason is not None,
            "reason": inter_reason,
            "not_after": None,
            "previous_generation": None,
        },
        "root_key_present": created or h.root_key_present,
        "encrypted": [],
    }


def _build_root(run: _CaRun, common_name: str, valid_days: int) -> x509.Certificate:
    """The root certificate: a new one (queued for writing) when there is none, else the existing one."""
    h, layout = run.h, run.layout
    if run.created:
        root_key = common.generate_key(run.key_type)
        root_cert = new_root(common_name, root_key, valid_days, run.now)
        # Key first: a crash before the certificate leaves "key without cert", which
        # load_hierarchy refuses loudly instead of silently minting a second root.
        run.writes += [
            (layout.ca_key, common.key_pem(root_key, run.pw), common.KEY_MODE),
            (layout.ca_cert, common.pem([root_cert]), common.CERT_MODE),
        ]
        h.root_cert, h._root_key = root_cert, root_key
        return root_cert
    assert h.root_cert is not None  # noqa: S101
    root_cert = h.root_cert
    if run.result["key_type"] != run.key_type:
        run.warnings.append(
            f"existing CA in {layout.ca_dir} has key type {run.result['key_type']}, not the requested "
            f"{run.key_type}; it is kept as is (a CA is never replaced implicitly)"
        )
    if root_cert.not_valid_after_utc <= run.now:
        run.warnings.append(f"the root CA in {layout.ca_dir} expired on {root_cert.not_valid_after_utc:%Y-%m-%d}")
    return root_cert


def _build_intermediate(run: _CaRun, root_cert: x509.Certificate, common_name: str, valid_days: int) -> None:
    """A new intermediate (queued for writing), retiring the current one if there is one."""
    h, layout, inter = run.h, run.layout, run.inter
    # Built in memory in check mode too (cheap), so the report shows the real expiry.
    inter_key = common.generate_key(run.key_type)
    inter_cert = new_intermediate(
        authority.CertificateAuthority(cert=root_cert, key=h.root_key(), root=root_cert),
        common_name,
        run.generation,
        inter_key,
        valid_days,
        run.now,
    )
    if inter is not None:
        run.writes += _retire_writes(run, inter)
    run.writes += [
        (layout.intermediate_key, common.key_pem(inter_key, run.pw), common.KEY_MODE),
        (layout.intermediate_cert, common.pem([inter_cert]), common.CERT_MODE),
    ]
    run.result["intermediate"]["not_after"] = inter_cert.not_valid_after_utc.isoformat()
    if inter is not None:
        h.retired.append(inter)
    h.intermediate = Intermediate(
        run.generation, inter_cert, layout.intermediate_cert, layout.intermediate_key, inter_key
    )


def _retire_writes(run: _CaRun, inter: Intermediate) -> list[Write]:
    """Copies of the current intermediate into ``ca/retired/``, made before it is replaced.

    The key goes as it is, or encrypted now when a passphrase is set and it was not.
    """
    layout = run.layout
    retired_key = inter.key_path.read_bytes()
    old_key = inter.load_key(run.pw)
    if run.pw is not None and not inter.encrypted and old_key is not None:
        retired_key = common.key_pem(old_key, run.pw)
        run.result["encrypted"].append(str(layout.retired_key(inter.generation)))
    return [
        (layout.retired_cert(inter.generation), inter.cert_path.read_bytes(), common.CERT_MODE),
        (layout.retired_key(inter.generation), retired_key, common.KEY_MODE),
    ]


def _check_current_intermediate(run: _CaRun) -> None:
    """Report the kept intermediate's expiry, and warn when it is near or its key type differs."""
    inter, layout = run.inter, run.layout
    assert inter is not None  # noqa: S101
    not_after = inter.cert.not_valid_after_utc
    run.result["intermediate"]["not_after"] = not_after.isoformat()
    if not_after - run.now <= dt.timedelta(days=INTERMEDIATE_WARN_DAYS):
        run.warnings.append(
            f"the issuing CA {layout.intermediate_cert} expires on {not_after:%Y-%m-%d}; "
            f"leaves cannot outlive it: bump pki_intermediate_generation to {inter.generation + 1} "
            "(needs the root key)"
        )
    inter_type = common.key_type_of(inter.cert.public_key())
    if inter_type != run.key_type:
        run.warnings.append(
            f"existing issuing CA {layout.intermediate_cert} has key type {inter_type}, not the requested "
            f"{run.key_type}; it is kept (bump pki_intermediate_generation to replace it)"
        )


def _encrypt_ca_keys(run: _CaRun) -> None:
    """Custody: once a passphrase is set, queue every unencrypted CA key to be encrypted in place."""
    h, layout, inter, pw = run.h, run.layout, run.inter, run.pw
    if pw is None or run.created:
        return
    candidates: list[tuple[Path, common.PrivateKey | None, bool]] = []
    if h.root_key_present:
        candidates.append((layout.ca_key, h.root_key(), h.root_key_encrypted))
    if inter is not None and run.inter_reason is None:
        candidates.append((layout.intermediate_key, inter.load_key(pw), inter.encrypted))
    for old in h.retired:
        if old is not inter and old.key_path.exists():
            candidates.append((old.key_path, old.load_key(pw), old.encrypted))
    for path, key, encrypted in candidates:
        if key is not None and not encrypted:
            run.writes.append((path, common.key_pem(key, pw), common.KEY_MODE))
            run.result["encrypted"].append(str(path))


def _plan_chain_and_modes(run: _CaRun, root_cert: x509.Certificate, overlap_days: int) -> tuple[bytes, list[Path]]:
    """``ca/chain.pem`` (current intermediate, previous one during the overlap, root) and the keys whose
    mode needs fixing; sets ``changed`` when anything (writes, modes, directories, chain) would change."""
    h, layout = run.h, run.layout
    assert h.intermediate is not None  # noqa: S101
    previous = h.previous(run.now, overlap_days)
    run.result["intermediate"]["previous_generation"] = previous.generation if previous else None
    chain = common.pem([h.intermediate.cert, *([previous.cert] if previous else []), root_cert])
    written = {w[0] for w in run.writes}
    mode_fixes = [
        p
        for p, m in [(layout.ca_key, common.KEY_MODE), (layout.intermediate_key, common.KEY_MODE)]
        + [(layout.retired_key(r.generation), common.KEY_MODE) for r in h.retired]
        if p not in written and common.mode_needs(p, m)
    ]
    dir_fixes = [d for d in (layout.root, layout.ca_dir) if common.dir_needs(d)]
    if layout.retired_dir.exists() and common.dir_needs(layout.retired_dir):
        dir_fixes.append(layout.retired_dir)
    chain_needs = common.file_needs(layout.ca_chain, chain, common.CERT_MODE) is not None
    run.result["changed"] = bool(run.result["changed"] or run.writes or mode_fixes or dir_fixes or chain_needs)
    return chain, mode_fixes


def _write_ca(run: _CaRun, chain: bytes, mode_fixes: list[Path]) -> None:
    """Apply what :func:`ensure_ca` decided: directories, queued writes, key modes, the chain."""
    layout = run.layout
    for d in (layout.root, layout.ca_dir):
        common.ensure_dir(d)
    if any(p.parent == layout.retired_dir for p, _, _ in run.writes) or layout.retired_dir.exists():
        common.ensure_dir(layout.retired_dir)
    for path, data, mode in run.writes:
        common.write_atomic(path, data, mode)
    for path in mode_fixes:
        path.chmod(common.KEY_MODE)
    common.sync_file(layout.ca_chain, chain, common.CERT_MODE)
    if run.writes:
        common.fsync_dir(layout.ca_dir)
