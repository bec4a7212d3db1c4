"""Revocation: ``ca/revoked.json`` (every revocation ever made, never lost) and the CRLs signed from
it: ``ca/crl.pem`` (the issuing CA's, plus the previous one's during a rotation overlap; what the
broker checks) and ``ca/root-crl.pem`` (the root's, re-signed only while the root key is present).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.pki import authority, common, hierarchy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

# The root key is meant to stay offline, so the root CRL lives long and is re-signed early
# whenever the root key happens to be present; mosquitto never reads it (leaf-only CRL check).
ROOT_CRL_VALID_DAYS = 365
ROOT_CRL_RENEW_BEFORE_DAYS = 90
# A run that ends with the broker's CRL this close to nextUpdate says so: past it, every client
# certificate fails verification.
CRL_WARN_DAYS = 7
STATE_VERSION = 1

Authority = authority.CertificateAuthority
Crls = list[tuple[bytes, x509.CertificateRevocationList]]


def iso(when: dt.datetime) -> str:
    """``when`` as the UTC timestamp revoked.json and the results use: 2026-01-31T12:00:00Z."""
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


# --------------------------------------------------------------------------------------------
# revoked.json
# --------------------------------------------------------------------------------------------


def read_revocations(layout: common.Layout) -> list[dict[str, Any]]:
    """Entries of ``ca/revoked.json`` (oldest first); PkiError when the file is damaged."""
    path = layout.revoked_state
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        entries = data["revoked"]
        for entry in entries:
            int(entry["serial"], 16)
            _parse_iso(entry["revoked_at"])
            if not isinstance(entry["name"], str):
                raise TypeError("name")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise common.PkiError(
            f"cannot read {path} ({type(exc).__name__}: {exc}); restore it from backup: "
            "it is the only record of which certificates are revoked"
        ) from None
    return list(entries)


def _state_bytes(entries: list[dict[str, Any]]) -> bytes:
    return (json.dumps({"version": STATE_VERSION, "revoked": entries}, indent=2, sort_keys=True) + "\n").encode()


def revoked_serials(layout: common.Layout) -> frozenset[int]:
    """Every serial ever revoked in this PKI."""
    return frozenset(int(e["serial"], 16) for e in read_revocations(layout))


def _key_id(ca_cert: x509.Certificate) -> str:
    """How revoked.json names an issuer: its subject key identifier in hex."""
    return (authority.ski(ca_cert) or b"").hex()


# --------------------------------------------------------------------------------------------
# CRL files
# --------------------------------------------------------------------------------------------


def _split_crls(data: bytes) -> Crls:
    """(PEM block, CRL) for every CRL in a PEM file; unreadable blocks are dropped."""
    out = []
    for match in re.finditer(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----\n?", data, re.S):
        block = match.group(0)
        block = block if block.endswith(b"\n") else block + b"\n"
        try:
            out.append((block, x509.load_pem_x509_crl(block)))
        except ValueError:
            continue
    return out


def _read_crls(path: Path) -> Crls:
    try:
        return _split_crls(path.read_bytes())
    except OSError:
        return []


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


@dataclass
class _CrlPlan:
    label: str
    ca: Authority | None
    pem: bytes | None  # what goes into the file (the kept block or a new one); None: nothing usable
    next_update: dt.datetime | None
    reason: str | None  # why it is (or would be) re-signed; None: kept byte-for-byte
    warning: str | None = None


def _plan_crl(
    label: str,
    ca: Authority,
    existing: Crls,
    entries: list[dict[str, Any]],
    valid_days: int,
    renew_before: dt.timedelta,
    now: dt.datetime,
    key: common.PrivateKey | None,
    missing_key_hint: str,
) -> _CrlPlan:
    """Keep ``ca``'s CRL from ``existing`` when current, else sign a new one (if ``key`` is there)."""
    wanted = {int(e["serial"], 16): _parse_iso(e["revoked_at"]) for e in entries if _issued_by(e, ca)}
    old = next(((b, c) for b, c in existing if ca.owns_crl(c)), None)
    reason = _crl_reason(old[1] if old else None, set(wanted), renew_before, now)
    if reason is None:
        assert old is not None  # noqa: S101
        return _CrlPlan(label, ca, old[0], old[1].next_update_utc, None)
    if key is None:
        kept = old[0] if old else None
        nu = old[1].next_update_utc if old else None
        return _CrlPlan(label, ca, kept, nu, None, f"{label} needs re-signing ({reason}) but {missing_key_hint}")
    signer = Authority(cert=ca.cert, key=key, root=ca.root, chain=ca.chain)
    crl = signer.sign_crl(wanted.items(), now, valid_days, _crl_number(old[1]) + 1 if old else 1)
    return _CrlPlan(label, ca, crl.public_bytes(serialization.Encoding.PEM), crl.next_update_utc, reason)


