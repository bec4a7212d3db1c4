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
  ``python -m rampart.pki backup|restore``).

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

Key material and passphrases never leave this module: results carry names, reasons and paths only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072")
DEFAULT_KEY_TYPE = "ec-p256"
PROFILES = ("server", "client")

DIR_MODE = 0o700
KEY_MODE = 0o600
CERT_MODE = 0o644

# Certificates and CRLs are back-dated by this much so a host whose clock runs slightly behind
# accepts them (OpenSSL rejects a CRL whose lastUpdate lies in the future).
CLOCK_SKEW = dt.timedelta(minutes=5)
# Root -> intermediate -> leaf: the root allows exactly one CA below it, the intermediate none.
ROOT_PATH_LENGTH = 1
INTERMEDIATE_PATH_LENGTH = 0
# The root key is meant to stay offline, so the root CRL lives long and is re-signed early
# whenever the root key happens to be present; mosquitto never reads it (leaf-only CRL check).
ROOT_CRL_VALID_DAYS = 365
ROOT_CRL_RENEW_BEFORE_DAYS = 90
# A run that ends with the broker's CRL this close to nextUpdate says so: past it, every client
# certificate fails verification.
CRL_WARN_DAYS = 7
# ensure_ca warns this long before the intermediate expires (leaves are capped at its expiry).
INTERMEDIATE_WARN_DAYS = 90

_INTERMEDIATE_CN_RE = re.compile(r" Issuing CA (\d+)$")
_RETIRED_RE = re.compile(r"^intermediate-(\d+)\.crt$")
STATE_VERSION = 1


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


def _check_passphrase(label: str, value: Any) -> bytes | None:
    """None or "" means no passphrase; anything else must be a string. Never echoes the value."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    return value.encode()


def _check_window(label: str, valid_days: Any, renew_label: str, renew_before_days: Any) -> None:
    _check_positive_int(label, valid_days)
    _check_positive_int(renew_label, renew_before_days, minimum=0)
    if renew_before_days >= valid_days:
        raise ValueError(
            f"{renew_label} ({renew_before_days}) must be smaller than {label} ({valid_days}), "
            "or every run would re-issue"
        )


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


def _key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _load_key(path: Path) -> PrivateKey | None:
    """Load a leaf private key written by this module; None when absent or unusable."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)) else None


def _is_encrypted_pem(data: bytes) -> bool:
    # PKCS#8 "BEGIN ENCRYPTED PRIVATE KEY" or traditional OpenSSL "Proc-Type: 4,ENCRYPTED".
    return b"ENCRYPTED" in data[:200]


