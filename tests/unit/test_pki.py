"""rampart.pki: CA creation and reuse, leaf profiles, re-issue rules, check mode, input validation."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store

from rampart import pki

SERVER = {
    "name": "broker1",
    "profile": "server",
    "dns_names": ["broker1", "mqtt.example.org"],
    "ip_addresses": ["192.0.2.10", "2001:db8::10"],
}
CLIENT = {"name": "alice", "profile": "client"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root with its mtime and content."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    pki.ensure_ca(d, "Test CA", "ec-p256", 3650)
    return d


def issue(pki_dir: Path, certs, **kw):
    args = {"key_type": "ec-p256", "valid_days": 397, "renew_before_days": 30} | kw
    return pki.issue(pki_dir, certs, **args)


# ---------------------------------------------------------------------------------------- CA


def test_ca_layout_modes_and_extensions(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    result = pki.ensure_ca(d, "Test CA", "ec-p256", 3650)
    assert result["changed"] and result["created"] and result["warnings"] == []
    assert mode(d) == 0o700 and mode(d / "ca") == 0o700
    assert mode(d / "ca" / "ca.key") == 0o600
    assert b"BEGIN PRIVATE KEY" in (d / "ca" / "ca.key").read_bytes()  # PKCS#8, unencrypted
    ca = load_cert(d / "ca" / "ca.crt")
    bc = ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    ku = ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test CA"
    ca.verify_directly_issued_by(ca)
    assert (d / "ca" / "chain.pem").read_bytes() == (d / "ca" / "ca.crt").read_bytes()
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert lifetime == dt.timedelta(days=3650, minutes=5)
    assert ca.serial_number > 0 and ca.serial_number.bit_length() <= 159
    assert not [p for p in d.rglob(".*")], "temporary files left behind"


def test_ca_reused_untouched(pki_dir: Path) -> None:
    before = snapshot(pki_dir)
    result = pki.ensure_ca(pki_dir, "Other name", "ec-p256", 10)
    assert result == result | {"changed": False, "created": False, "warnings": []}
    assert snapshot(pki_dir) == before


def test_ca_of_other_key_type_kept_with_warning(pki_dir: Path) -> None:
    before = snapshot(pki_dir)
    result = pki.ensure_ca(pki_dir, "Test CA", "rsa-3072", 3650)
    assert not result["changed"] and result["key_type"] == "ec-p256"
    assert len(result["warnings"]) == 1 and "rsa-3072" in result["warnings"][0]
    assert snapshot(pki_dir) == before


def test_half_present_ca_is_refused_not_regenerated(pki_dir: Path) -> None:
    (pki_dir / "ca" / "ca.crt").unlink()
    key = (pki_dir / "ca" / "ca.key").read_bytes()
    with pytest.raises(pki.PkiError, match="refusing"):
        pki.ensure_ca(pki_dir, "Test CA", "ec-p256", 3650)
    assert (pki_dir / "ca" / "ca.key").read_bytes() == key


def test_ca_repairs_chain_and_modes_without_touching_key(pki_dir: Path) -> None:
    key = pki_dir / "ca" / "ca.key"
    key_bytes = key.read_bytes()
    (pki_dir / "ca" / "chain.pem").unlink()
    key.chmod(0o644)
    pki_dir.chmod(0o755)
    result = pki.ensure_ca(pki_dir, "Test CA", "ec-p256", 3650)
    assert result["changed"] and not result["created"]
    assert mode(key) == 0o600 and mode(pki_dir) == 0o700 and key.read_bytes() == key_bytes
    assert (pki_dir / "ca" / "chain.pem").read_bytes() == (pki_dir / "ca" / "ca.crt").read_bytes()


def test_ca_check_mode_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    result = pki.ensure_ca(d, "Test CA", "ec-p256", 3650, check_mode=True)
    assert result["changed"] and result["created"]
    assert not d.exists()


# ---------------------------------------------------------------------------------------- leaves


def test_server_certificate_profile(pki_dir: Path) -> None:
    result = issue(pki_dir, [SERVER])
    assert result["changed"] and result["issued"] == ["broker1"]
    leaf_dir = pki_dir / "servers" / "broker1"
    paths = result["paths"]["broker1"]
    assert paths == {
        k: str(leaf_dir / f)
        for k, f in {"cert": "cert.pem", "key": "key.pem", "chain": "chain.pem", "ca": "ca.pem"}.items()
    }
    assert mode(leaf_dir) == 0o700 and mode(leaf_dir.parent) == 0o700 and mode(leaf_dir / "key.pem") == 0o600

    ca = load_cert(pki_dir / "ca" / "ca.crt")
    cert = load_cert(leaf_dir / "cert.pem")
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "broker1"
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker1", "mqtt.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.10"),
        ipaddress.ip_address("2001:db8::10"),
    ]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment
    assert not ku.value.key_cert_sign
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    assert (
        ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ext(ca, x509.SubjectKeyIdentifier).value.digest
    )
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(days=397, minutes=5)
    # chain.pem is the leaf plus intermediates (none yet); ca.pem is the root.
    assert (leaf_dir / "chain.pem").read_bytes() == (leaf_dir / "cert.pem").read_bytes()
    assert (leaf_dir / "ca.pem").read_bytes() == (pki_dir / "ca" / "ca.crt").read_bytes()
    key = load_key(leaf_dir / "key.pem")
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    # A full RFC 5280 path validation, as a TLS client would do, by name and by address.
    store = Store([ca])
    for identity in (DNSName("mqtt.example.org"), IPAddress(ipaddress.ip_address("192.0.2.10"))):
        PolicyBuilder().store(store).build_server_verifier(identity).verify(cert, [])


def test_client_certificate_profile(pki_dir: Path) -> None:
    issue(pki_dir, [CLIENT])
    leaf_dir = pki_dir / "clients" / "alice"
    cert = load_cert(leaf_dir / "cert.pem")
    cert.verify_directly_issued_by(load_cert(pki_dir / "ca" / "ca.crt"))
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ext(cert, x509.KeyUsage).critical and ext(cert, x509.BasicConstraints).critical
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)
    assert mode(leaf_dir) == 0o700 and mode(leaf_dir / "key.pem") == 0o600


def test_second_issue_is_idempotent(pki_dir: Path) -> None:
    issue(pki_dir, [SERVER, CLIENT])
    before = snapshot(pki_dir)
    result = issue(pki_dir, [SERVER, CLIENT])
    assert result["changed"] is False
    assert result["unchanged"] == ["broker1", "alice"]
    assert result["issued"] == result["renewed"] == result["repaired"] == []
    assert snapshot(pki_dir) == before


def test_result_never_contains_key_material(pki_dir: Path) -> None:
    result = issue(pki_dir, [SERVER, CLIENT])
    text = json.dumps(result)
    assert "PRIVATE KEY" not in text and "BEGIN" not in text


def test_reissue_when_sans_change_reuses_key(pki_dir: Path) -> None:
    issue(pki_dir, [SERVER])
    leaf_dir = pki_dir / "servers" / "broker1"
    key_before, cert_before = (leaf_dir / "key.pem").read_bytes(), (leaf_dir / "cert.pem").read_bytes()
    result = issue(pki_dir, [SERVER | {"dns_names": ["broker1"], "ip_addresses": ["192.0.2.11"]}])
    assert result["changed"] and result["renewed"][0]["name"] == "broker1"
    assert "subject alternative names" in result["renewed"][0]["reason"]
    assert (leaf_dir / "key.pem").read_bytes() == key_before
    assert (leaf_dir / "cert.pem").read_bytes() != cert_before
    san = ext(load_cert(leaf_dir / "cert.pem"), x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.11")]


def test_san_order_and_case_do_not_cause_reissue(pki_dir: Path) -> None:
    issue(pki_dir, [SERVER])
    shuffled = SERVER | {"dns_names": ["MQTT.example.org", "broker1"], "ip_addresses": ["2001:db8:0::10", "192.0.2.10"]}
    assert issue(pki_dir, [shuffled])["changed"] is False


def test_reissue_when_key_type_changes_makes_new_key(pki_dir: Path) -> None:
    issue(pki_dir, [CLIENT])
    key_path = pki_dir / "clients" / "alice" / "key.pem"
    before = key_path.read_bytes()
    result = issue(pki_dir, [CLIENT], key_type="ec-p384")
    assert "key type changed (ec-p256 -> ec-p384)" in result["renewed"][0]["reason"]
    key = load_key(key_path)
    assert key_path.read_bytes() != before
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert mode(key_path) == 0o600
    cert = load_cert(pki_dir / "clients" / "alice" / "cert.pem")
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_reissue_when_profile_changes(pki_dir: Path) -> None:
    issue(pki_dir, [{"name": "dual", "profile": "client"}])
    # Same folder, forged: put the client certificate where a server certificate is expected.
    (pki_dir / "servers").mkdir(mode=0o700)
    os.replace(pki_dir / "clients" / "dual", pki_dir / "servers" / "dual")
    result = issue(pki_dir, [{"name": "dual", "profile": "server", "dns_names": ["dual"]}])
    assert "profile changed" in result["renewed"][0]["reason"]
    cert = load_cert(pki_dir / "servers" / "dual" / "cert.pem")
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_renewal_window(pki_dir: Path) -> None:
    t0 = dt.datetime.now(dt.UTC)
    issue(pki_dir, [SERVER], now=t0)
    cert_path = pki_dir / "servers" / "broker1" / "cert.pem"
    key_before = (pki_dir / "servers" / "broker1" / "key.pem").read_bytes()
    # 31 days left: outside the 30-day window.
    assert issue(pki_dir, [SERVER], now=t0 + dt.timedelta(days=366))["changed"] is False
    # 29 days left: inside.
    t1 = t0 + dt.timedelta(days=368)
    result = issue(pki_dir, [SERVER], now=t1)
    assert result["renewed"][0]["reason"].startswith("expires within 30 days")
    cert = load_cert(cert_path)
    assert cert.not_valid_after_utc == (t1 + dt.timedelta(days=397)).replace(microsecond=0)
    assert (pki_dir / "servers" / "broker1" / "key.pem").read_bytes() == key_before
    # An expired certificate says so.
    result = issue(pki_dir, [SERVER], now=t1 + dt.timedelta(days=500))
    assert result["renewed"][0]["reason"].startswith("expired on")


def test_leaf_is_capped_at_ca_expiry_without_churn(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    pki.ensure_ca(d, "Short CA", "ec-p256", 20)
    result = issue(d, [CLIENT])
    assert result["issued"] == ["alice"] and result["warnings"]
    ca, cert = load_cert(d / "ca" / "ca.crt"), load_cert(d / "clients" / "alice" / "cert.pem")
    assert cert.not_valid_after_utc == ca.not_valid_after_utc
    # Inside the renewal window, but a new certificate could not live longer: no re-issue loop.
    again = issue(d, [CLIENT])
    assert again["changed"] is False and again["warnings"]


def test_reissue_after_ca_replaced(pki_dir: Path, tmp_path: Path) -> None:
    issue(pki_dir, [SERVER, CLIENT])
    key_before = (pki_dir / "servers" / "broker1" / "key.pem").read_bytes()
    os.replace(pki_dir / "ca", tmp_path / "old-ca")
    pki.ensure_ca(pki_dir, "Test CA", "ec-p256", 3650)  # same name, new key: only the signature tells
    result = issue(pki_dir, [SERVER, CLIENT])
    assert {r["name"] for r in result["renewed"]} == {"broker1", "alice"}
    assert all("issuer is not the current CA" in r["reason"] for r in result["renewed"])
    new_ca = load_cert(pki_dir / "ca" / "ca.crt")
    for leaf in (pki_dir / "servers" / "broker1", pki_dir / "clients" / "alice"):
        load_cert(leaf / "cert.pem").verify_directly_issued_by(new_ca)
        assert (leaf / "ca.pem").read_bytes() == (pki_dir / "ca" / "ca.crt").read_bytes()
    assert (pki_dir / "servers" / "broker1" / "key.pem").read_bytes() == key_before


def test_repairs_bundle_and_mode_without_reissuing(pki_dir: Path) -> None:
    issue(pki_dir, [CLIENT])
    leaf = pki_dir / "clients" / "alice"
    cert_before = (leaf / "cert.pem").read_bytes()
    (leaf / "ca.pem").unlink()
    (leaf / "key.pem").chmod(0o640)
    result = issue(pki_dir, [CLIENT])
    assert result["renewed"] == [] and result["repaired"][0]["name"] == "alice"
    assert (leaf / "cert.pem").read_bytes() == cert_before
    assert (leaf / "ca.pem").exists() and mode(leaf / "key.pem") == 0o600


def test_missing_certificate_reissued_with_existing_key(pki_dir: Path) -> None:
    issue(pki_dir, [CLIENT])
    leaf = pki_dir / "clients" / "alice"
    key_before = (leaf / "key.pem").read_bytes()
    (leaf / "cert.pem").unlink()
    result = issue(pki_dir, [CLIENT])
    assert "certificate missing" in result["renewed"][0]["reason"]
    assert (leaf / "key.pem").read_bytes() == key_before


def test_check_mode_on_fresh_dir_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    assert pki.ensure_ca(d, "Test CA", "ec-p256", 3650, check_mode=True)["created"]
    result = issue(d, [SERVER, CLIENT], check_mode=True)
    assert result["changed"] and result["issued"] == ["broker1", "alice"]
    assert result["paths"]["alice"]["key"] == str(d / "clients" / "alice" / "key.pem")
    assert not d.exists()


def test_check_mode_on_existing_dir_reports_and_writes_nothing(pki_dir: Path) -> None:
    issue(pki_dir, [SERVER, CLIENT])
    before = snapshot(pki_dir)
    result = issue(
        pki_dir, [SERVER | {"dns_names": ["other"]}, CLIENT, {"name": "bob", "profile": "client"}], check_mode=True
    )
    assert result["changed"] and result["issued"] == ["bob"] and result["unchanged"] == ["alice"]
    assert result["renewed"] == [{"name": "broker1", "reason": "subject alternative names changed"}]
    assert snapshot(pki_dir) == before
    assert not (pki_dir / "clients" / "bob").exists()


def test_issue_without_ca_fails_outside_check_mode(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError, match="no CA"):
        issue(tmp_path / "pki", [CLIENT])
    assert not (tmp_path / "pki").exists()


# ---------------------------------------------------------------------------------------- key types


@pytest.mark.parametrize("key_type", pki.KEY_TYPES)
def test_every_key_type_works(tmp_path: Path, key_type: str) -> None:
    d = tmp_path / "pki"
    assert pki.ensure_ca(d, "Test CA", key_type, 3650)["key_type"] == key_type
    issue(d, [SERVER, CLIENT], key_type=key_type)
    ca = load_cert(d / "ca" / "ca.crt")
    expected_hash = hashes.SHA384 if key_type == "ec-p384" else hashes.SHA256
    for leaf in (d / "servers" / "broker1", d / "clients" / "alice"):
        cert = load_cert(leaf / "cert.pem")
        cert.verify_directly_issued_by(ca)
        assert isinstance(cert.signature_hash_algorithm, expected_hash)
        key = load_key(leaf / "key.pem")
        assert pki.key_type_of(key) == key_type
        assert ext(cert, x509.KeyUsage).value.key_encipherment is isinstance(key, rsa.RSAPrivateKey)
    assert issue(d, [SERVER, CLIENT], key_type=key_type)["changed"] is False


# ---------------------------------------------------------------------------------------- validation


def test_invalid_key_type_names_the_allowed_set(tmp_path: Path) -> None:
    for bad in ("rsa-1024", "rsa-2048", "ed25519", None):
        with pytest.raises(ValueError, match="ec-p256, ec-p384, rsa-3072"):
            pki.ensure_ca(tmp_path / "pki", "CA", bad, 3650)
        with pytest.raises(ValueError, match="ec-p256, ec-p384, rsa-3072"):
            pki.issue(tmp_path / "pki", [CLIENT], bad, 397, 30)
    assert not (tmp_path / "pki").exists()


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "../x", "a/b", "a b", "x" * 65, 7, None])
def test_invalid_name_rejected(pki_dir: Path, name) -> None:
    with pytest.raises(ValueError, match="name"):
        issue(pki_dir, [{"name": name, "profile": "client"}])


def test_valid_names_accepted() -> None:
    specs = pki.validate_specs([{"name": n, "profile": "client"} for n in ("a", "A.b_c-9", "x" * 64)])
    assert [s.name for s in specs] == ["a", "A.b_c-9", "x" * 64]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (SERVER | {"ip_addresses": ["300.1.1.1"]}, "not a valid IP address"),
        (SERVER | {"ip_addresses": ["192.0.2.1/24"]}, "not a valid IP address"),
        (SERVER | {"dns_names": ["10.0.0.1"]}, "is an IP address"),
        (SERVER | {"dns_names": ["bad_name.example"]}, "not a valid DNS name"),
        (SERVER | {"dns_names": [], "ip_addresses": []}, "at least one DNS name or IP address"),
        (CLIENT | {"profile": "admin"}, "profile"),
        (CLIENT | {"extra": 1}, "unknown keys"),
    ],
)
def test_invalid_spec_rejected(pki_dir: Path, spec, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        issue(pki_dir, [spec])


def test_duplicate_names_rejected(pki_dir: Path) -> None:
    with pytest.raises(ValueError, match="twice"):
        issue(pki_dir, [CLIENT, CLIENT])
    with pytest.raises(ValueError, match="both server and client"):
        issue(pki_dir, [CLIENT, {"name": "alice", "profile": "server", "dns_names": ["alice"]}])
    assert not (pki_dir / "clients").exists(), "validation happens before anything is written"


def test_renew_window_must_be_shorter_than_lifetime(pki_dir: Path) -> None:
    with pytest.raises(ValueError, match="renew_before_days"):
        issue(pki_dir, [CLIENT], valid_days=30, renew_before_days=30)


# ---------------------------------------------------------------------------------------- bulk


def test_bulk_issue_loads_the_ca_once(pki_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    real = pki.CertificateAuthority.load_root.__func__

    def counting(cls, layout):
        loads.append(layout)
        return real(cls, layout)

    monkeypatch.setattr(pki.CertificateAuthority, "load_root", classmethod(counting))
    names = [f"client-{i:03d}" for i in range(200)]
    result = issue(pki_dir, [{"name": n, "profile": "client"} for n in names])
    assert len(loads) == 1
    assert result["issued"] == names
    ca = load_cert(pki_dir / "ca" / "ca.crt")
    serials = set()
    for n in names:
        cert = load_cert(pki_dir / "clients" / n / "cert.pem")
        cert.verify_directly_issued_by(ca)
        serials.add(cert.serial_number)
    assert len(serials) == 200