def _issued_by(entry: dict[str, Any], ca: Authority) -> bool:
    return entry.get("issuer_key_id") == _key_id(ca.cert)


def _crl_reason(
    crl: x509.CertificateRevocationList | None, wanted: set[int], renew_before: dt.timedelta, now: dt.datetime
) -> str | None:
    """Why a CA's CRL must be re-signed: none yet, the revoked set changed, nextUpdate is near; else None."""
    if crl is None:
        return "new"
    have = {r.serial_number for r in crl}
    next_update = crl.next_update_utc
    if have != wanted:
        added, removed = len(wanted - have), len(have - wanted)
        return f"revoked set changed (+{added}, -{removed})"
    if next_update is None or next_update - now <= renew_before:
        when = f"{next_update:%Y-%m-%d}" if next_update else "never"
        return f"nextUpdate {when} is within {renew_before.days} days"
    return None


# --------------------------------------------------------------------------------------------
# update_crl
# --------------------------------------------------------------------------------------------


def update_crl(
    pki_dir: str | os.PathLike[str],
    revoked: Iterable[str] = (),
    valid_days: int = 30,
    renew_before_days: int = 15,
    check_mode: bool = False,
    now: dt.datetime | None = None,
    *,
    passphrase: str | None = None,
    intermediate_generation: int | None = None,
    intermediate_overlap_days: int = 30,
    keep_clients: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Record the revocation of each client in ``revoked`` and keep the CRLs fresh.

    A name's *current* certificate (``clients/<name>/cert.pem``) is added to ``ca/revoked.json`` (serial, name,
    date, issuer) unless already there; entries are never removed, so an un-revoked name's old serial stays on the
    CRL. ``ca/crl.pem`` holds the intermediate's CRL (plus the previous intermediate's during a rotation overlap:
    OpenSSL fails a leaf whose issuer has no CRL); ``ca/root-crl.pem`` the root's, re-signed only while the root key
    is present. A CRL is re-signed when its revoked set changed or nextUpdate is within ``renew_before_days``;
    otherwise the file stays byte-for-byte.

    ``intermediate_generation``, when given, is the generation ensure_ca was asked for: in check mode a pending
    rotation is reported as a new CRL; outside check mode a mismatch is an error.

    ``keep_clients`` names every client the deployment still has: any other is retired (review M3); None: none is.

    Returns ``{changed, path, next_update, reason, revoked: [names currently revoked],
    newly_revoked: [names], retired: [names], entries, root: {changed, path, next_update, reason}, warnings}``.
    """
    names, pw, keep = _check_crl_arguments(
        valid_days, renew_before_days, intermediate_overlap_days, intermediate_generation, revoked, passphrase,
        keep_clients,
    )
    run = _CrlRun(hierarchy.load_hierarchy(common.Layout(Path(pki_dir)), pw), now or common.utcnow(), check_mode)
    pending = hierarchy.pending_rotation(run.h, intermediate_generation, check_mode)
    issuing = run.h.issuing_ca()
    if issuing is None:
        return _report_without_ca(run, names)
    entries, new_entries, retiring = _record_revocations(run, names, keep)
    if pending:  # check mode with a rotation pending: the new intermediate would get a new CRL
        run.result.update(changed=True, reason=f"new ({pending})")
        return run.result
    crl = _plan_broker_crl(run, issuing, entries, valid_days, renew_before_days, intermediate_overlap_days)
    root_crl = _plan_root_crl(run, issuing, entries)
    run.result["changed"] = crl is not None or bool(new_entries) or root_crl is not None or bool(retiring)
    if not check_mode and run.result["changed"]:
        _write_crls(run.layout, _state_bytes(entries) if new_entries else None, crl, root_crl)
        _move_retired(run, retiring)
    return run.result


def _check_crl_arguments(
    valid_days: Any,
    renew_before_days: Any,
    overlap_days: Any,
    generation: Any,
    revoked: Iterable[str],
    passphrase: Any,
    keep_clients: Iterable[str] | None,
) -> tuple[list[str], bytes | None, set[str] | None]:
    """Validate :func:`update_crl`'s arguments (ValueError naming the first bad one): names, passphrase, the
    clients to keep (None: retire nothing)."""
    common.check_window("crl_valid_days", valid_days, "crl_renew_before_days", renew_before_days)
    common.check_positive_int("intermediate_overlap_days", overlap_days, minimum=0)
    common.check_generation(generation)
    names = common.check_names("revoked", revoked)
    keep = None if keep_clients is None else set(common.check_names("keep_clients", keep_clients))
    return names, common.check_passphrase("the CA key passphrase", passphrase), keep


@dataclass
class _CrlRun:
    """One :func:`update_crl` call: the hierarchy loaded once and the report."""

    h: hierarchy.Hierarchy
    now: dt.datetime
    check_mode: bool
    result: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.result = {
            "changed": False,
            "path": str(self.layout.crl),
            "next_update": None,
            "reason": None,
            "revoked": [],
            "newly_revoked": [],
            "retired": [],
            "entries": 0,
            "root": {"changed": False, "path": str(self.layout.root_crl), "next_update": None, "reason": None},
            "warnings": [],
        }

    @property
    def layout(self) -> common.Layout:
        return self.h.layout

    @property
    def warnings(self) -> list[str]:
        return self.result["warnings"]


def _report_without_ca(run: _CrlRun, names: list[str]) -> dict[str, Any]:
    """Without an issuing CA: an error, except in check mode before the CA exists (everything would be new)."""
    if not run.check_mode:
        raise common.PkiError(f"no CA in {run.layout.ca_dir} (no issuing intermediate); create it first (ensure_ca)")
    run.result.update(changed=True, reason="new", revoked=sorted(names), newly_revoked=sorted(names))
    if not run.layout.root_crl.exists():
        run.result["root"].update(changed=True, reason="new")
    return run.result


def _record_revocations(run: _CrlRun, names: list[str], keep: set[str] | None
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Path]]:
    """Every entry of revoked.json plus the new ones (not written yet), and the client folders to retire:
    (entries, new entries, folders). The new entries revoke each name in ``names`` and, when ``keep`` is given,
    each client folder no name in it claims (review M3, :func:`_plan_retirement`)."""
    entries, new_entries = _revoke_names(run, names)
    if keep is None:
        return entries, new_entries, []
    retired_entries, folders = _plan_retirement(run, keep, {e["serial"] for e in entries})
    return entries + retired_entries, new_entries + retired_entries, folders


def _revoke_names(run: _CrlRun, names: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every entry of revoked.json plus the new ones for ``names`` (not written yet): (entries, new entries). A
    name's current certificate and every earlier one still on record (``previous/``, review M2) are revoked."""
    entries = read_revocations(run.layout)
    known = {e["serial"] for e in entries}
    cas = run.h.all_cas()
    new_entries: list[dict[str, Any]] = []
    for name in names:
        current, previous = _held_certificates(run.layout, name)
        if not current and not previous:
            _note_missing_certificate(run, name, entries)
            continue
        found = _revoke_certificates(run, name, current, previous, cas, known)
        if found is None:
            continue
        new_entries += found
        if found:
            run.result["newly_revoked"].append(name)
        run.result["revoked"].append(name)
    run.result["revoked"].sort()
    return entries + new_entries, new_entries


