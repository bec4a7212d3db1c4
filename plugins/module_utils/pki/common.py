"""What every part of the PKI shares: constants, the error type, input validation, keys, the layout
under ``pki_dir`` and careful file writing (atomic, fsynced, exact modes).

Nothing here signs anything; :mod:`.authority` does.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import ipaddress
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ansible_collections.rampart.mqtt.plugins.module_utils.addresses import is_ip_address, is_unspecified_address  # noqa: F401
from ansible_collections.rampart.mqtt.plugins.module_utils.pki.names import (  # noqa: F401  (re-exported)
    NAME_RE,
    check_dns_name,
    is_valid_dns_name,
    is_valid_name,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
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

# X.520 upper bound for a common name.
CN_MAX = 64

PROFILE_EKU = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SPEC_KEYS = {"name", "profile", "dns_names", "ip_addresses"}
_NAME_RULE = "use 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"


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


def check_positive_int(label: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{label} must be an integer >= {minimum}, got {value!r}")
    return value


def validate_specs(certificates: Iterable[Mapping[str, Any]]) -> list[CertSpec]:
    """Turn raw certificate specs into :class:`CertSpec` objects or raise ValueError.

    Names must match ``NAME_RE`` (they become directory names). A name may appear once per
    profile; results are keyed by name, so one call also refuses the same name in both profiles.
    """
    if isinstance(certificates, (str, bytes, Mapping)) or not isinstance(certificates, Iterable):
        raise ValueError("certificates must be a list of {name, profile, dns_names, ip_addresses} mappings")
    seen: dict[str, str] = {}
    return [_validate_spec(index, raw, seen) for index, raw in enumerate(certificates)]


def _validate_spec(index: int, raw: Any, seen: dict[str, str]) -> CertSpec:
    """One entry of :func:`validate_specs`; ``seen`` maps the names so far to their profile."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"certificates[{index}] must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"certificates[{index}] has unknown keys: {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(f"certificates[{index}].name {name!r} is invalid: {_NAME_RULE}")
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
    dns_names = tuple(dict.fromkeys(check_dns_name(name, d) for d in dns_raw))
    ips = _check_ip_addresses(name, ip_raw)
    if profile == "server" and not dns_names and not ips:
        raise ValueError(f"server certificate {name!r} needs at least one DNS name or IP address")
    return CertSpec(name, profile, dns_names, tuple(dict.fromkeys(ips)))


def _check_ip_addresses(cert_name: str, values: Iterable[Any]) -> list[IPAddress]:
    ips: list[IPAddress] = []
    for ip in values:
        try:
            ips.append(ipaddress.ip_address(ip))
        except ValueError:
            raise ValueError(f"certificate {cert_name!r}: {ip!r} is not a valid IP address") from None
    return ips


def check_names(label: str, names: Iterable[str]) -> list[str]:
    """Client names (duplicates dropped, order kept), or ValueError naming ``label``."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise ValueError(f"{label} must be a list of client names")
    out = list(dict.fromkeys(names))
    bad = [n for n in out if not is_valid_name(n)]
    if bad:
        raise ValueError(f"{label} contains invalid names {bad!r}; {_NAME_RULE}")
    return out


def check_passphrase(label: str, value: Any) -> bytes | None:
    """None or "" means no passphrase; anything else must be a string. Never echoes the value."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    return value.encode()


def check_window(label: str, valid_days: Any, renew_label: str, renew_before_days: Any) -> None:
    check_positive_int(label, valid_days)
    check_positive_int(renew_label, renew_before_days, minimum=0)
    if renew_before_days >= valid_days:
        raise ValueError(
            f"{renew_label} ({renew_before_days}) must be smaller than {label} ({valid_days}), "
            "or every run would re-issue"
        )


def check_generation(value: int | None) -> None:
    """``intermediate_generation`` is None (keep the current one) or a positive integer."""
    if value is not None:
        check_positive_int("intermediate_generation", value)


