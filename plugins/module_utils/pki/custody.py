"""Custody of the whole ``pki_dir``: a backup archive (it holds every key) and an all-or-nothing
restore. The command a person types is ``rampart-pki backup|restore`` (rampart/pkitool.py).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from ansible_collections.rampart.mqtt.plugins.module_utils.pki import common
from ansible_collections.rampart.mqtt.plugins.module_utils.values import git_checkout_of


def custody_problems(pki_dir: str, passphrase: str, disposable: bool) -> list[str]:
    """Where and how the CA key may be kept (review M5), each problem naming the variable. ``disposable``
    (pki_disposable: true) marks a throw-away test CA, such as the lab's and Molecule's, which may be unencrypted
    and live in the checkout's git-ignored state."""
    problems = []
    if not os.path.isabs(str(pki_dir)):
        problems.append(f"pki_dir ({pki_dir!r}) is relative: the CA would depend on the directory ansible-playbook "
                        "runs from; give an absolute path outside any git checkout.")
        return problems
    if disposable:
        return problems
    if not passphrase:
        problems.append("pki_ca_key_passphrase is empty, so the CA keys would be stored unencrypted; set it from the "
                        "vault (pki_disposable: true only for a throw-away test CA such as the lab's).")
    checkout = git_checkout_of(pki_dir)
    if checkout is not None:
        problems.append(f"pki_dir ({pki_dir}) is inside the git checkout {checkout}: one 'git add -A' would commit "
                        "the CA key; move it outside.")
    return problems


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
        raise common.PkiError(f"{root} holds no CA (ca/ca.crt); nothing to back up")
    if archive.is_relative_to(root):
        raise common.PkiError(f"the archive {archive} must be outside {root}")
    archive.parent.mkdir(parents=True, exist_ok=True)
    with common.atomic_file(archive, common.KEY_MODE) as fh:
        files = _write_tar(fh, root)
    return {"path": str(archive), "files": files}


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
        raise common.PkiError(f"{target} exists and is not empty; restore into an absent or empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.restore."))
    try:
        _extract(archive, tmp)
        files = _tighten_modes(tmp)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": str(target), "files": files}


def _extract(archive: Path, into: Path) -> None:
    """Extract safely (tarfile's ``data`` filter); PkiError when it fails or holds no CA."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
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