def _revoke_certificates(run: _CrlRun, name: str, current: list[x509.Certificate], previous: list[x509.Certificate],
                         cas: list[Authority], known: set[str]) -> list[dict[str, Any]] | None:
    """The new revoked.json entries for one name's certificates (``known`` gains their serials); None when none of
    them is this PKI's (a foreign current certificate is warned about)."""
    new_entries, ours = [], False
    for cert in [*current, *previous]:
        serial = format(cert.serial_number, "x")
        if serial in known:
            ours = True
            continue
        issuer = next((ca for ca in cas if ca.issued(cert)), None)
        if issuer is None:
            if cert in current:
                run.warnings.append(f"client {name!r}: its certificate was not issued by this PKI; not revoked")
            continue
        ours = True
        new_entries.append(_entry(serial, name, cert, issuer, run.now))
        known.add(serial)
    return new_entries if ours else None


def _held_certificates(layout: common.Layout, name: str) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """A client's certificates on file: ([its current one] or [], the earlier ones kept in ``previous/``)."""
    paths = layout.leaf("client", name)
    current = [c for c in (common.load_cert(paths.cert),) if c is not None]
    return current, [c for c in map(common.load_cert, sorted(paths.previous.glob("*.pem"))) if c is not None]


def pinned_fingerprints(pki_dir: str | Path, names: list[str], now: dt.datetime | None = None) -> list[str]:
    """The SHA-1 fingerprints (``SHA1:AA:BB:...``, as librelp's tls.permittedPeer writes them) of every certificate
    the clients ``names`` hold that is neither revoked (``ca/revoked.json``) nor expired: the current one and the
    earlier ones kept in ``previous/``, so a renewal is admitted before and after its holder switches. A RELP
    listener that admits only these refuses a revoked, retired or superseded certificate without a CRL, which
    librelp cannot check (review L5). A name without a certificate on file has none."""
    layout, when = common.Layout(Path(pki_dir)), now or dt.datetime.now(dt.UTC)
    revoked = revoked_serials(layout) if layout.ca_dir.is_dir() else frozenset()
    pins = set()
    for name in names:
        current, previous = _held_certificates(layout, name)
        pins |= {"SHA1:" + c.fingerprint(hashes.SHA1()).hex(":").upper() for c in (*current, *previous)  # noqa: S303
                 if c.serial_number not in revoked and c.not_valid_after_utc > when}
    return sorted(pins)