def _load_ca_key(path: Path, passphrase: bytes | None) -> tuple[PrivateKey, bool]:
    """Load a CA key, returning (key, encrypted); PkiError with the fix when that is impossible."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror}") from None
    encrypted = _is_encrypted_pem(data)
    if encrypted and passphrase is None:
        raise PkiError(
            f"{path} is encrypted; set pki_ca_key_passphrase (action argument ca_key_passphrase), "
            "e.g. from Ansible Vault"
        )
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except (ValueError, TypeError):
        if encrypted:
            raise PkiError(
                f"cannot decrypt {path}: pki_ca_key_passphrase does not open it (changed passphrase?) "
                "or the file is damaged; use the passphrase it was encrypted with, or restore it from backup"
            ) from None
        raise PkiError(f"cannot read {path}; restore it from backup") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise PkiError(f"{path} holds an unsupported key type; restore it from backup")
    return key, encrypted


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
    p12: Path

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

    @property
    def intermediate_key(self) -> Path:
        return self.ca_dir / "intermediate.key"

    @property
    def intermediate_cert(self) -> Path:
        return self.ca_dir / "intermediate.crt"

    @property
    def retired_dir(self) -> Path:
        return self.ca_dir / "retired"

    def retired_cert(self, generation: int) -> Path:
        return self.retired_dir / f"intermediate-{generation}.crt"

    def retired_key(self, generation: int) -> Path:
        return self.retired_dir / f"intermediate-{generation}.key"

    @property
    def crl(self) -> Path:
        return self.ca_dir / "crl.pem"

    @property
    def root_crl(self) -> Path:
        return self.ca_dir / "root-crl.pem"

    @property
    def revoked_state(self) -> Path:
        return self.ca_dir / "revoked.json"

    def profile_dir(self, profile: str) -> Path:
        return self.root / f"{profile}s"

    def leaf(self, profile: str, name: str) -> LeafPaths:
        d = self.profile_dir(profile) / name
        return LeafPaths(d, d / "key.pem", d / "cert.pem", d / "chain.pem", d / "ca.pem", d / "bundle.p12")

    def ca_paths(self) -> dict[str, str]:
        return {
            "cert": str(self.ca_cert),
            "key": str(self.ca_key),
            "chain": str(self.ca_chain),
            "intermediate_cert": str(self.intermediate_cert),
            "intermediate_key": str(self.intermediate_key),
            "crl": str(self.crl),
            "root_crl": str(self.root_crl),
            "revoked": str(self.revoked_state),
        }


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


def _mode_needs(path: Path, mode: int) -> bool:
    return path.exists() and path.stat().st_mode & 0o7777 != mode


# --------------------------------------------------------------------------------------------
# The CAs
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


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _ca_extensions(path_length: int) -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (
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
            True,
        ),
    ]


@dataclass(frozen=True)
class CertificateAuthority:
    """A loaded CA. Load it once per call; it is immutable afterwards.

    ``chain`` is this CA's own certificate followed by any further intermediates up to (but not
    including) the root; it is empty for the root itself. ``root`` is the trust anchor. ``key`` is
    None for a CA whose key is not on disk (the root kept offline): it can then verify, not sign.
    """

    cert: x509.Certificate
    key: PrivateKey | None = field(repr=False)
    root: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def key_type(self) -> str | None:
        return key_type_of(self.cert.public_key())

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
        aki = _aki(cert)
        if aki is not None and aki != _ski(self.cert):
            return False
        try:
            cert.verify_directly_issued_by(self.cert)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def _signing_key(self) -> PrivateKey:
        if self.key is None:  # callers check first and raise a PkiError naming the operation
            raise PkiError(f"the key of {self.cert.subject.rfc4514_string()} is not available")
        return self.key

    def sign(
        self,
        *,
        subject: x509.Name,
        public_key: PublicKey,
        extensions: Sequence[tuple[x509.ExtensionType, bool]],
        not_before: dt.datetime,
        not_after: dt.datetime,
    ) -> x509.Certificate:
        """Sign a certificate (leaf or intermediate) with this CA's key.

        Adds the serial, issuer, SKI and AKI; the caller supplies the profile extensions.
        ``not_after`` is capped at this CA's own expiry: a certificate never outlives its issuer.
        """
        key = self._signing_key()
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
        return builder.sign(key, _hash_for(key))

    def owns_crl(self, crl: x509.CertificateRevocationList) -> bool:
        """True when ``crl`` was issued and signed by this CA."""
        return crl.issuer == self.cert.subject and crl.is_signature_valid(self.cert.public_key())

    def sign_crl(
        self, revoked: Iterable[tuple[int, dt.datetime]], now: dt.datetime, valid_days: int, number: int
    ) -> x509.CertificateRevocationList:
        """A CRL listing ``revoked`` (serial, revocation date), valid from now (back-dated) for ``valid_days``."""
        key = self._signing_key()
        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - CLOCK_SKEW)
            .next_update(now + dt.timedelta(days=valid_days))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for serial, when in sorted(revoked):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(key, _hash_for(key))


@dataclass
class _Intermediate:
    """An intermediate on disk: the current one or a retired one (key loaded on demand)."""

    generation: int
    cert: x509.Certificate
    cert_path: Path
    key_path: Path
    key: PrivateKey | None = field(default=None, repr=False)
    encrypted: bool = False
    chains: bool = True  # signed by the current root

    def load_key(self, passphrase: bytes | None) -> PrivateKey | None:
        """The key, loaded once; None when its file is absent."""
        if self.key is None and self.key_path.exists():
            self.key, self.encrypted = _load_ca_key(self.key_path, passphrase)
            if not _same_public_key(self.key.public_key(), self.cert.public_key()):
                raise PkiError(f"{self.key_path} does not belong to {self.cert_path}; restore ca/ from backup")
        return self.key


def _generation_of(cert: x509.Certificate, path: Path) -> int:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    match = _INTERMEDIATE_CN_RE.search(str(cns[0].value)) if cns else None
    if match is None:
        raise PkiError(
            f"cannot tell the generation of {path}: its CN must end in 'Issuing CA <n>'; restore ca/ from backup"
        )
    return int(match.group(1))


def _intermediate_cn(common_name: str, generation: int) -> str:
    suffix = f" Issuing CA {generation}"
    return common_name[: _CN_MAX - len(suffix)].rstrip() + suffix


@dataclass
class Hierarchy:
    """Everything in ``ca/``, loaded once: root, current intermediate, retired intermediates.

    The root key is loaded on demand (it is only needed to sign an intermediate or the root CRL
    and may be offline); the current intermediate's key is loaded by :func:`load_hierarchy` when
    asked for, since issuing and the CRL need it.
    """

    layout: Layout
    passphrase: bytes | None = field(repr=False)
    root_cert: x509.Certificate | None = None
    intermediate: _Intermediate | None = None
    retired: list[_Intermediate] = field(default_factory=list)
    _root_key: PrivateKey | None = field(default=None, repr=False)
    root_key_encrypted: bool = False

    @property
    def root_key_present(self) -> bool:
        return self.layout.ca_key.exists()

    def root_key(self) -> PrivateKey | None:
        if self._root_key is None and self.root_key_present and self.root_cert is not None:
            self._root_key, self.root_key_encrypted = _load_ca_key(self.layout.ca_key, self.passphrase)
            if not _same_public_key(self._root_key.public_key(), self.root_cert.public_key()):
                raise PkiError(
                    f"{self.layout.ca_key} does not belong to {self.layout.ca_cert}; restore ca/ from backup"
                )
        return self._root_key

    def require_root_key(self, operation: str) -> PrivateKey:
        """The root key, or a PkiError naming the operation that needs it and how to bring it back."""
        key = self.root_key()
        if key is None:
            layout = self.layout
            raise PkiError(
                f"{operation} needs the root CA key {layout.ca_key}, which is absent (root kept offline). "
                f"Bring it back from offline storage (copy it to {layout.ca_key}, mode 0600, or "
                f"'tar -xzf BACKUP.tar.gz -C {layout.root} ca/ca.key' from a rampart.pki backup), re-run, "
                "then move it offline again. Everything else (issuing, renewing, revoking, the broker's CRL) "
                "works without it."
            )
        return key

    def issuing_ca(self) -> CertificateAuthority | None:
        """The intermediate as a signing CA (key loaded), None when there is none yet."""
        inter = self.intermediate
        if inter is None or self.root_cert is None:
            return None
        if not inter.chains:
            raise PkiError(
                f"{inter.cert_path} is not signed by {self.layout.ca_cert}; run ensure_ca, which tells how to fix it"
            )
        key = inter.load_key(self.passphrase)
        return CertificateAuthority(cert=inter.cert, key=key, root=self.root_cert, chain=(inter.cert,))

    def previous(self, now: dt.datetime, overlap_days: int) -> _Intermediate | None:
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
        retired_at = inter.cert.not_valid_before_utc + CLOCK_SKEW
        if now >= retired_at + dt.timedelta(days=overlap_days) or prev.cert.not_valid_after_utc <= now:
            return None
        return prev

    def all_cas(self) -> list[CertificateAuthority]:
        """Every CA a leaf of this PKI may carry as issuer (for revocation bookkeeping)."""
        if self.root_cert is None:
            return []
        cas = [CertificateAuthority(cert=self.root_cert, key=None, root=self.root_cert)]
        for inter in [self.intermediate, *self.retired]:
            if inter is not None:
                cas.append(CertificateAuthority(cert=inter.cert, key=None, root=self.root_cert, chain=(inter.cert,)))
        return cas


def load_hierarchy(layout: Layout, passphrase: bytes | None = None) -> Hierarchy:
    """Read ``ca/``; PkiError for half-present or broken CAs (never repaired implicitly).

    A root certificate without its key is fine (root offline); a root key without its
    certificate, or an intermediate missing one half, is refused.
    """
    h = Hierarchy(layout=layout, passphrase=passphrase)
    if layout.ca_key.exists() and not layout.ca_cert.exists():
        raise PkiError(
            f"{layout.ca_key} exists but {layout.ca_cert} does not; refusing to create a new CA over it. "
            f"Restore {layout.ca_dir} from backup, or move it away to start a new CA."
        )
    if layout.ca_cert.exists():
        h.root_cert = _load_cert(layout.ca_cert)
        if h.root_cert is None:
            raise PkiError(f"cannot read the root CA {layout.ca_cert}; restore {layout.ca_dir} from backup")

    key_exists, cert_exists = layout.intermediate_key.exists(), layout.intermediate_cert.exists()
    if key_exists != cert_exists:
        present, missing = (
            (layout.intermediate_key, layout.intermediate_cert)
            if key_exists
            else (layout.intermediate_cert, layout.intermediate_key)
        )
        raise PkiError(
            f"{present} exists but {missing} does not; refusing to replace the issuing CA implicitly. "
            f"Restore {layout.ca_dir} from backup."
        )
    if cert_exists:
        if h.root_cert is None:
            raise PkiError(
                f"{layout.intermediate_cert} exists without the root {layout.ca_cert}; restore it from backup"
            )
        cert = _load_cert(layout.intermediate_cert)
        if cert is None:
            raise PkiError(f"cannot read {layout.intermediate_cert}; restore {layout.ca_dir} from backup")
        h.intermediate = _Intermediate(
            generation=_generation_of(cert, layout.intermediate_cert),
            cert=cert,
            cert_path=layout.intermediate_cert,
            key_path=layout.intermediate_key,
        )
    if layout.retired_dir.is_dir() and h.root_cert is not None:
        for path in sorted(layout.retired_dir.iterdir()):
            match = _RETIRED_RE.match(path.name)
            cert = _load_cert(path) if match else None
            if match and cert is not None:
                gen = int(match.group(1))
                h.retired.append(_Intermediate(gen, cert, path, layout.retired_key(gen)))
    if h.root_cert is not None:
        root = CertificateAuthority(cert=h.root_cert, key=None, root=h.root_cert)
        for inter in [h.intermediate, *h.retired]:
            if inter is not None:
                inter.chains = root.issued(inter.cert)
    return h


def load_issuing_ca(layout: Layout, passphrase: bytes | None = None) -> CertificateAuthority | None:
    """The CA that signs leaves (the intermediate, key loaded), or None when there is none yet."""
    return load_hierarchy(layout, passphrase).issuing_ca()


def _new_root(common_name: str, key: PrivateKey, valid_days: int, now: dt.datetime) -> x509.Certificate:
    name = _cn(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    for ext, critical in _ca_extensions(ROOT_PATH_LENGTH):
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(key, _hash_for(key))


def _new_intermediate(
    root: CertificateAuthority, common_name: str, generation: int, key: PrivateKey, valid_days: int, now: dt.datetime
) -> x509.Certificate:
    return root.sign(
        subject=_cn(_intermediate_cn(common_name, generation)),
        public_key=key.public_key(),
        extensions=_ca_extensions(INTERMEDIATE_PATH_LENGTH),
        not_before=now - CLOCK_SKEW,
        not_after=now + dt.timedelta(days=valid_days),
    )


def ensure_ca(
    pki_dir: str | os.PathLike[str],
    common_name: str = "Rampart CA",
    key_type: str = DEFAULT_KEY_TYPE,
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
    check_key_type(key_type)
    _check_positive_int("valid_days", valid_days)
    _check_positive_int("intermediate_valid_days", intermediate_valid_days)
    if intermediate_generation is not None:
        _check_positive_int("intermediate_generation", intermediate_generation)
    _check_positive_int("intermediate_overlap_days", intermediate_overlap_days, minimum=0)
    pw = _check_passphrase("the CA key passphrase", passphrase)
    if not isinstance(common_name, str) or not common_name.strip() or len(common_name) > _CN_MAX:
        raise ValueError(f"CA common name must be 1-{_CN_MAX} characters, got {common_name!r}")
    now = now or _utcnow()
    layout = Layout(Path(pki_dir))
    warnings: list[str] = []
    h = load_hierarchy(layout, pw)
    created = h.root_cert is None

    # ---- decide
    inter = h.intermediate
    if intermediate_generation is None:  # keep whatever generation is there
        intermediate_generation = inter.generation if inter is not None else 1
    inter_reason: str | None = None
    if inter is None:
        inter_reason = "created" if created else "created (the root signed leaves directly until now)"
    elif intermediate_generation < inter.generation:
        raise PkiError(
            f"intermediate_generation {intermediate_generation} is below the generation of the current issuing CA "
            f"({inter.generation}, {layout.intermediate_cert}); it only ever goes up: set it to {inter.generation}"
        )
    elif intermediate_generation > inter.generation:
        inter_reason = f"rotated from generation {inter.generation} to {intermediate_generation}"
    elif not inter.chains:
        raise PkiError(
            f"{layout.intermediate_cert} is not signed by {layout.ca_cert}; restore {layout.ca_dir} from one "
            f"backup, or bump intermediate_generation to {inter.generation + 1} to issue a new intermediate "
            "under this root"
        )
    if inter_reason and not created:
        operation = "creating the issuing CA" if inter is None else f"rotating the issuing CA ({inter_reason})"
        h.require_root_key(operation)
    # Fail before writing anything when an existing CA key cannot be opened.
    if not created:
        h.root_key()
        if inter is not None:
            inter.load_key(pw)

    result: dict[str, Any] = {
        "changed": created or inter_reason is not None,
        "created": created,
        "warnings": warnings,
        "key_type": key_type if created else (key_type_of(h.root_cert.public_key()) or "unknown"),
        "paths": layout.ca_paths(),
        "intermediate": {
            "generation": intermediate_generation if inter_reason else inter.generation,
            "created": inter_reason is not None,
            "rotated": inter is not None and inter_reason is not None,
            "reason": inter_reason,
            "not_after": None,
            "previous_generation": None,
        },
        "root_key_present": created or h.root_key_present,
        "encrypted": [],
    }

    # ---- build (in memory)
    writes: list[tuple[Path, bytes, int]] = []
    if created:
        root_key = generate_key(key_type)
        root_cert = _new_root(common_name, root_key, valid_days, now)
        # Key first: a crash before the certificate leaves "key without cert", which
        # load_hierarchy refuses loudly instead of silently minting a second root.
        writes += [(layout.ca_key, _key_pem(root_key, pw), KEY_MODE), (layout.ca_cert, _pem([root_cert]), CERT_MODE)]
        h.root_cert, h._root_key = root_cert, root_key
    else:
        assert h.root_cert is not None  # noqa: S101
        root_cert = h.root_cert
        if result["key_type"] != key_type:
            warnings.append(
                f"existing CA in {layout.ca_dir} has key type {result['key_type']}, not the requested {key_type}; "
                "it is kept as is (a CA is never replaced implicitly)"
            )
        if root_cert.not_valid_after_utc <= now:
            warnings.append(f"the root CA in {layout.ca_dir} expired on {root_cert.not_valid_after_utc:%Y-%m-%d}")

    if inter_reason is not None:
        # Built in memory in check mode too (cheap), so the report shows the real expiry.
        inter_key = generate_key(key_type)
        inter_cert = _new_intermediate(
            CertificateAuthority(cert=root_cert, key=h.root_key(), root=root_cert),
            common_name,
            intermediate_generation,
            inter_key,
            intermediate_valid_days,
            now,
        )
        if inter is not None:
            # Retire: copy the files before replacing them (the key as it is, or encrypted now
            # when a passphrase is set and it was not).
            retired_key = inter.key_path.read_bytes()
            old_key = inter.load_key(pw)
            if pw is not None and not inter.encrypted and old_key is not None:
                retired_key = _key_pem(old_key, pw)
                result["encrypted"].append(str(layout.retired_key(inter.generation)))
            writes += [
                (layout.retired_cert(inter.generation), inter.cert_path.read_bytes(), CERT_MODE),
                (layout.retired_key(inter.generation), retired_key, KEY_MODE),
            ]
        writes += [
            (layout.intermediate_key, _key_pem(inter_key, pw), KEY_MODE),
            (layout.intermediate_cert, _pem([inter_cert]), CERT_MODE),
        ]
        result["intermediate"]["not_after"] = inter_cert.not_valid_after_utc.isoformat()
        if inter is not None:
            h.retired.append(inter)
        h.intermediate = _Intermediate(
            intermediate_generation, inter_cert, layout.intermediate_cert, layout.intermediate_key, inter_key
        )
    else:
        assert inter is not None  # noqa: S101
        result["intermediate"]["not_after"] = inter.cert.not_valid_after_utc.isoformat()
        if inter.cert.not_valid_after_utc - now <= dt.timedelta(days=INTERMEDIATE_WARN_DAYS):
            warnings.append(
                f"the issuing CA {layout.intermediate_cert} expires on {inter.cert.not_valid_after_utc:%Y-%m-%d}; "
                f"leaves cannot outlive it: bump pki_intermediate_generation to {inter.generation + 1} "
                "(needs the root key)"
            )
        inter_type = key_type_of(inter.cert.public_key())
        if inter_type != key_type:
            warnings.append(
                f"existing issuing CA {layout.intermediate_cert} has key type {inter_type}, not the requested "
                f"{key_type}; it is kept (bump pki_intermediate_generation to replace it)"
            )

    # ---- custody: encrypt unencrypted CA keys in place once a passphrase is set
    if pw is not None and not created:
        candidates: list[tuple[Path, PrivateKey | None, bool]] = []
        if h.root_key_present:
            candidates.append((layout.ca_key, h.root_key(), h.root_key_encrypted))
        if inter is not None and inter_reason is None:
            candidates.append((layout.intermediate_key, inter.load_key(pw), inter.encrypted))
        for old in h.retired:
            if old is not inter and old.key_path.exists():
                candidates.append((old.key_path, old.load_key(pw), old.encrypted))
        for path, key, encrypted in candidates:
            if key is not None and not encrypted:
                writes.append((path, _key_pem(key, pw), KEY_MODE))
                result["encrypted"].append(str(path))

    # ---- bundle: current intermediate, previous one during the overlap, root
    assert h.intermediate is not None  # noqa: S101
    previous = h.previous(now, intermediate_overlap_days)
    result["intermediate"]["previous_generation"] = previous.generation if previous else None
    chain = _pem([h.intermediate.cert, *([previous.cert] if previous else []), root_cert])
    written = {w[0] for w in writes}
    mode_fixes = [
        p
        for p, m in [(layout.ca_key, KEY_MODE), (layout.intermediate_key, KEY_MODE)]
        + [(layout.retired_key(r.generation), KEY_MODE) for r in h.retired]
        if p not in written and _mode_needs(p, m)
    ]
    dir_fixes = [d for d in (layout.root, layout.ca_dir) if _dir_needs(d)]
    if layout.retired_dir.exists() and _dir_needs(layout.retired_dir):
        dir_fixes.append(layout.retired_dir)
    chain_needs = _file_needs(layout.ca_chain, chain, CERT_MODE) is not None
    result["changed"] = bool(result["changed"] or writes or mode_fixes or dir_fixes or chain_needs)

    if check_mode:
        return result
    for d in (layout.root, layout.ca_dir):
        _ensure_dir(d)
    if any(p.parent == layout.retired_dir for p, _, _ in writes) or layout.retired_dir.exists():
        _ensure_dir(layout.retired_dir)
    for path, data, mode in writes:
        _write_atomic(path, data, mode)
    for path in mode_fixes:
        path.chmod(KEY_MODE)
    _sync_file(layout.ca_chain, chain, CERT_MODE)
    if writes:
        _fsync_dir(layout.ca_dir)
    return result


# --------------------------------------------------------------------------------------------
# Revocation state and CRLs
# --------------------------------------------------------------------------------------------


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def read_revocations(layout: Layout) -> list[dict[str, Any]]:
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
        raise PkiError(
            f"cannot read {path} ({type(exc).__name__}: {exc}); restore it from backup: "
            "it is the only record of which certificates are revoked"
        ) from None
    return list(entries)


def _state_bytes(entries: list[dict[str, Any]]) -> bytes:
    return (json.dumps({"version": STATE_VERSION, "revoked": entries}, indent=2, sort_keys=True) + "\n").encode()


def revoked_serials(layout: Layout) -> frozenset[int]:
    """Every serial ever revoked in this PKI."""
    return frozenset(int(e["serial"], 16) for e in read_revocations(layout))


def _split_crls(data: bytes) -> list[tuple[bytes, x509.CertificateRevocationList]]:
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


def _read_crls(path: Path) -> list[tuple[bytes, x509.CertificateRevocationList]]:
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
    ca: CertificateAuthority | None
    pem: bytes | None  # what goes into the file (the kept block or a new one); None: nothing usable
    next_update: dt.datetime | None
    reason: str | None  # why it is (or would be) re-signed; None: kept byte-for-byte
    warning: str | None = None


def _plan_crl(
    label: str,
    ca: CertificateAuthority,
    existing: list[tuple[bytes, x509.CertificateRevocationList]],
    entries: list[dict[str, Any]],
    valid_days: int,
    renew_before: dt.timedelta,
    now: dt.datetime,
    key: PrivateKey | None,
    missing_key_hint: str,
) -> _CrlPlan:
    """Keep ``ca``'s CRL from ``existing`` when current, else sign a new one (if ``key`` is there)."""
    ski = _ski(ca.cert)
    wanted = {
        int(e["serial"], 16): _parse_iso(e["revoked_at"])
        for e in entries
        if e.get("issuer_key_id") == (ski or b"").hex()
    }
    old = next(((b, c) for b, c in existing if ca.owns_crl(c)), None)
    reason = None
    if old is None:
        reason = "new"
    else:
        crl = old[1]
        have = {r.serial_number for r in crl}
        next_update = crl.next_update_utc
        if have != set(wanted):
            added, removed = len(set(wanted) - have), len(have - set(wanted))
            reason = f"revoked set changed (+{added}, -{removed})"
        elif next_update is None or next_update - now <= renew_before:
            when = f"{next_update:%Y-%m-%d}" if next_update else "never"
            reason = f"nextUpdate {when} is within {renew_before.days} days"
    if reason is None:
        assert old is not None  # noqa: S101
        return _CrlPlan(label, ca, old[0], old[1].next_update_utc, None)
    if key is None:
        kept = old[0] if old else None
        nu = old[1].next_update_utc if old else None
        return _CrlPlan(label, ca, kept, nu, None, f"{label} needs re-signing ({reason}) but {missing_key_hint}")
    signer = CertificateAuthority(cert=ca.cert, key=key, root=ca.root, chain=ca.chain)
    crl = signer.sign_crl(wanted.items(), now, valid_days, _crl_number(old[1]) + 1 if old else 1)
    return _CrlPlan(label, ca, crl.public_bytes(serialization.Encoding.PEM), crl.next_update_utc, reason)


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
) -> dict[str, Any]:
    """Record the revocation of each client in ``revoked`` and keep the CRLs fresh.

    A name's *current* certificate (``clients/<name>/cert.pem``) is added to ``ca/revoked.json``
    (serial, name, date, issuer) unless already there; entries are never removed, so an
    un-revoked name's old serial stays on the CRL. ``ca/crl.pem`` holds the intermediate's CRL
    (plus the previous intermediate's during a rotation overlap: OpenSSL fails a leaf whose
    issuer has no CRL); ``ca/root-crl.pem`` the root's, re-signed only while the root key is
    present. A CRL is re-signed when its revoked set changed or nextUpdate is within
    ``renew_before_days``; otherwise the file stays byte-for-byte.

    ``intermediate_generation``, when given, is the generation ensure_ca was asked for: in check
    mode a pending rotation is reported as a new CRL; outside check mode a mismatch is an error.

    Returns ``{changed, path, next_update, reason, revoked: [names currently revoked],
    newly_revoked: [names], entries, root: {changed, path, next_update, reason}, warnings}``.
    """
    _check_window("crl_valid_days", valid_days, "crl_renew_before_days", renew_before_days)
    _check_positive_int("intermediate_overlap_days", intermediate_overlap_days, minimum=0)
    if intermediate_generation is not None:
        _check_positive_int("intermediate_generation", intermediate_generation)
    names = _check_names("revoked", revoked)
    pw = _check_passphrase("the CA key passphrase", passphrase)
    now = now or _utcnow()
    layout = Layout(Path(pki_dir))
    h = load_hierarchy(layout, pw)
    warnings: list[str] = []
    result: dict[str, Any] = {
        "changed": False,
        "path": str(layout.crl),
        "next_update": None,
        "reason": None,
        "revoked": [],
        "newly_revoked": [],
        "entries": 0,
        "root": {"changed": False, "path": str(layout.root_crl), "next_update": None, "reason": None},
        "warnings": warnings,
    }
    pending = _pending_rotation(h, intermediate_generation, check_mode)
    issuing = h.issuing_ca()
    if issuing is None:
        if not check_mode:
            raise PkiError(f"no CA in {layout.ca_dir} (no issuing intermediate); create it first (ensure_ca)")
        # Check mode before the CA exists: everything would be new.
        result.update(changed=True, reason="new", revoked=sorted(names), newly_revoked=sorted(names))
        if not layout.root_crl.exists():
            result["root"].update(changed=True, reason="new")
        return result

    # ---- revocations
    entries = read_revocations(layout)
    known = {e["serial"] for e in entries}
    cas = h.all_cas()
    new_entries = []
    for name in names:
        cert = _load_cert(layout.leaf("client", name).cert)
        if cert is None:
            if any(e["name"] == name for e in entries):
                result["revoked"].append(name)
            else:
                hint = " (in check mode: unless an earlier task would issue it)" if check_mode else ""
                warnings.append(
                    f"revoked client {name!r} has no certificate in {layout.profile_dir('client')}; "
                    f"nothing to revoke{hint}"
                )
            continue
        serial = format(cert.serial_number, "x")
        if serial not in known:
            issuer = next((ca for ca in cas if ca.issued(cert)), None)
            if issuer is None:
                warnings.append(f"client {name!r}: its certificate was not issued by this PKI; not revoked")
                continue
            new_entries.append(
                {
                    "serial": serial,
                    "name": name,
                    "revoked_at": _iso(now),
                    "issuer": issuer.cert.subject.rfc4514_string(),
                    "issuer_key_id": (_ski(issuer.cert) or b"").hex(),
                    "not_after": _iso(cert.not_valid_after_utc),
                }
            )
            known.add(serial)
            result["newly_revoked"].append(name)
        result["revoked"].append(name)
    entries += new_entries
    result["revoked"].sort()
    if pending:
        # Check mode with a rotation pending: the new intermediate would get a new CRL.
        result.update(changed=True, reason=f"new ({pending})")
        return result

    # ---- the broker's CRL file: current intermediate, previous one during the overlap
    existing = _read_crls(layout.crl)
    crl_window = dt.timedelta(days=renew_before_days)
    plans = [
        _plan_crl(
            "the CRL of the issuing CA",
            issuing,
            existing,
            entries,
            valid_days,
            crl_window,
            now,
            issuing.key,
            "its key is missing",
        )
    ]
    previous = h.previous(now, intermediate_overlap_days)
    if previous is not None:
        prev_ca = CertificateAuthority(cert=previous.cert, key=None, root=issuing.root, chain=(previous.cert,))
        plans.append(
            _plan_crl(
                f"the CRL of the previous issuing CA (generation {previous.generation})",
                prev_ca,
                existing,
                entries,
                valid_days,
                crl_window,
                now,
                previous.load_key(pw),
                f"{previous.key_path} is missing",
            )
        )
    crl_bytes = b"".join(p.pem for p in plans if p.pem)
    reasons = [p.reason for p in plans[:1] if p.reason]
    reasons += [f"{p.label}: {p.reason}" for p in plans[1:] if p.reason]
    warnings += [p.warning for p in plans if p.warning]
    crl_need = _file_needs(layout.crl, crl_bytes, CERT_MODE)
    planned = [p.ca for p in plans if p.ca is not None]
    if any(not any(ca.owns_crl(c) for ca in planned) for _, c in existing):
        reasons.append("dropped the CRL of a CA no longer trusted (rotation overlap over)")
    if crl_need == "content" and not reasons:
        reasons.append("file repaired")
    current = plans[0]
    result["entries"] = sum(1 for e in entries if e.get("issuer_key_id") == (_ski(issuing.cert) or b"").hex())
    result["next_update"] = _iso(current.next_update) if current.next_update else None
    result["reason"] = "; ".join(reasons) or ("file mode" if crl_need == "mode" else None)
    result["changed"] = crl_need is not None or bool(new_entries)
    for plan in plans:
        if plan.next_update is not None and plan.next_update - now < dt.timedelta(days=CRL_WARN_DAYS):
            warnings.append(
                f"{plan.label} in {layout.crl} expires on {plan.next_update:%Y-%m-%d %H:%M} UTC; past that the "
                "broker rejects every client certificate: re-run with the CA keys present"
            )

    # ---- the root's CRL: only while the root key is present
    root_ca = CertificateAuthority(cert=issuing.root, key=None, root=issuing.root)
    root_plan = _plan_crl(
        "the root CRL",
        root_ca,
        _read_crls(layout.root_crl),
        entries,
        ROOT_CRL_VALID_DAYS,
        dt.timedelta(days=ROOT_CRL_RENEW_BEFORE_DAYS),
        now,
        h.root_key(),
        f"the root key {layout.ca_key} is offline (not needed by the broker; bring it back to refresh it)",
    )
    if root_plan.warning:
        warnings.append(root_plan.warning)
    root_need = _file_needs(layout.root_crl, root_plan.pem, CERT_MODE) if root_plan.pem else None
    result["root"].update(
        changed=root_need is not None,
        next_update=_iso(root_plan.next_update) if root_plan.next_update else None,
        reason=root_plan.reason,
    )
    result["changed"] = result["changed"] or root_need is not None

    if check_mode or not result["changed"]:
        return result
    _ensure_dir(layout.ca_dir)
    if new_entries:
        # State first: a crash before the CRL leaves a recorded revocation the next run signs.
        _write_atomic(layout.revoked_state, _state_bytes(entries), CERT_MODE)
    if crl_need:
        _sync_file(layout.crl, crl_bytes, CERT_MODE)
    if root_need and root_plan.pem:
        _sync_file(layout.root_crl, root_plan.pem, CERT_MODE)
    _fsync_dir(layout.ca_dir)
    return result


