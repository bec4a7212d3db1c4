"""Minimal private CA on the control node, on `cryptography` alone (no community.crypto).

Two entry points, both idempotent and both with a check mode that writes nothing at all:

* :func:`ensure_ca` creates the root CA once and afterwards only reuses it. A CA is never
  regenerated behind the operator's back: a CA whose key type differs from the requested one is
  kept and reported as a warning; a half-present CA (key without certificate or the reverse) is an
  error, because the fix is a restore from backup, not a new root.
* :func:`issue` issues, re-issues or leaves alone a whole list of leaf certificates in one call,
  loading the issuing CA once. Every re-issue carries a reason.

Layout under ``pki_dir`` (every directory 0700, every private key 0600)::

    ca/ca.key          root key, PKCS#8 PEM
    ca/ca.crt          self-signed root
    ca/chain.pem       bundle a broker verifies client certificates with (issuing CA ... root)
    servers/<name>/    key.pem, cert.pem, chain.pem (leaf + intermediates), ca.pem (root)
    clients/<name>/    the same four files

Seams for the next iteration, so it slots in without a rewrite:

* :class:`CertificateAuthority` is the only thing that signs. An intermediate is a second
  instance whose ``chain`` holds its own certificate; :func:`load_issuing_ca` is the one place that
  picks which CA issues leaves (today the root). Every bundle is computed from ``chain``/``root``,
  so ``chain.pem`` files grow the intermediate without touching the issuing code.
* A CRL generator is another method on :class:`CertificateAuthority` (the root already carries
  ``cRLSign``) plus a ``crl.pem`` path on :class:`Layout`.
* Rotation is :func:`ensure_ca` growing an explicit "rotate" step; :func:`issue` already re-issues
  every leaf whose issuer is not the current CA.

Key material never leaves this module: results carry names, reasons and paths only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072")
DEFAULT_KEY_TYPE = "ec-p256"
PROFILES = ("server", "client")

DIR_MODE = 0o700
KEY_MODE = 0o600
CERT_MODE = 0o644

# Certificates are back-dated by this much so a host whose clock runs slightly behind accepts them.
CLOCK_SKEW = dt.timedelta(minutes=5)
# Root only issues leaves today; pathlen 1 leaves room for exactly one intermediate later.
ROOT_PATH_LENGTH = 1

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# One DNS label (LDH, RFC 1123); a DNS name may start with a single "*." wildcard label.
_DNS_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# X.520 upper bound for a common name.
_CN_MAX = 64

_PROFILE_EKU = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PkiError(RuntimeError):
    """The PKI on disk is in a state this module refuses to repair on its own."""


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertSpec:
    """One requested leaf certificate, validated and normalised."""

    name: str
    profile: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()

    def san_set(self) -> frozenset[tuple[str, str]]:
        """SANs in a comparable form (DNS case-insensitive, IPs canonical)."""
        return frozenset([("dns", d.lower()) for d in self.dns_names] + [("ip", str(i)) for i in self.ip_addresses])


def check_key_type(key_type: str) -> str:
    """Return ``key_type`` if allowed, else raise ValueError naming the allowed set."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"key type {key_type!r} is not allowed; use one of: {', '.join(KEY_TYPES)}")
    return key_type


def _check_positive_int(label: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{label} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_dns_name(cert_name: str, dns: Any) -> str:
    if not isinstance(dns, str) or not dns:
        raise ValueError(f"certificate {cert_name!r}: DNS name {dns!r} must be a non-empty string")
    try:
        ipaddress.ip_address(dns)
    except ValueError:
        pass
    else:
        raise ValueError(f"certificate {cert_name!r}: DNS name {dns!r} is an IP address; list it under ip_addresses")
    labels = dns[:-1].split(".") if dns.endswith(".") else dns.split(".")
    if labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]
    if len(dns) > 253 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        raise ValueError(f"certificate {cert_name!r}: {dns!r} is not a valid DNS name")
    return dns.rstrip(".")


def is_valid_name(value: Any) -> bool:
    """True for a usable certificate name (it becomes a directory name and the CN)."""
    return isinstance(value, str) and NAME_RE.match(value) is not None


