"""The CA itself, against the real broker (marked runs_last: it rotates the issuing CA), on one broker (conftest
CONVERGED).

  * intermediate rotation: raising pki_intermediate_generation re-issues every leaf from the new
    issuing CA, the broker serves the new chain after a SIGHUP, a live session survives it, and a
    device still holding its old-generation certificate keeps working during the overlap;
  * custody: the pki_dir is backed up before the rotation and restored after it (as after losing the
    control node); from the restored CA a converge brings the broker back to it, and revoking a
    device from the restored CA refuses that device at the handshake.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from cryptography.x509.oid import NameOID

from .conftest import CONVERGED, converge, inventory_clients, open_session
from .test_certificate_lifecycle import (
    RELOADED,
    RESTARTED,
    admin,
    assert_still_receiving,
    cert_probe,
    keeper,
    leaf,
    live_subscribers,
    pki_dir,
    server_certificate,
)

pytestmark = [pytest.mark.converges, pytest.mark.runs_last]


def issuer_cn(cert) -> str:
    return cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def generation(cert) -> int:
    return int(issuer_cn(cert).rsplit(" ", 1)[1])


def pki_cli(*args: str) -> None:
    """rampart-pki with a backup passphrase: the archive is encrypted (review M5), and the restore opens it."""
    env = {**os.environ, "RAMPART_PKI_BACKUP_PASSPHRASE": "a passphrase for the test backup"}
    res = subprocess.run([sys.executable, "-m", "rampart.pkitool", *args], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_intermediate_rotation_then_restore_from_backup_then_revoke(tmp_path):
    broker = CONVERGED[0]
    keep = keeper()
    current = generation(server_certificate(broker))
    archive = tmp_path / "pki-backup.tar.gz"
    pki_cli("backup", str(pki_dir()), str(archive))
    old_device = tmp_path / "old-device"
    shutil.copytree(pki_dir() / "clients" / keep["name"], old_device)
    assert generation(leaf(old_device / "cert.pem")) == current

    # Rotate the issuing CA.
    with live_subscribers() as live:
        run = converge({"pki_intermediate_generation": current + 1}, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        assert run.statuses(RELOADED) == {"changed"}
        assert run.statuses(RESTARTED) == {"skipped"}
        for b in CONVERGED:
            assert generation(server_certificate(b)) == current + 1
            session, topic = live[b["name"]]
            assert_still_receiving(b, session, topic, b"across-the-intermediate-rotation")
            # Re-issued from the new issuing CA, and the device still holding its old certificate: both accepted.
            assert generation(leaf(keep["certfile"])) == current + 1
            assert cert_probe(b, keep["certfile"], keep["keyfile"]).accepted
            assert cert_probe(b, str(old_device / "chain.pem"), str(old_device / "key.pem")).accepted

    # Lose the pki_dir, restore the backup: the broker follows the restored CA on the next converge.
    shutil.rmtree(pki_dir())
    pki_cli("restore", str(archive), str(pki_dir()))
    assert leaf(keep["certfile"]).serial_number == leaf(old_device / "cert.pem").serial_number
    run = converge(None, tmp_path)
    assert run.rc == 0, run.output[-3000:]
    for b in CONVERGED:
        assert generation(server_certificate(b)) == current
        assert cert_probe(b, keep["certfile"], keep["keyfile"]).accepted

    # Revoke with the restored CA: the device is refused, the others are not.
    clients = inventory_clients()
    try:
        s = open_session(broker, admin())
        run = converge({"mosquitto_clients": [{**c, "revoked": True} if c["name"] == keep["name"] else c
                                                     for c in clients]}, tmp_path)
        assert run.rc == 0, run.output[-3000:]
        for b in CONVERGED:
            refused = cert_probe(b, str(old_device / "chain.pem"), str(old_device / "key.pem"))
            assert refused.outcome in ("tls-error", "closed"), refused
        assert not s.disconnected.is_set()
        s.close()
    finally:
        # Un-revoking re-issues the device a new certificate (its revoked serial stays on the CRL).
        run = converge(None, tmp_path)
        assert run.rc == 0, run.output[-3000:]
    for b in CONVERGED:
        assert cert_probe(b, keep["certfile"], keep["keyfile"]).accepted
        refused = cert_probe(b, str(old_device / "chain.pem"), str(old_device / "key.pem"))
        assert refused.outcome in ("tls-error", "closed"), refused