def _check_names(label: str, names: Iterable[str]) -> list[str]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise ValueError(f"{label} must be a list of client names")
    out = list(dict.fromkeys(names))
    bad = [n for n in out if not is_valid_name(n)]
    if bad:
        raise ValueError(
            f"{label} contains invalid names {bad!r}; use 1-64 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return out


def _pending_rotation(h: Hierarchy, generation: int | None, check_mode: bool) -> str | None:
    """A reason when ensure_ca would still create or rotate the intermediate, else None.

    In check mode that is the expected state (ensure_ca wrote nothing) and the caller reports
    what would happen; outside check mode ensure_ca must have run first.
    """
    inter = h.intermediate
    if generation is None or inter is None or inter.generation == generation:
        return None
    if not check_mode:
        raise PkiError(
            f"the issuing CA {inter.cert_path} is generation {inter.generation}, not the requested {generation}; "
            "run ensure_ca first (it rotates the intermediate)"
        )
    return f"issuing CA rotation to generation {generation} pending"


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
    revoked_serials: frozenset[int] = frozenset(),
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

    if cert.serial_number in revoked_serials:
        # Un-revoked: a fresh certificate and, since the old one was revoked for a reason, a fresh key.
        reasons.append(f"certificate was revoked (serial {cert.serial_number:x}); new key and certificate")
        new_key = True
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
    # Renewal is driven by the leaf's own notAfter. Renewing only helps if the new certificate
    # would outlive the old one; when the issuing CA's expiry caps both, the fix is rotating the
    # intermediate, reported as a warning by issue().
    remaining = cert.not_valid_after_utc - now
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
    runs after issuing, to revoke). With
    ``pkcs12_passphrase`` every client also gets ``bundle.p12`` (key, certificate, intermediate,
    root), rewritten only when its decrypted content differs; without it a stale ``bundle.p12``
    is removed.

    Returns ``{changed, issued, renewed: [{name, reason}], unchanged, repaired: [{name, reason}],
    revoked, paths: {name: {cert, key, chain, ca[, pkcs12]}}, warnings}``; ``repaired`` lists
    leaves whose certificate was kept but whose bundle files or modes were fixed. In check mode
    the same report is computed and nothing is written. Without an issuing CA (or with a rotation
    pending, see :func:`update_crl`) check mode reports every leaf as (re-)issued; otherwise it
    raises PkiError (call :func:`ensure_ca` first).
    """
    check_key_type(key_type)
    _check_window("valid_days", valid_days, "renew_before_days", renew_before_days)
    specs = validate_specs(certificates)
    skip = set(_check_names("revoked", revoked))
    pw = _check_passphrase("the CA key passphrase", passphrase)
    p12_pw = _check_passphrase("the PKCS#12 passphrase", pkcs12_passphrase)
    if intermediate_generation is not None:
        _check_positive_int("intermediate_generation", intermediate_generation)
    now = now or _utcnow()
    layout = Layout(Path(pki_dir))
    h = load_hierarchy(layout, pw)
    ca = None if _pending_rotation(h, intermediate_generation, check_mode) else h.issuing_ca()
    if ca is None and not check_mode:
        raise PkiError(f"no CA in {layout.ca_dir} (no issuing intermediate); create it first (ensure_ca)")
    serials = revoked_serials(layout)

    result: dict[str, Any] = {
        "changed": False,
        "issued": [],
        "renewed": [],
        "unchanged": [],
        "repaired": [],
        "revoked": [],
        "paths": {},
        "warnings": [],
    }
    renew_before = dt.timedelta(days=renew_before_days)
    if ca is not None and ca.not_after - now <= renew_before:
        result["warnings"].append(
            f"the issuing CA expires on {ca.not_after:%Y-%m-%d}; certificates it issues cannot outlive it: "
            "bump pki_intermediate_generation (needs the root key)"
        )
    root_pem = _pem([ca.root]) if ca is not None else b""

    for spec in specs:
        paths = layout.leaf(spec.profile, spec.name)
        # A revoked client keeps the certificate it has (never renewed, re-keyed or repaired). One
        # that never had a certificate gets one, for update_crl to revoke: a device declared
        # revoked from the start still has a certificate to prove the broker refuses.
        if spec.profile == "client" and spec.name in skip and (paths.cert.exists() or paths.key.exists()):
            result["revoked"].append(spec.name)
            continue
        bundle = p12_pw is not None and spec.profile == "client"
        result["paths"][spec.name] = paths.as_result() | ({"pkcs12": str(paths.p12)} if bundle else {})
        plan = _plan_leaf(spec, paths, ca, key_type, renew_before, now, serials)
        if plan.reason == "new":
            result["issued"].append(spec.name)
        elif plan.reason:
            result["renewed"].append({"name": spec.name, "reason": plan.reason})

        if plan.reason is None and ca is not None and plan.cert is not None:
            # Certificate kept: only the bundles and modes may need a touch-up.
            fixes = _leaf_fixes(paths, plan.cert, ca, root_pem)
            p12 = _p12_fix(paths, plan.key, plan.cert, ca, p12_pw, spec.profile)
            if p12:
                fixes.append(p12)
            if fixes:
                result["repaired"].append({"name": spec.name, "reason": ", ".join(fixes)})
                if not check_mode:
                    _write_leaf(paths, None, plan.cert, ca, root_pem)
                    if p12:
                        _write_p12(paths, plan.key, plan.cert, ca, p12_pw if bundle else None)
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
        if bundle or paths.p12.exists():
            _write_p12(paths, key, cert, ca, p12_pw if bundle else None)

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


# --------------------------------------------------------------------------------------------
# PKCS#12 device bundles
# --------------------------------------------------------------------------------------------


def _p12_fix(
    paths: LeafPaths,
    key: PrivateKey | None,
    cert: x509.Certificate,
    ca: CertificateAuthority,
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
        and _same_public_key(old_key.public_key(), key.public_key())
        and old_cert == cert
        and list(extra) == [*ca.chain, ca.root]
        and paths.p12.stat().st_mode & 0o7777 == KEY_MODE
    )
    return None if ok else "bundle.p12"


def _write_p12(
    paths: LeafPaths, key: PrivateKey | None, cert: x509.Certificate, ca: CertificateAuthority, pw: bytes | None
) -> None:
    """Write bundle.p12 (key, certificate, intermediate, root), or remove it when ``pw`` is None."""
    if pw is None or key is None:
        paths.p12.unlink(missing_ok=True)
        return
    data = pkcs12.serialize_key_and_certificates(
        paths.dir.name.encode(), key, cert, [*ca.chain, ca.root], serialization.BestAvailableEncryption(pw)
    )
    _write_atomic(paths.p12, data, KEY_MODE)


# --------------------------------------------------------------------------------------------
# Backup and restore
# --------------------------------------------------------------------------------------------


def _is_secret(path: Path) -> bool:
    return path.suffix in (".key", ".p12") or path.name == "key.pem"


def backup(pki_dir: str | os.PathLike[str], archive_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the whole ``pki_dir`` to a gzip tar at ``archive_path`` (mode 0600, atomic).

    Members are relative to ``pki_dir`` (``ca/ca.key``, ``clients/alice/key.pem``...), so a single
    file can be brought back with ``tar -xzf ARCHIVE -C PKI_DIR ca/ca.key``. The archive holds
    every key: store it like the CA itself (encrypted, offline). Returns ``{path, files}``.
    """
    root = Path(pki_dir).resolve()
    archive = Path(archive_path).resolve()
    if not (root / "ca" / "ca.crt").is_file():
        raise PkiError(f"{root} holds no CA (ca/ca.crt); nothing to back up")
    if archive.is_relative_to(root):
        raise PkiError(f"the archive {archive} must be outside {root}")
    archive.parent.mkdir(parents=True, exist_ok=True)
    files = 0
    fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, KEY_MODE)
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w:gz") as tar:
                for path in sorted(root.rglob("*")):
                    if path.name.startswith(".") and path.name.endswith(".tmp"):
                        continue  # a write in progress
                    tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
                    files += path.is_file()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"path": str(archive), "files": files}


def restore(archive_path: str | os.PathLike[str], pki_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore a :func:`backup` archive into ``pki_dir``, which must be absent or empty.

    Extracts with tarfile's ``data`` filter (no absolute paths, links out or devices) into a
    temporary sibling, checks it holds a CA, sets directories 0700 and keys 0600, then renames
    it into place: an interrupted restore leaves no half-restored ``pki_dir``. Returns
    ``{path, files}``.
    """
    archive = Path(archive_path)
    target = Path(pki_dir).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PkiError(f"{target} exists and is not empty; restore into an absent or empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.restore."))
    try:
        try:
            with tarfile.open(archive, mode="r:gz") as tar:
                tar.extractall(tmp, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise PkiError(f"cannot restore {archive}: {exc}") from None
        if not (tmp / "ca" / "ca.crt").is_file():
            raise PkiError(f"{archive} is not a rampart.pki backup (no ca/ca.crt in it)")
        files = 0
        for path in [tmp, *tmp.rglob("*")]:
            if path.is_dir():
                path.chmod(DIR_MODE)
            else:
                path.chmod(KEY_MODE if _is_secret(path) else CERT_MODE)
                files += 1
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": str(target), "files": files}