def is_ip_address(value: Any) -> bool:
    """True when ``value`` parses as an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_valid_dns_name(value: Any) -> bool:
    """True for a DNS name this module accepts in a subjectAltName (not an IP address)."""
    try:
        _check_dns_name("-", value)
    except ValueError:
        return False
    return True


def validate_specs(certificates: Iterable[Mapping[str, Any]]) -> list[CertSpec]:
    """Turn raw certificate specs into :class:`CertSpec` objects or raise ValueError.

    Names must match ``NAME_RE`` (they become directory names). A name may appear once per
    profile; results are keyed by name, so one call also refuses the same name in both profiles.
    """
    if isinstance(certificates, (str, bytes, Mapping)) or not isinstance(certificates, Iterable):
        raise ValueError("certificates must be a list of {name, profile, dns_names, ip_addresses} mappings")
    specs: list[CertSpec] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(certificates):
        if not isinstance(raw, Mapping):
            raise ValueError(f"certificates[{index}] must be a mapping, got {type(raw).__name__}")
        unknown = set(raw) - {"name", "profile", "dns_names", "ip_addresses"}
        if unknown:
            raise ValueError(f"certificates[{index}] has unknown keys: {', '.join(sorted(unknown))}")
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ValueError(
                f"certificates[{index}].name {name!r} is invalid: use 1-64 characters from "
                "A-Z a-z 0-9 . _ -, starting with a letter or digit"
            )
        profile = raw.get("profile")
        if profile not in PROFILES:
            raise ValueError(f"certificate {name!r}: profile {profile!r} must be one of: {', '.join(PROFILES)}")
        if name in seen:
            where = "twice" if seen[name] == profile else "as both server and client in one call"
            raise ValueError(f"certificate name {name!r} appears {where}; names must be unique")
        seen[name] = profile

        dns_raw = raw.get("dns_names") or []
        ip_raw = raw.get("ip_addresses") or []
        if isinstance(dns_raw, str) or isinstance(ip_raw, str):
            raise ValueError(f"certificate {name!r}: dns_names and ip_addresses must be lists")
        dns_names = tuple(dict.fromkeys(_check_dns_name(name, d) for d in dns_raw))
        ips: list[IPAddress] = []
        for ip in ip_raw:
            try:
                ips.append(ipaddress.ip_address(ip))
            except ValueError:
                raise ValueError(f"certificate {name!r}: {ip!r} is not a valid IP address") from None
        if profile == "server" and not dns_names and not ips:
            raise ValueError(f"server certificate {name!r} needs at least one DNS name or IP address")
        specs.append(CertSpec(name, profile, dns_names, tuple(dict.fromkeys(ips))))
    return specs


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def generate_key(key_type: str) -> PrivateKey:
    """Generate a fresh private key of an allowed type."""
    check_key_type(key_type)
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def key_type_of(key: PrivateKey | PublicKey) -> str | None:
    """Name an existing key's type in ``KEY_TYPES`` terms, or None for anything else."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}.get(key.curve.name)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) and key.key_size == 3072:
        return "rsa-3072"
    return None


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(path: Path) -> PrivateKey | None:
    """Load a private key written by this module; None when absent or unusable."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)) else None


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _same_public_key(a: PublicKey, b: PublicKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def _pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafPaths:
    dir: Path
    key: Path
    cert: Path
    chain: Path
    ca: Path

    def as_result(self) -> dict[str, str]:
        return {"cert": str(self.cert), "key": str(self.key), "chain": str(self.chain), "ca": str(self.ca)}


@dataclass(frozen=True)
class Layout:
    """Where everything lives under ``pki_dir``; the only place that knows file names."""

    root: Path

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_key(self) -> Path:
        return self.ca_dir / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "ca.crt"

    @property
    def ca_chain(self) -> Path:
        return self.ca_dir / "chain.pem"

    def profile_dir(self, profile: str) -> Path:
        return self.root / f"{profile}s"

    def leaf(self, profile: str, name: str) -> LeafPaths:
        d = self.profile_dir(profile) / name
        return LeafPaths(d, d / "key.pem", d / "cert.pem", d / "chain.pem", d / "ca.pem")


def _ensure_dir(path: Path) -> bool:
    """Create ``path`` (and missing parents) with mode 0700 or tighten it; True if anything changed."""
    changed = False
    if not path.is_dir():
        # Parents above pki_dir are the operator's business: plain mkdir, umask decides.
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several forks may create servers/ at once (one task per host): losing that race is fine.
        try:
            path.mkdir(mode=DIR_MODE)
            changed = True
        except FileExistsError:
            pass
    if path.stat().st_mode & 0o7777 != DIR_MODE:
        path.chmod(DIR_MODE)
        changed = True
    return changed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` via a same-directory temp file with the final mode, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_needs(path: Path, data: bytes, mode: int) -> str | None:
    """What writing ``data`` to ``path`` would do: None (nothing), "content" or "mode"."""
    try:
        if path.read_bytes() != data:
            return "content"
    except OSError:
        return "content"
    if path.stat().st_mode & 0o7777 != mode:
        return "mode"
    return None


def _sync_file(path: Path, data: bytes, mode: int) -> bool:
    """Make ``path`` hold ``data`` with ``mode``, touching nothing that already matches."""
    need = _file_needs(path, data, mode)
    if need == "content":
        _write_atomic(path, data, mode)
    elif need == "mode":
        path.chmod(mode)
    return need is not None


def _dir_needs(path: Path) -> bool:
    return not path.is_dir() or path.stat().st_mode & 0o7777 != DIR_MODE


# --------------------------------------------------------------------------------------------
# The CA
# --------------------------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    return hashes.SHA384() if key_type_of(key) == "ec-p384" else hashes.SHA256()


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


@dataclass(frozen=True)
class CertificateAuthority:
    """A loaded CA that can sign. Load it once per call; it is immutable afterwards.

    ``chain`` is this CA's own certificate followed by any further intermediates up to (but not
    including) the root; it is empty for the root itself. ``root`` is the trust anchor.
    """

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)
    root: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def load_root(cls, layout: Layout) -> CertificateAuthority | None:
        """Load the root CA, None if it does not exist; PkiError if it is half there or broken."""
        key_exists, cert_exists = layout.ca_key.exists(), layout.ca_cert.exists()
        if not key_exists and not cert_exists:
            return None
        if key_exists != cert_exists:
            present, missing = (layout.ca_key, layout.ca_cert) if key_exists else (layout.ca_cert, layout.ca_key)
            raise PkiError(
                f"{present} exists but {missing} does not; refusing to create a new CA over it. "
                f"Restore {layout.ca_dir} from backup, or move it away to start a new CA."
            )
        key, cert = _load_key(layout.ca_key), _load_cert(layout.ca_cert)
        if key is None or cert is None:
            raise PkiError(f"cannot read the CA in {layout.ca_dir}; restore it from backup")
        if not _same_public_key(key.public_key(), cert.public_key()):
            raise PkiError(f"{layout.ca_key} does not belong to {layout.ca_cert}; restore the CA from backup")
        return cls(cert=cert, key=key, root=cert)

    @property
    def key_type(self) -> str | None:
        return key_type_of(self.key)

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    def bundle(self) -> list[x509.Certificate]:
        """What verifies certificates this CA issued: the issuing chain, then the root."""
        return [*self.chain, self.root]

    def leaf_chain(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        """A leaf followed by its issuer chain minus the root (what a TLS peer presents)."""
        return [leaf, *self.chain]

    def issued(self, cert: x509.Certificate) -> bool:
        """True when ``cert`` was signed by this CA (name, AKI and signature all match)."""
        if cert.issuer != self.cert.subject:
            return False
        try:
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        except x509.ExtensionNotFound:
            aki = None
        if aki is not None and aki != _ski(self.cert):
            return False
        try:
            cert.verify_directly_issued_by(self.cert)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def sign(
        self,
        *,
        subject: x509.Name,
        public_key: PublicKey,
        extensions: Sequence[tuple[x509.ExtensionType, bool]],
        not_before: dt.datetime,
        not_after: dt.datetime,
    ) -> x509.Certificate:
        """Sign any certificate (leaf today, intermediate later) with this CA's key.

        Adds the serial, issuer, SKI and AKI; the caller supplies the profile extensions.
        ``not_after`` is capped at this CA's own expiry: a certificate never outlives its issuer.
        """
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(min(not_after, self.not_after))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.cert.public_key()), critical=False)
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(self.key, _hash_for(self.key))


def load_issuing_ca(layout: Layout) -> CertificateAuthority | None:
    """The CA that signs leaves. Today the root; the intermediate slots in here."""
    return CertificateAuthority.load_root(layout)


def _new_root(common_name: str, key: PrivateKey, valid_days: int, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=ROOT_PATH_LENGTH), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _hash_for(key))
    )


def ensure_ca(
    pki_dir: str | os.PathLike[str],
    common_name: str = "Rampart CA",
    key_type: str = DEFAULT_KEY_TYPE,
    valid_days: int = 3650,
    check_mode: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Create the root CA if absent, otherwise reuse it untouched.

    Returns ``{changed, created, warnings, key_type, paths: {cert, key, chain}}``. A CA of another
    key type than requested is kept, with a warning. Missing bundle files and loose directory or
    key modes are repaired (``changed`` without ``created``). In check mode nothing is written.
    """
    check_key_type(key_type)
    _check_positive_int("valid_days", valid_days)
    if not isinstance(common_name, str) or not common_name.strip() or len(common_name) > _CN_MAX:
        raise ValueError(f"CA common name must be 1-{_CN_MAX} characters, got {common_name!r}")
    now = now or _utcnow()
    layout = Layout(Path(pki_dir))
    warnings: list[str] = []
    ca = CertificateAuthority.load_root(layout)
    created = ca is None

    if ca is None:
        if not check_mode:
            _ensure_dir(layout.root)
            _ensure_dir(layout.ca_dir)
            key = generate_key(key_type)
            cert = _new_root(common_name, key, valid_days, now)
            # Key first: a crash before the certificate leaves "key without cert", which
            # load_root refuses loudly instead of silently minting a second root.
            _write_atomic(layout.ca_key, _key_pem(key), KEY_MODE)
            _write_atomic(layout.ca_cert, _pem([cert]), CERT_MODE)
            _write_atomic(layout.ca_chain, _pem([cert]), CERT_MODE)
            _fsync_dir(layout.ca_dir)
        changed = True
        actual_type = key_type
    else:
        actual_type = ca.key_type or "unknown"
        if actual_type != key_type:
            warnings.append(
                f"existing CA in {layout.ca_dir} has key type {actual_type}, not the requested {key_type}; "
                "it is kept as is (a CA is never replaced implicitly)"
            )
        if ca.not_after <= now:
            warnings.append(f"the CA in {layout.ca_dir} expired on {ca.not_after:%Y-%m-%d}; rotate it")
        chain = _pem(ca.bundle())
        wants = [
            _dir_needs(layout.root),
            _dir_needs(layout.ca_dir),
            layout.ca_key.stat().st_mode & 0o7777 != KEY_MODE,
            _file_needs(layout.ca_chain, chain, CERT_MODE) is not None,
        ]
        changed = any(wants)
        if changed and not check_mode:
            _ensure_dir(layout.root)
            _ensure_dir(layout.ca_dir)
            # Never rewrite the CA key's content: at most tighten its mode.
            if wants[2]:
                layout.ca_key.chmod(KEY_MODE)
            _sync_file(layout.ca_chain, chain, CERT_MODE)
    return {
        "changed": changed,
        "created": created,
        "warnings": warnings,
        "key_type": actual_type,
        "paths": {"cert": str(layout.ca_cert), "key": str(layout.ca_key), "chain": str(layout.ca_chain)},
    }


