"""Custody of the whole ``pki_dir``: a backup archive (it holds every key), encrypted with a passphrase, and an
all-or-nothing restore. The command a person types is ``rampart-pki backup|restore`` (rampart/pkitool.py).

An encrypted archive is ``MAGIC``, a 16-byte scrypt salt, a 12-byte nonce, then the gzip tar sealed with AES-256-GCM
under scrypt(passphrase, salt) (n=2**15, r=8, p=1), ``MAGIC`` as associated data: a wrong passphrase and a changed
byte are both refused before anything is extracted.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from ansible_collections.rampart.mqtt.plugins.module_utils.pki import common
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"rampart-pki-backup v1 scrypt aes-256-gcm\n"
MIN_PASSPHRASE = 12


def _is_secret(path: Path) -> bool:
    return path.suffix in (".key", ".p12") or path.name == "key.pem"


def backup(pki_dir: str | os.PathLike[str], archive_path: str | os.PathLike[str],
           passphrase: bytes | None = None) -> dict[str, Any]:
    """Write the whole ``pki_dir`` to a gzip tar at ``archive_path`` (mode 0600, atomic), sealed with
    ``passphrase`` (see the module's docstring) unless it is None.

    Members are relative to ``pki_dir`` (``ca/ca.key``, ``clients/alice/key.pem``...). The archive holds every
    key: an unencrypted one must be stored like the CA itself. Returns ``{path, files, encrypted}``.
    """
    root = Path(pki_dir).resolve()
    archive = Path(archive_path).resolve()
    if not (root / "ca" / "ca.crt").is_file():
        raise common.PkiError(f"{root} holds no CA (ca/ca.crt); nothing to back up")
    if archive.is_relative_to(root):
        raise common.PkiError(f"the archive {archive} must be outside {root}")
    if passphrase is not None and len(passphrase) < MIN_PASSPHRASE:
        raise common.PkiError(f"the backup passphrase is shorter than {MIN_PASSPHRASE} characters")
    buffer = io.BytesIO()
    files = _write_tar(buffer, root)
    data = buffer.getvalue() if passphrase is None else _seal(buffer.getvalue(), passphrase)
    archive.parent.mkdir(parents=True, exist_ok=True)
    common.write_atomic(archive, data, common.KEY_MODE)
    return {"path": str(archive), "files": files, "encrypted": passphrase is not None}


def _key(passphrase: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase)


def _seal(data: bytes, passphrase: bytes) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(12)
    return MAGIC + salt + nonce + AESGCM(_key(passphrase, salt)).encrypt(nonce, data, MAGIC)


def _unseal(archive: Path, data: bytes, passphrase: bytes | None) -> bytes:
    """The gzip tar inside an encrypted archive (PkiError without the right passphrase), or ``data`` as it is."""
    if not data.startswith(MAGIC):
        return data
    if not passphrase:
        raise common.PkiError(f"{archive} is encrypted; give its passphrase")
    body = data[len(MAGIC):]
    salt, nonce, sealed = body[:16], body[16:28], body[28:]
    try:
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, sealed, MAGIC)
    except InvalidTag:
        raise common.PkiError(f"cannot restore {archive}: wrong passphrase, or the archive was changed") from None


def _write_tar(fh: BinaryIO, root: Path) -> int:
    """Every entry under ``root`` into a gzip tar on ``fh``, in name order; returns the number of files."""
    files = 0
    with tarfile.open(fileobj=fh, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue  # a write in progress
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
            files += path.is_file()
    return files


def restore(archive_path: str | os.PathLike[str], pki_dir: str | os.PathLike[str],
            passphrase: bytes | None = None) -> dict[str, Any]:
    """Restore a :func:`backup` archive into ``pki_dir``, which must be absent or empty (an encrypted archive needs
    its ``passphrase``; it is opened, and refused when wrong or changed, before anything is written).

    Extracts with tarfile's ``data`` filter (no absolute paths, links out or devices) into a
    temporary sibling, checks it holds a CA, sets directories 0700 and keys 0600, then renames
    it into place: an interrupted restore leaves no half-restored ``pki_dir``. Returns
    ``{path, files}``.
    """
    archive = Path(archive_path)
    target = Path(pki_dir).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise common.PkiError(f"{target} exists and is not empty; restore into an absent or empty directory")
    try:
        data = _unseal(archive, archive.read_bytes(), passphrase)
    except OSError as exc:
        raise common.PkiError(f"cannot restore {archive}: {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.restore."))
    try:
        _extract(archive, data, tmp)
        files = _tighten_modes(tmp)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": str(target), "files": files}


def _extract(archive: Path, data: bytes, into: Path) -> None:
    """Extract the gzip tar ``data`` (read from ``archive``) safely (tarfile's ``data`` filter); PkiError when it
    fails or holds no CA."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(into, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise common.PkiError(f"cannot restore {archive}: {exc}") from None
    if not (into / "ca" / "ca.crt").is_file():
        raise common.PkiError(f"{archive} is not a rampart.pki backup (no ca/ca.crt in it)")


def _tighten_modes(root: Path) -> int:
    """Directories 0700, keys and bundles 0600, certificates 0644; returns the number of files."""
    files = 0
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(common.DIR_MODE)
        else:
            path.chmod(common.KEY_MODE if _is_secret(path) else common.CERT_MODE)
            files += 1
    return files