def _plan_retirement(run: _CrlRun, keep: set[str], known: set[str]) -> tuple[list[dict[str, Any]], list[Path]]:
    """Review M3: the client folders no name in ``keep`` claims, and the revoked.json entries for every certificate
    they hold that is not revoked yet (``known`` holds the serials revoked so far): (new entries, folders). Once
    revoked.json records them, :func:`_move_retired` moves each folder whole to ``retired-clients/<name>-<UTC
    time>``, so a name that comes back gets a new key and serial."""
    clients = run.layout.profile_dir("client")
    folders = sorted(p for p in clients.iterdir() if p.is_dir() and p.name not in keep) if clients.is_dir() else []
    cas = run.h.all_cas()
    new_entries: list[dict[str, Any]] = []
    for folder in folders:
        current, previous = _held_certificates(run.layout, folder.name)
        new_entries += _revoke_certificates(run, folder.name, current, previous, cas, known) or []
        run.result["retired"].append(folder.name)
    if new_entries:
        run.result["newly_revoked"] = sorted({*run.result["newly_revoked"], *(e["name"] for e in new_entries)})
    return new_entries, folders


def _move_retired(run: _CrlRun, folders: list[Path]) -> None:
    """Move each retired client's folder, whole, to retired-clients/ (after revoked.json recorded its serials)."""
    if not folders:
        return
    target = run.layout.retired_clients
    common.ensure_dir(target)
    stamp = run.now.strftime("%Y%m%dT%H%M%SZ")
    for folder in folders:
        folder.rename(target / f"{folder.name}-{stamp}")
    common.fsync_dir(target)
    common.fsync_dir(run.layout.profile_dir("client"))


def _note_missing_certificate(run: _CrlRun, name: str, entries: list[dict[str, Any]]) -> None:
    """A revoked name without a certificate: still revoked when revoked.json has it, else a warning."""
    if any(e["name"] == name for e in entries):
        run.result["revoked"].append(name)
        return
    hint = " (in check mode: unless an earlier task would issue it)" if run.check_mode else ""
    run.warnings.append(
        f"revoked client {name!r} has no certificate in {run.layout.profile_dir('client')}; nothing to revoke{hint}"
    )


def _entry(serial: str, name: str, cert: x509.Certificate, issuer: Authority, now: dt.datetime) -> dict[str, Any]:
    """One revoked.json entry."""
    return {
        "serial": serial,
        "name": name,
        "revoked_at": iso(now),
        "issuer": issuer.cert.subject.rfc4514_string(),
        "issuer_key_id": _key_id(issuer.cert),
        "not_after": iso(cert.not_valid_after_utc),
    }