# --------------------------------------------------------------------------------------------
# Keys, names and PEM
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


def key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_key(path: Path) -> PrivateKey | None:
    """Load a leaf private key written by this module; None when absent or unusable."""
    try:
        return parse_key(path.read_bytes())
    except OSError:
        return None


def parse_key(data: bytes | None) -> PrivateKey | None:
    """A leaf private key from its PEM (unencrypted EC or RSA); None when ``data`` is None or unusable."""
    if data is None:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)) else None


def _is_encrypted_pem(data: bytes) -> bool:
    # PKCS#8 "BEGIN ENCRYPTED PRIVATE KEY" or traditional OpenSSL "Proc-Type: 4,ENCRYPTED".
    return b"ENCRYPTED" in data[:200]


def load_ca_key(path: Path, passphrase: bytes | None) -> tuple[PrivateKey, bool]:
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


def load_cert(path: Path) -> x509.Certificate | None:
    """The PEM certificate at ``path``; None when absent or unreadable."""
    try:
        return parse_cert(path.read_bytes())
    except OSError:
        return None


def parse_cert(data: bytes | None) -> x509.Certificate | None:
    """The certificate in PEM ``data``; None when ``data`` is None or holds no readable certificate."""
    if data is None:
        return None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return None


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    """True when ``a`` and ``b`` are the same public key (type, curve or size, and value).

    cryptography compares keys by value in OpenSSL (EVP_PKEY_eq): the same answer as comparing the
    SubjectPublicKeyInfo encodings, without encoding both keys first.
    """
    return type(a) is type(b) and a == b


def pem(certs: Iterable[x509.Certificate]) -> bytes:
    """The certificates as one PEM bundle, in order."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def cn(name: str) -> x509.Name:
    """A subject of just ``CN=name``."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafPaths:
    dir: Path
    key: Path
    cert: Path
    chain: Path
    ca: Path
    p12: Path

    @property
    def previous(self) -> Path:
        """A client's replaced certificates that were still valid, ``<serial hex>.pem`` (review M2: revoking the
        client revokes them too)."""
        return self.dir / "previous"

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

    @property
    def retired_clients(self) -> Path:
        """Folders of clients no longer in the inventory, each moved here whole as ``<name>-<UTC time>`` after its
        certificates were revoked (review M3): kept, never reused."""
        return self.root / "retired-clients"

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


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def ensure_dir(path: Path, batch: WriteBatch | None = None) -> bool:
    """Create ``path`` (and missing parents) with mode 0700 or tighten it; True if anything changed."""
    changed = _ensure_dir(path)
    if changed and batch is not None:
        batch.made_dir(path)
    return changed


