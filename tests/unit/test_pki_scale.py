"""What makes the pki package fast at thousands of leaves, and that it checks no less (issue 13).

Leaf files are written in one batch made durable by one flush (no fsync per file); each leaf's files
are read once; the issuing CA's public key is parsed once for every signature check; the role hands
client names to the action as one list of strings. Timings are the benchmark's business
(``rampart-bench-pki --scale 10,10000``); these tests pin the behaviour.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import pki
from ansible_collections.rampart.mqtt.plugins.module_utils.pki import authority, common
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rampart import bench_pki

NAMES = ["alice", "bob", "carol"]


def clients(names: list[str]) -> list[dict]:
    return [{"name": n, "profile": "client"} for n in names]


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    pki.ensure_ca(d, "Test CA", "ec-p256", 3650)
    return d


def leaf(d: Path, name: str) -> Path:
    return d / "clients" / name


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------------------ durability: one flush per batch


def test_leaves_are_written_without_a_per_file_fsync_and_flushed_once(pki_dir, monkeypatch) -> None:
    fsyncs, flushes = [], []
    monkeypatch.setattr(common, "SYNCFS_FROM", 1)
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd))
    monkeypatch.setattr(common, "_syncfs", lambda d: flushes.append(d) or True)
    result = pki.issue(pki_dir, clients(NAMES))
    assert result["issued"] == NAMES
    assert fsyncs == [], "leaf files must not be fsynced one by one"
    assert len(flushes) == 1 and Path(flushes[0]).is_relative_to(pki_dir)


def test_without_syncfs_every_file_and_directory_written_is_fsynced(pki_dir, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(common, "_syncfs", lambda d: False)
    pki.issue(pki_dir, clients(["alice"]))
    alice = leaf(pki_dir, "alice")
    expected = {str(alice / f) for f in ("key.pem", "cert.pem", "chain.pem", "ca.pem")}
    expected |= {str(alice), str(alice.parent), str(pki_dir)}  # new entries in each
    assert expected <= set(synced)


def test_a_small_batch_is_fsynced_file_by_file_after_the_writes_and_never_syncs_the_filesystem(pki_dir,
                                                                                               monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("write") or real_replace(a, b))
    monkeypatch.setattr(common, "_syncfs", lambda d: events.append("syncfs") or True)
    pki.issue(pki_dir, clients(["alice"]))
    assert "syncfs" not in events
    writes = [i for i, e in enumerate(events) if e == "write"]
    assert len(writes) == 4 and events.count("fsync") >= 4 + 3, events
    assert all(e == "fsync" for e in events[writes[-1] + 1:]), "a leaf file was fsynced before the batch's end"


def test_what_was_written_is_flushed_when_a_later_leaf_fails(pki_dir, monkeypatch) -> None:
    flushes, signed = [], []
    monkeypatch.setattr(common, "SYNCFS_FROM", 1)
    monkeypatch.setattr(common, "_syncfs", lambda d: flushes.append(d) or True)
    real_sign = authority.CertificateAuthority.sign

    def sign(self, **kw):
        if len(signed) == 1:
            raise OSError("disk full")
        signed.append(kw["subject"])
        return real_sign(self, **kw)

    monkeypatch.setattr(authority.CertificateAuthority, "sign", sign)
    with pytest.raises(OSError, match="disk full"):
        pki.issue(pki_dir, clients(NAMES))
    assert (leaf(pki_dir, "alice") / "cert.pem").exists() and not leaf(pki_dir, "bob").exists()
    assert len(flushes) == 1


def test_new_keys_are_0600_before_their_first_byte(pki_dir, monkeypatch) -> None:
    modes = []
    real_write = common.atomic_file

    def atomic_file(path, file_mode, **kw):
        cm = real_write(path, file_mode, **kw)
        fh = cm.__enter__()
        modes.append((path.name, stat.S_IMODE(os.fstat(fh.fileno()).st_mode), fh.tell()))
        return _Entered(cm, fh)

    monkeypatch.setattr(common, "atomic_file", atomic_file)
    pki.issue(pki_dir, clients(["alice"]))
    assert ("key.pem", 0o600, 0) in modes


class _Entered:
    def __init__(self, cm, fh):
        self.cm, self.fh = cm, fh

    def __enter__(self):
        return self.fh

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


# ------------------------------------------------------------------------------ every re-run still checks every leaf


def test_a_forged_certificate_with_the_issuers_name_and_key_id_is_reissued(pki_dir) -> None:
    pki.issue(pki_dir, clients(NAMES))
    bob = leaf(pki_dir, "bob")
    good = x509.load_pem_x509_certificate((bob / "cert.pem").read_bytes())
    inter = x509.load_pem_x509_certificate((pki_dir / "ca" / "intermediate.crt").read_bytes())
    forger = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(good.subject)
        .issuer_name(inter.subject)
        .public_key(good.public_key())
        .serial_number(good.serial_number)
        .not_valid_before(good.not_valid_before_utc)
        .not_valid_after(good.not_valid_after_utc)
    )
    for ext in good.extensions:  # the same AKI (the intermediate's key id), EKU, key usage
        builder = builder.add_extension(ext.value, ext.critical)
    forged = builder.sign(forger, hashes.SHA256())
    (bob / "cert.pem").write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    result = pki.issue(pki_dir, clients(NAMES))
    assert result["renewed"] == [{"name": "bob", "reason": "issuer is not the current CA"}]
    assert result["unchanged"] == ["alice", "carol"]
    x509.load_pem_x509_certificate((bob / "cert.pem").read_bytes()).verify_directly_issued_by(inter)


def test_a_key_that_does_not_match_its_certificate_is_reissued(pki_dir) -> None:
    pki.issue(pki_dir, clients(NAMES))
    other = common.key_pem(common.generate_key("ec-p256"))
    (leaf(pki_dir, "carol") / "key.pem").write_bytes(other)
    result = pki.issue(pki_dir, clients(NAMES))
    assert result["renewed"] == [{"name": "carol", "reason": "key does not match certificate"}]
    cert = x509.load_pem_x509_certificate((leaf(pki_dir, "carol") / "cert.pem").read_bytes())
    assert cert.public_key() == serialization.load_pem_private_key(other, None).public_key()


def test_a_changed_chain_is_repaired_and_an_unchanged_run_reads_each_file_once(pki_dir, monkeypatch) -> None:
    pki.issue(pki_dir, clients(NAMES))
    (leaf(pki_dir, "alice") / "chain.pem").write_bytes(b"tampered\n")
    reads = []
    real_read = common.read_state
    monkeypatch.setattr(common, "read_state", lambda p: reads.append(p) or real_read(p))
    result = pki.issue(pki_dir, clients(NAMES))
    assert result["repaired"] == [{"name": "alice", "reason": "chain.pem"}]
    assert len(reads) == len(set(reads)) == 4 * len(NAMES)
    assert pki.issue(pki_dir, clients(NAMES))["unchanged"] == NAMES


def test_a_loose_clients_directory_is_reported_for_every_leaf_in_check_mode_and_fixed_once(pki_dir) -> None:
    pki.issue(pki_dir, clients(NAMES))
    (pki_dir / "clients").chmod(0o755)
    check = pki.issue(pki_dir, clients(NAMES), check_mode=True)
    assert check["repaired"] == [{"name": n, "reason": "directory mode"} for n in NAMES]
    assert mode(pki_dir / "clients") == 0o755
    result = pki.issue(pki_dir, clients(NAMES))
    assert result["repaired"] == [{"name": "alice", "reason": "directory mode"}]
    assert result["unchanged"] == ["bob", "carol"]
    assert mode(pki_dir / "clients") == 0o700


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-3072"])
def test_the_signature_check_agrees_with_verify_directly_issued_by(tmp_path, key_type) -> None:
    d = tmp_path / "pki"
    pki.ensure_ca(d, "Test CA", key_type, 3650)
    pki.issue(d, clients(["alice"]), key_type=key_type)
    ca = pki.load_issuing_ca(common.Layout(d))
    good = x509.load_pem_x509_certificate((leaf(d, "alice") / "cert.pem").read_bytes())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # a bit of the signature
    bad = x509.load_der_x509_certificate(bytes(der))
    for cert, expected in ((good, True), (bad, False)):
        try:
            cert.verify_directly_issued_by(ca.cert)
            reference = True
        except (InvalidSignature, ValueError):
            reference = False
        assert reference is expected
        assert ca.issued(cert) is expected


class _Spy:
    """A certificate that records calls of verify_directly_issued_by."""

    def __init__(self, cert: x509.Certificate) -> None:
        self.cert, self.calls = cert, []

    def __getattr__(self, name: str):
        return getattr(self.cert, name)

    def verify_directly_issued_by(self, issuer: x509.Certificate) -> None:
        self.calls.append(issuer)
        self.cert.verify_directly_issued_by(issuer)


def test_an_unexpected_signature_algorithm_goes_to_the_full_check(pki_dir, monkeypatch) -> None:
    pki.issue(pki_dir, clients(["alice"]))
    ca = pki.load_issuing_ca(common.Layout(pki_dir))
    cert = _Spy(x509.load_pem_x509_certificate((leaf(pki_dir, "alice") / "cert.pem").read_bytes()))
    authority.signature_valid(cert, ca.cert, ca.cert.public_key())
    assert cert.calls == [], "ECDSA with SHA-256 takes the fast path"
    monkeypatch.setattr(authority, "_ECDSA", set())
    authority.signature_valid(cert, ca.cert, ca.cert.public_key())
    assert cert.calls == [ca.cert]


def test_same_public_key_compares_values() -> None:
    a, b = common.generate_key("ec-p256"), common.generate_key("ec-p256")
    c = common.generate_key("ec-p384")
    pem = a.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert common.same_public_key(a.public_key(), serialization.load_pem_public_key(pem))
    assert not common.same_public_key(a.public_key(), b.public_key())
    assert not common.same_public_key(a.public_key(), c.public_key())


# ------------------------------------------------------------------------------ read_state


def test_read_state_reads_content_and_mode_or_says_why_not(tmp_path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 70000)
    f.chmod(0o640)
    assert common.read_state(f) == common.FileState(True, b"x" * 70000, 0o640)
    empty = tmp_path / "empty"
    empty.touch()
    assert common.read_state(empty).data == b""
    assert common.read_state(tmp_path / "absent") == common.FileState(False)
    assert common.read_state(f / "under-a-file") == common.FileState(False)
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    d.chmod(0o700)
    assert common.read_state(d) == common.FileState(True, None, 0o700)


# ------------------------------------------------------------------------------ the action's clients list


def _run_action(args: dict) -> tuple[dict, object]:
    path = Path(__file__).with_name("test_pki_role.py")
    spec = importlib.util.spec_from_file_location("rampart_pki_role_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._run_action(args)


def test_action_clients_are_client_certificates(tmp_path) -> None:
    d = str(tmp_path / "pki")
    server = {"name": "broker1", "profile": "server", "dns_names": ["broker1"]}
    result, _ = _run_action({"dir": d, "certificates": [server], "clients": ["alice", "bob"]})
    assert result["issued"] == ["broker1", "alice", "bob"] and not result.get("failed")
    cert = x509.load_pem_x509_certificate(Path(result["paths"]["bob"]["cert"]).read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    same, _ = _run_action({"dir": d, "certificates": clients(["alice", "bob"])})
    assert same["unchanged"] == ["alice", "bob"] and not same["changed"]
    twice, _ = _run_action({"dir": d, "certificates": clients(["alice"]), "clients": ["alice"]})
    assert twice["failed"] and "'alice' appears twice" in twice["msg"]


# ------------------------------------------------------------------------------ the benchmark's scale mode


def test_bench_scale_counts_are_parsed_and_checked() -> None:
    assert bench_pki.parse_counts("10000,10") == [10, 10000]
    for bad in ("10", "10,10", "0,10", "ten,10"):
        with pytest.raises(Exception, match="count"):
            bench_pki.parse_counts(bad)


def test_bench_scale_reports_the_ratios(tmp_path, monkeypatch) -> None:
    timings = {10: (2.0, 1.5), 1000: (5.0, 2.4)}
    monkeypatch.setattr(bench_pki, "_setup", lambda work, count, community=True: None)
    monkeypatch.setattr(bench_pki, "_first_run", lambda work, count: timings[count][0])
    monkeypatch.setattr(bench_pki, "_rerun", lambda work, count: timings[count][1])
    result = bench_pki.scale([10, 1000], tmp_path)
    assert result["first_seconds_largest"] == 5.0 and result["rerun_ratio"] == 1.6
    assert [r["count"] for r in result["runs"]] == [10, 1000]
    assert (tmp_path / "n10").is_dir() and (tmp_path / "n1000").is_dir()


def test_expiry_is_still_checked(pki_dir) -> None:
    pki.issue(pki_dir, clients(["alice"]))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)
    result = pki.issue(pki_dir, clients(["alice"]), now=later)
    assert result["renewed"][0]["reason"].startswith("expires within 30 days")