def _plan_broker_crl(
    run: _CrlRun,
    issuing: Authority,
    entries: list[dict[str, Any]],
    valid_days: int,
    renew_before_days: int,
    overlap_days: int,
) -> bytes | None:
    """The broker's CRL file (current intermediate, previous one during the overlap), reported in the
    result; its bytes when the file needs writing (content or mode), else None."""
    layout, now = run.layout, run.now
    existing = _read_crls(layout.crl)
    window = dt.timedelta(days=renew_before_days)
    plans = [
        _plan_crl(
            "the CRL of the issuing CA", issuing, existing, entries, valid_days, window, now, issuing.key,
            "its key is missing",
        )
    ]
    previous = run.h.previous(now, overlap_days)
    if previous is not None:
        prev_ca = Authority(cert=previous.cert, key=None, root=issuing.root, chain=(previous.cert,))
        plans.append(
            _plan_crl(
                f"the CRL of the previous issuing CA (generation {previous.generation})", prev_ca, existing, entries,
                valid_days, window, now, previous.load_key(run.h.passphrase), f"{previous.key_path} is missing",
            )
        )
    crl_bytes = b"".join(p.pem for p in plans if p.pem)
    run.warnings.extend(p.warning for p in plans if p.warning)
    need = common.file_needs(layout.crl, crl_bytes, common.CERT_MODE)
    _report_broker_crl(run, issuing, plans, existing, entries, need)
    return crl_bytes if need is not None else None


def _report_broker_crl(
    run: _CrlRun,
    issuing: Authority,
    plans: list[_CrlPlan],
    existing: Crls,
    entries: list[dict[str, Any]],
    need: str | None,
) -> None:
    """Fill in the result for ``ca/crl.pem`` and warn about CRLs close to their nextUpdate."""
    reasons = [p.reason for p in plans[:1] if p.reason]
    reasons += [f"{p.label}: {p.reason}" for p in plans[1:] if p.reason]
    planned = [p.ca for p in plans if p.ca is not None]
    if any(not any(ca.owns_crl(c) for ca in planned) for _, c in existing):
        reasons.append("dropped the CRL of a CA no longer trusted (rotation overlap over)")
    if need == "content" and not reasons:
        reasons.append("file repaired")
    current = plans[0]
    run.result["entries"] = sum(1 for e in entries if _issued_by(e, issuing))
    run.result["next_update"] = iso(current.next_update) if current.next_update else None
    run.result["reason"] = "; ".join(reasons) or ("file mode" if need == "mode" else None)
    for plan in plans:
        if plan.next_update is not None and plan.next_update - run.now < dt.timedelta(days=CRL_WARN_DAYS):
            run.warnings.append(
                f"{plan.label} in {run.layout.crl} expires on {plan.next_update:%Y-%m-%d %H:%M} UTC; past that the "
                "broker rejects every client certificate: re-run with the CA keys present"
            )


def _plan_root_crl(run: _CrlRun, issuing: Authority, entries: list[dict[str, Any]]) -> bytes | None:
    """The root's CRL (re-signed only while the root key is present), reported in the result; its bytes
    when the file needs writing, else None."""
    layout = run.layout
    root_plan = _plan_crl(
        "the root CRL",
        Authority(cert=issuing.root, key=None, root=issuing.root),
        _read_crls(layout.root_crl),
        entries,
        ROOT_CRL_VALID_DAYS,
        dt.timedelta(days=ROOT_CRL_RENEW_BEFORE_DAYS),
        run.now,
        run.h.root_key(),
        f"the root key {layout.ca_key} is offline (not needed by the broker; bring it back to refresh it)",
    )
    if root_plan.warning:
        run.warnings.append(root_plan.warning)
    need = common.file_needs(layout.root_crl, root_plan.pem, common.CERT_MODE) if root_plan.pem else None
    run.result["root"].update(
        changed=need is not None,
        next_update=iso(root_plan.next_update) if root_plan.next_update else None,
        reason=root_plan.reason,
    )
    return root_plan.pem if need is not None else None


def _write_crls(layout: common.Layout, state: bytes | None, crl: bytes | None, root_crl: bytes | None) -> None:
    """Write what changed. State first: a crash before the CRL leaves a recorded revocation the next run signs."""
    common.ensure_dir(layout.ca_dir)
    if state is not None:
        common.write_atomic(layout.revoked_state, state, common.CERT_MODE)
    if crl is not None:
        common.sync_file(layout.crl, crl, common.CERT_MODE)
    if root_crl is not None:
        common.sync_file(layout.root_crl, root_crl, common.CERT_MODE)
    common.fsync_dir(layout.ca_dir)