def _ensure_dir(path: Path) -> bool:
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


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: int, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """A same-directory temp file with the final mode to write ``path``'s new content to.

    mkstemp creates it 0600 and it gets ``mode`` before the first byte is written. When the block
    ends normally the file is flushed, fsynced (unless ``fsync`` is false: a :class:`WriteBatch`
    makes it durable later) and renamed over ``path``; when it raises, the temp file is removed and
    ``path`` is untouched.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes, mode: int, batch: WriteBatch | None = None) -> None:
    """Write ``data`` to ``path`` via a same-directory temp file with the final mode, fsync, rename.

    With ``batch`` the fsync is left to ``batch.flush()`` (one flush for many files).
    """
    with atomic_file(path, mode, fsync=batch is None) as fh:
        fh.write(data)
    if batch is not None:
        batch.wrote(path)


def file_needs(path: Path, data: bytes, mode: int, found: FileState | None = None) -> str | None:
    """What writing ``data`` to ``path`` would do: None (nothing), "content" or "mode".

    ``found`` is what :func:`read_state` already read from ``path`` (saves reading it again).
    """
    found = found if found is not None else read_state(path)
    if found.data != data:
        return "content"
    if found.mode != mode:
        return "mode"
    return None


def sync_file(
    path: Path, data: bytes, mode: int, found: FileState | None = None, batch: WriteBatch | None = None
) -> bool:
    """Make ``path`` hold ``data`` with ``mode``, touching nothing that already matches."""
    need = file_needs(path, data, mode, found)
    if need == "content":
        write_atomic(path, data, mode, batch)
    elif need == "mode":
        path.chmod(mode)
        if batch is not None:
            batch.wrote(path)
    return need is not None


@dataclass(frozen=True)
class FileState:
    """One file as read in one go: present, its content (None: unreadable or absent) and its mode."""

    present: bool
    data: bytes | None = None
    mode: int | None = None


def read_state(path: Path) -> FileState:
    """Open ``path`` once: its content and its mode (fstat of the open file), or why it has none.

    Absent (also under a missing or non-directory parent): ``present`` is False. Present but not
    readable as a file (a directory, no permission): ``data`` is None, ``mode`` as stat says.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return FileState(False)
    except OSError:
        try:
            return FileState(True, None, path.stat().st_mode & 0o7777)
        except OSError:
            return FileState(False)
    try:
        st = os.fstat(fd)
        mode = st.st_mode & 0o7777
        try:
            return FileState(True, _read_all(fd, st.st_size), mode)
        except OSError:  # a directory opens read-only but does not read
            return FileState(True, None, mode)
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    """Everything left in ``fd``: one read(2) when the file is ``size`` bytes long (as fstat said), more if it grew."""
    chunks = [os.read(fd, size + 1)]
    while len(chunks[-1]) > 0 and sum(map(len, chunks)) > size:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks)


# From this many files on, a WriteBatch is made durable by syncfs(2) instead of an fsync per file.
SYNCFS_FROM = 256


class WriteBatch:
    """Many atomic writes made durable by one flush instead of one fsync per file.

    Each file is still written to a same-directory temp file that has its final mode before its first
    byte, then renamed over its path; only the fsync is deferred. :meth:`flush` then makes every file
    and directory written durable: one ``syncfs(2)`` per filesystem where the OS has it (Linux) and the
    batch holds SYNCFS_FROM files or more, else an fsync of each file and each directory. Meant for
    callers that verify everything they wrote on every run (the leaves): a crash before the flush may
    leave some of the batch's files old, empty or absent,
    which the next run detects and re-issues or repairs, exactly as for a file never written.
    """

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.dirs: set[Path] = set()

    def wrote(self, path: Path) -> None:
        """Record a file created, replaced or chmod-ed (its directory entry changes too)."""
        self.files.append(path)
        self.dirs.add(path.parent)

    def made_dir(self, path: Path) -> None:
        """Record a directory created or chmod-ed (its parent's entry changes too)."""
        self.dirs.update((path, path.parent))

    def flush(self) -> None:
        """Make everything recorded durable, then forget it. A batch of fewer than SYNCFS_FROM files is fsynced file
        by file: syncfs(2) also waits for every other dirty page of the filesystem (a container build, a
        database), which costs more than a few dozen fsyncs."""
        if not self.files and not self.dirs:
            return
        devices: dict[int, Path] = {}
        for d in self.dirs:
            with contextlib.suppress(OSError):
                devices.setdefault(os.stat(d).st_dev, d)
        if len(self.files) < SYNCFS_FROM or not all(_syncfs(d) for d in devices.values()):
            for f in self.files:
                fsync_file(f)
            for d in self.dirs:
                with contextlib.suppress(FileNotFoundError):
                    fsync_dir(d)
        self.files.clear()
        self.dirs.clear()


def _syncfs(directory: Path) -> bool:
    """``syncfs(2)`` on the filesystem holding ``directory``: True when done, False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync a file by path (its data and inode), skipping one that is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dir_needs(path: Path) -> bool:
    """True when ``path`` is not a directory (or is absent) or its mode is not 0700 (one stat)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    return not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o7777 != DIR_MODE


def mode_needs(path: Path, mode: int) -> bool:
    return path.exists() and path.stat().st_mode & 0o7777 != mode