# --------------------------------------------------------------------------------------------
# Leaves
# --------------------------------------------------------------------------------------------


def _leaf_extensions(spec: CertSpec, key_type: str) -> list[tuple[x509.ExtensionType, bool]]:
    rsa_key = key_type.startswith("rsa")
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=rsa_key,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
        (x509.ExtendedKeyUsage([_PROFILE_EKU[spec.profile]]), False),
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


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


@dataclass
class _Plan:
    """What to do with one leaf: why (None = keep the certificate) and whether to make a new key."""

    spec: CertSpec
    paths: LeafPaths
    reason: str | None
    new_key: bool
    key: PrivateKey | None
    cert: x509.Certificate | None


def _plan_leaf(
    spec: CertSpec,
    paths: LeafPaths,
    ca: CertificateAuthority | None,
    key_type: str,
    renew_before: dt.timedelta,
    now: dt.datetime,
) -> _Plan:
    cert = _load_cert(paths.cert) if paths.cert.exists() else None
    key = _load_key(paths.key) if paths.key.exists() else None
    if not paths.cert.exists() and not paths.key.exists():
        return _Plan(spec, paths, "new", True, None, None)

    reasons: list[str] = []
    new_key = False
    if key is None:
        reasons.append("key missing or unreadable")
        new_key = True
    elif key_type_of(key) != key_type:
        reasons.append(f"key type changed ({key_type_of(key) or 'unknown'} -> {key_type})")
        new_key = True

    if cert is None:
        reasons.append("certificate missing or unreadable")
        return _Plan(spec, paths, "; ".join(reasons), new_key, None if new_key else key, None)

    if ca is None or not ca.issued(cert):
        reasons.append("issuer is not the current CA")
    if key is not None and not new_key and not _same_public_key(key.public_key(), cert.public_key()):
        reasons.append("key does not match certificate")
    if cert.subject != _cn(spec.name):
        reasons.append("subject changed")
    if _cert_ekus(cert) != {_PROFILE_EKU[spec.profile]}:
        reasons.append(f"profile changed (extended key usage is not {spec.profile} only)")
    if _cert_sans(cert) != spec.san_set():
        reasons.append("subject alternative names changed")
    remaining = cert.not_valid_after_utc - now
    # Renewing only helps if the new certificate would outlive the old one; when the CA's own
    # expiry caps both, the fix is CA rotation, reported as a warning by issue().
    if remaining <= renew_before and (ca is None or cert.not_valid_after_utc < ca.not_after):
        if remaining <= dt.timedelta(0):
            reasons.append(f"expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        else:
            reasons.append(f"expires within {renew_before.days} days ({cert.not_valid_after_utc:%Y-%m-%d})")
    return _Plan(spec, paths, "; ".join(reasons) or None, new_key, None if new_key else key, cert)


def issue(
    pki_dir: str | os.PathLike[str],
    certificates: Iterable[Mapping[str, Any]],
    key_type: str = DEFAULT_KEY_TYPE,
    valid_days: int = 397,
    renew_before_days: int = 30,
    check_mode: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Issue, re-issue or keep each requested leaf, loading the issuing CA once for the whole list.

    Re-issues (with a reason) when the SANs, key type, issuer, profile or subject differ or the
    certificate expires within ``renew_before_days``; an unchanged key type reuses the existing
    key. Returns ``{changed, issued, renewed: [{name, reason}], unchanged, repaired: [{name,
    reason}], paths: {name: {cert, key, chain, ca}}, warnings}``; ``repaired`` lists leaves whose
    certificate was kept but whose bundle files or modes were fixed. In check mode the same report
    is computed and nothing is written. Without a CA, check mode reports every leaf as issued;
    otherwise it raises PkiError (call :func:`ensure_ca` first).
    """
    check_key_type(key_type)
    _check_positive_int("valid_days", valid_days)
    _check_positive_int("renew_before_days", renew_before_days, minimum=0)
    if renew_before_days >= valid_days:
        raise ValueError(
            f"renew_before_days ({renew_before_days}) must be smaller than valid_days ({valid_days}), "
            "or every run would re-issue every certificate"
        )
    specs = validate_specs(certificates)
    now = now or _utcnow()
    layout = Layout(Path(pki_dir))
    ca = load_issuing_ca(layout)
    if ca is None and not check_mode:
        raise PkiError(f"no CA in {layout.ca_dir}; create it first (ensure_ca)")

    result: dict[str, Any] = {
        "changed": False,
        "issued": [],
        "renewed": [],
        "unchanged": [],
        "repaired": [],
        "paths": {},
        "warnings": [],
    }
    renew_before = dt.timedelta(days=renew_before_days)
    if ca is not None and ca.not_after - now <= renew_before:
        result["warnings"].append(
            f"the CA expires on {ca.not_after:%Y-%m-%d}; certificates it issues cannot outlive it, rotate the CA"
        )
    root_pem = _pem([ca.root]) if ca is not None else b""

    for spec in specs:
        paths = layout.leaf(spec.profile, spec.name)
        result["paths"][spec.name] = paths.as_result()
        plan = _plan_leaf(spec, paths, ca, key_type, renew_before, now)
        if plan.reason == "new":
            result["issued"].append(spec.name)
        elif plan.reason:
            result["renewed"].append({"name": spec.name, "reason": plan.reason})

        if plan.reason is None and ca is not None and plan.cert is not None:
            # Certificate kept: only the bundles and modes may need a touch-up.
            fixes = _leaf_fixes(paths, plan.cert, ca, root_pem)
            if fixes:
                result["repaired"].append({"name": spec.name, "reason": ", ".join(fixes)})
                if not check_mode:
                    _write_leaf(paths, None, plan.cert, ca, root_pem)
            else:
                result["unchanged"].append(spec.name)
            continue
        if check_mode or ca is None:  # ca is None only in check mode (raised above otherwise)
            continue

        key = generate_key(key_type) if plan.new_key or plan.key is None else plan.key
        cert = ca.sign(
            subject=_cn(spec.name),
            public_key=key.public_key(),
            extensions=_leaf_extensions(spec, key_type),
            not_before=now - CLOCK_SKEW,
            not_after=now + dt.timedelta(days=valid_days),
        )
        _write_leaf(paths, key if key is not plan.key else None, cert, ca, root_pem)

    result["changed"] = bool(result["issued"] or result["renewed"] or result["repaired"])
    return result


def _leaf_fixes(paths: LeafPaths, cert: x509.Certificate, ca: CertificateAuthority, root_pem: bytes) -> list[str]:
    fixes = []
    if _dir_needs(paths.dir.parent.parent) or _dir_needs(paths.dir.parent) or _dir_needs(paths.dir):
        fixes.append("directory mode")
    if paths.key.stat().st_mode & 0o7777 != KEY_MODE:
        fixes.append("key mode")
    if _file_needs(paths.cert, _pem([cert]), CERT_MODE):
        fixes.append("cert.pem")
    if _file_needs(paths.chain, _pem(ca.leaf_chain(cert)), CERT_MODE):
        fixes.append("chain.pem")
    if _file_needs(paths.ca, root_pem, CERT_MODE):
        fixes.append("ca.pem")
    return fixes


def _write_leaf(
    paths: LeafPaths,
    new_key: PrivateKey | None,
    cert: x509.Certificate,
    ca: CertificateAuthority,
    root_pem: bytes,
) -> None:
    """Write a leaf's files. Key first: a crash before the certificate is replaced leaves a key
    that no longer matches, which the next run detects and re-issues for."""
    for d in (paths.dir.parent.parent, paths.dir.parent, paths.dir):
        _ensure_dir(d)
    if new_key is not None:
        _write_atomic(paths.key, _key_pem(new_key), KEY_MODE)
    elif paths.key.stat().st_mode & 0o7777 != KEY_MODE:
        paths.key.chmod(KEY_MODE)
    _sync_file(paths.cert, _pem([cert]), CERT_MODE)
    _sync_file(paths.chain, _pem(ca.leaf_chain(cert)), CERT_MODE)
    _sync_file(paths.ca, root_pem, CERT_MODE)
    _fsync_dir(paths.dir)
