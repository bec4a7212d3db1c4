"""The pki package (plugins/module_utils/pki/): CA hierarchy, leaf profiles, re-issue rules, revocation and
CRLs, custody, check mode, validation."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import pki
from ansible_collections.rampart.mqtt.plugins.module_utils.pki import common, hierarchy, issuance, revocation
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    DNSName,
    ExtensionPolicy,
    IPAddress,
    PolicyBuilder,
    Store,
    VerificationError,
)

from rampart import pkitool

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


def load_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def load_crls(path: Path) -> list[x509.CertificateRevocationList]:
    blocks = path.read_bytes().split(b"-----END X509 CRL-----")
    return [x509.load_pem_x509_crl(b + b"-----END X509 CRL-----\n") for b in blocks if b"BEGIN X509 CRL" in b]


def root(d: Path) -> x509.Certificate:
    return load_cert(d / "ca" / "ca.crt")


def intermediate(d: Path) -> x509.Certificate:
    return load_cert(d / "ca" / "intermediate.crt")


# Web-PKI defaults, except that a client certificate may lack a subjectAltName: its CN is the
# MQTT username (mosquitto use_identity_as_username).
_CLIENT_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


def verify_client(d: Path, leaf_dir: Path, now: dt.datetime | None = None) -> None:
    """RFC 5280 path validation as the broker does it: the client presents chain.pem, the root is the anchor."""
    leaf, *untrusted = load_certs(leaf_dir / "chain.pem")
    builder = PolicyBuilder().store(Store([root(d)]))
    builder = builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_CLIENT_EE_POLICY)
    builder = builder.time(now) if now else builder
    builder.build_client_verifier().verify(leaf, untrusted)


def verify_server(d: Path, leaf_dir: Path, identity) -> None:
    leaf, *untrusted = load_certs(leaf_dir / "chain.pem")
    PolicyBuilder().store(Store([load_cert(leaf_dir / "ca.pem")])).build_server_verifier(identity).verify(
        leaf, untrusted
    )


def serial(leaf_dir: Path) -> int:
    return load_cert(leaf_dir / "cert.pem").serial_number


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


# ---------------------------------------------------------------------------------------- validators


def test_jinja_tests_are_the_pki_validators() -> None:
    from ansible_collections.rampart.mqtt.plugins.test import checks

    tests = checks.TestModule().tests()
    values = ["192.0.2.10", "::", "broker1", "mqtt.example.org", "-bad", "a" * 65, "", None, 5, "x\n"]
    for test, validator in (("ip_address", pki.is_ip_address), ("pki_name", pki.is_valid_name),
                            ("dns_name", pki.is_valid_dns_name), ("unspecified_address", pki.is_unspecified_address)):
        assert [tests[test](v) for v in values] == [validator(v) for v in values], test


@pytest.mark.parametrize(
    ("value", "expected"),
    [("192.0.2.10", True), ("2001:db8::10", True), (ipaddress.ip_address("10.0.0.1"), True), ("broker1", False),
     ("192.0.2", False), ("", False), (None, False), (3221225994, False), (b"\xc0\x00\x02\n", False)],
)
def test_is_ip_address_takes_the_text_form_only(value, expected) -> None:
    # An integer or 4 bytes parse as addresses in ipaddress, but rendered into a config they are not one.
    assert pki.is_ip_address(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("mqtt.example.org", True), ("*.example.org", True), ("mqtt.example.org.", True), ("*.org", False),
     ("-bad.example", False), ("a..b", False), ("192.0.2.10", False), ("", False), (None, False),
     ("mqtt.example.org\n", False), ("mqtt\n.example.org", False)],
)
def test_is_valid_dns_name(value, expected) -> None:
    assert pki.is_valid_dns_name(value) is expected


# ---------------------------------------------------------------------------------------- CA


def test_ca_layout_modes_and_extensions(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    result = pki.ensure_ca(d, "Test CA", "ec-p256", 3650)
    assert result["changed"] and result["created"] and result["warnings"] == []
    assert result["intermediate"] | {"not_after": None} == {
        "generation": 1,
        "created": True,
        "rotated": False,
        "reason": "created",
        "not_after": None,
        "previous_generation": None,
    }
    assert mode(d) == 0o700 and mode(d / "ca") == 0o700
    for key in ("ca.key", "intermediate.key"):
        assert mode(d / "ca" / key) == 0o600
        assert b"BEGIN PRIVATE KEY" in (d / "ca" / key).read_bytes()  # PKCS#8, unencrypted
    ca, inter = root(d), intermediate(d)
    bc = ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    ku = ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test CA"
    ca.verify_directly_issued_by(ca)
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert lifetime == dt.timedelta(days=3650, minutes=5)
    assert ca.serial_number > 0 and ca.serial_number.bit_length() <= 159

    # The intermediate: signed by the root, pathlen 0, named after the root and its generation.
    inter.verify_directly_issued_by(ca)
    assert inter.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test CA Issuing CA 1"
    bc = ext(inter, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ext(inter, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert (
        ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier == ext(ca, x509.SubjectKeyIdentifier).value.digest
    )
    assert inter.not_valid_after_utc - inter.not_valid_before_utc == dt.timedelta(days=1825, minutes=5)
    # ca/chain.pem (mosquitto cafile for client verification) = intermediate + root.
    assert load_certs(d / "ca" / "chain.pem") == [inter, ca]
    assert not [p for p in d.rglob(".*")], "temporary files left behind"


def test_long_ca_name_keeps_the_intermediate_cn_within_64_characters(tmp_path: Path) -> None:
    pki.ensure_ca(tmp_path / "pki", "N" * 64)
    cn = intermediate(tmp_path / "pki").subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert len(cn) == 64 and cn.endswith(" Issuing CA 1")


def test_ca_reused_untouched(pki_dir: Path) -> None:
    before = snapshot(pki_dir)
    result = pki.ensure_ca(pki_dir, "Other name", "ec-p256", 10)
    assert result == result | {"changed": False, "created": False, "warnings": []}
    assert snapshot(pki_dir) == before


def test_ca_of_other_key_type_kept_with_warning(pki_dir: Path) -> None:
    before = snapshot(pki_dir)
    result = pki.ensure_ca(pki_dir, "Test CA", "rsa-3072", 3650)
    assert not result["changed"] and result["key_type"] == "ec-p256"
    # One warning for the root, one for the intermediate; neither is replaced.
    assert len(result["warnings"]) == 2 and all("rsa-3072" in w for w in result["warnings"])
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
    assert load_certs(pki_dir / "ca" / "chain.pem") == [intermediate(pki_dir), root(pki_dir)]


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

    ca = intermediate(pki_dir)
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
    # chain.pem (the broker's certfile) is the leaf plus the intermediate; ca.pem is the root.
    assert load_certs(leaf_dir / "chain.pem") == [cert, ca]
    assert (leaf_dir / "ca.pem").read_bytes() == (pki_dir / "ca" / "ca.crt").read_bytes()
    key = load_key(leaf_dir / "key.pem")
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    # A full RFC 5280 path validation leaf -> intermediate -> root, as a TLS client does, by name and address.
    for identity in (DNSName("mqtt.example.org"), IPAddress(ipaddress.ip_address("192.0.2.10"))):
        verify_server(pki_dir, leaf_dir, identity)
    # The root alone does not verify the leaf: the intermediate in chain.pem is needed.
    with pytest.raises(VerificationError):
        PolicyBuilder().store(Store([root(pki_dir)])).build_server_verifier(DNSName("broker1")).verify(cert, [])
    # Server certificates never serve as client certificates (EKU serverAuth only).
    with pytest.raises(VerificationError):
        verify_client(pki_dir, leaf_dir)


def test_client_certificate_profile(pki_dir: Path) -> None:
    issue(pki_dir, [CLIENT])
    leaf_dir = pki_dir / "clients" / "alice"
    cert = load_cert(leaf_dir / "cert.pem")
    cert.verify_directly_issued_by(intermediate(pki_dir))
    verify_client(pki_dir, leaf_dir)
    assert load_certs(leaf_dir / "chain.pem") == [cert, intermediate(pki_dir)]
    assert (leaf_dir / "ca.pem").read_bytes() == (pki_dir / "ca" / "ca.crt").read_bytes()
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
    # Capped twice: the intermediate at the root's expiry, the leaf at the intermediate's.
    assert cert.not_valid_after_utc == intermediate(d).not_valid_after_utc == ca.not_valid_after_utc
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
    new_ca = intermediate(pki_dir)
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
    ca = intermediate(d)
    assert pki.key_type_of(ca.public_key()) == key_type
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


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "../x", "a/b", "a b", "x" * 65, 7, None, "dashboard\n", "a\nb"])
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
    loads, key_loads = [], []
    real_load, real_key = hierarchy.load_hierarchy, common.load_ca_key

    def counting(layout, passphrase=None):
        loads.append(layout)
        return real_load(layout, passphrase)

    def counting_key(path, passphrase):
        key_loads.append(path)
        return real_key(path, passphrase)

    monkeypatch.setattr(hierarchy, "load_hierarchy", counting)
    monkeypatch.setattr(common, "load_ca_key", counting_key)
    names = [f"client-{i:03d}" for i in range(200)]
    result = issue(pki_dir, [{"name": n, "profile": "client"} for n in names])
    assert len(loads) == 1 and key_loads == [pki_dir / "ca" / "intermediate.key"]
    assert result["issued"] == names
    ca = intermediate(pki_dir)
    serials = set()
    for n in names:
        cert = load_cert(pki_dir / "clients" / n / "cert.pem")
        cert.verify_directly_issued_by(ca)
        serials.add(cert.serial_number)
    assert len(serials) == 200


# ---------------------------------------------------------------------------------------- hierarchy, migration


def make_one_tier(d: Path, names=("alice",)) -> None:
    """The layout the previous rampart.pki wrote: the root signs leaves directly, chain.pem = root."""
    now = dt.datetime.now(dt.UTC)
    layout = pki.Layout(d)
    for p in (d, layout.ca_dir):
        p.mkdir(mode=0o700)
    root_key = pki.generate_key("ec-p256")
    root_cert = hierarchy.new_root("Test CA", root_key, 3650, now)
    layout.ca_key.write_bytes(common.key_pem(root_key))
    layout.ca_key.chmod(0o600)
    layout.ca_cert.write_bytes(common.pem([root_cert]))
    layout.ca_chain.write_bytes(common.pem([root_cert]))
    ca = pki.CertificateAuthority(cert=root_cert, key=root_key, root=root_cert)
    for name in names:
        spec = pki.validate_specs([{"name": name, "profile": "client"}])[0]
        key = pki.generate_key("ec-p256")
        cert = ca.sign(
            subject=common.cn(name),
            public_key=key.public_key(),
            extensions=issuance.leaf_extensions(spec, "ec-p256"),
            not_before=now,
            not_after=now + dt.timedelta(days=397),
        )
        issuance.write_leaf(layout.leaf("client", name), key, cert, ca, common.pem([root_cert]))


def test_one_tier_layout_migrates_to_the_hierarchy(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    make_one_tier(d, ["alice", "bob"])
    root_before = (d / "ca" / "ca.crt").read_bytes()
    alice = d / "clients" / "alice"
    key_before = (alice / "key.pem").read_bytes()
    load_cert(alice / "cert.pem").verify_directly_issued_by(root(d))

    # Check mode first: reports the intermediate and the re-issues, writes nothing.
    before = snapshot(d)
    ca = pki.ensure_ca(d, "Test CA", check_mode=True)
    assert ca["changed"] and not ca["created"] and ca["intermediate"]["created"]
    dry = issue(d, [CLIENT, {"name": "bob", "profile": "client"}], check_mode=True)
    assert [r["name"] for r in dry["renewed"]] == ["alice", "bob"]
    assert snapshot(d) == before

    ca = pki.ensure_ca(d, "Test CA")
    assert ca["changed"] and not ca["created"] and "root signed leaves directly" in ca["intermediate"]["reason"]
    assert (d / "ca" / "ca.crt").read_bytes() == root_before, "the root is kept"
    assert load_certs(d / "ca" / "chain.pem") == [intermediate(d), root(d)]
    result = issue(d, [CLIENT, {"name": "bob", "profile": "client"}])
    assert result["renewed"] == [{"name": n, "reason": "issuer is not the current CA"} for n in ("alice", "bob")]
    assert (alice / "key.pem").read_bytes() == key_before, "the device key is reused"
    load_cert(alice / "cert.pem").verify_directly_issued_by(intermediate(d))
    verify_client(d, alice)
    assert issue(d, [CLIENT, {"name": "bob", "profile": "client"}])["changed"] is False


def test_intermediate_rotation_reissues_leaves_and_overlaps(pki_dir: Path) -> None:
    t0 = dt.datetime.now(dt.UTC)
    issue(pki_dir, [SERVER, CLIENT], now=t0)
    pki.update_crl(pki_dir, now=t0)
    old_crl = (pki_dir / "ca" / "crl.pem").read_bytes()
    alice = pki_dir / "clients" / "alice"
    old_inter = intermediate(pki_dir)
    old_chain = (alice / "chain.pem").read_bytes()

    # Check mode: rotation and the re-issues are reported, nothing written.
    before = snapshot(pki_dir)
    dry = pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2, check_mode=True, now=t0)
    assert dry["intermediate"]["rotated"] and dry["intermediate"]["generation"] == 2
    dry_leaves = issue(pki_dir, [SERVER, CLIENT], check_mode=True, now=t0, intermediate_generation=2)
    assert {r["name"] for r in dry_leaves["renewed"]} == {"broker1", "alice"}
    assert pki.update_crl(pki_dir, check_mode=True, now=t0, intermediate_generation=2)["changed"]
    assert snapshot(pki_dir) == before
    with pytest.raises(pki.PkiError, match="run ensure_ca first"):
        issue(pki_dir, [CLIENT], now=t0, intermediate_generation=2)

    t1 = t0 + dt.timedelta(minutes=1)
    result = pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2, now=t1)
    assert result["intermediate"] | {"not_after": None} == {
        "generation": 2,
        "created": True,
        "rotated": True,
        "reason": "rotated from generation 1 to 2",
        "not_after": None,
        "previous_generation": 1,
    }
    new_inter = intermediate(pki_dir)
    assert new_inter.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test CA Issuing CA 2"
    assert load_cert(pki_dir / "ca" / "retired" / "intermediate-1.crt") == old_inter
    assert mode(pki_dir / "ca" / "retired" / "intermediate-1.key") == 0o600
    # During the overlap the client-verification bundle trusts both intermediates...
    assert load_certs(pki_dir / "ca" / "chain.pem") == [new_inter, old_inter, root(pki_dir)]
    crl = pki.update_crl(pki_dir, now=t1, intermediate_generation=2)
    assert crl["changed"] and crl["reason"] == "new"
    # ...and crl.pem has a CRL for each (OpenSSL fails a leaf whose issuer has no CRL); the
    # previous intermediate's is kept byte-for-byte.
    assert [c.issuer for c in load_crls(pki_dir / "ca" / "crl.pem")] == [new_inter.subject, old_inter.subject]
    assert (pki_dir / "ca" / "crl.pem").read_bytes().endswith(old_crl)

    # Every leaf is re-issued in the same run, by the new intermediate, with its key.
    leaves = issue(pki_dir, [SERVER, CLIENT], now=t1, intermediate_generation=2)
    assert all("issuer is not the current CA" in r["reason"] for r in leaves["renewed"])
    assert {r["name"] for r in leaves["renewed"]} == {"broker1", "alice"}
    assert load_certs(alice / "chain.pem")[1] == new_inter
    verify_client(pki_dir, alice)
    # A device still presenting its old chain (leaf + old intermediate) keeps verifying during the overlap.
    old_leaf, *old_untrusted = x509.load_pem_x509_certificates(old_chain)
    assert old_untrusted == [old_inter]
    old_leaf.verify_directly_issued_by(load_certs(pki_dir / "ca" / "chain.pem")[1])

    # Idempotent inside the overlap; after it the previous intermediate leaves both files.
    assert pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2, now=t1)["changed"] is False
    t2 = t1 + dt.timedelta(days=31)
    after = pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2, now=t2)
    assert after["changed"] and after["intermediate"]["previous_generation"] is None
    assert load_certs(pki_dir / "ca" / "chain.pem") == [new_inter, root(pki_dir)]
    crl = pki.update_crl(pki_dir, now=t2, intermediate_generation=2)
    assert crl["changed"] and "dropped" in crl["reason"]
    assert [c.issuer for c in load_crls(pki_dir / "ca" / "crl.pem")] == [new_inter.subject]


def test_intermediate_generation_never_goes_down(pki_dir: Path) -> None:
    pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=3)
    with pytest.raises(pki.PkiError, match="only ever goes up: set it to 3"):
        pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2)
    # Unset keeps the current generation.
    assert pki.ensure_ca(pki_dir, "Test CA")["intermediate"]["generation"] == 3


def test_zero_overlap_drops_the_previous_intermediate_at_once(pki_dir: Path) -> None:
    pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2, intermediate_overlap_days=0)
    assert load_certs(pki_dir / "ca" / "chain.pem") == [intermediate(pki_dir), root(pki_dir)]


def test_root_offline(pki_dir: Path, tmp_path: Path) -> None:
    offline = tmp_path / "offline-ca.key"
    shutil.move(pki_dir / "ca" / "ca.key", offline)
    before = snapshot(pki_dir)
    # Reusing the CA, issuing, renewing, revoking and the intermediate's CRL all work without the root key.
    result = pki.ensure_ca(pki_dir, "Test CA")
    assert result["changed"] is False and result["root_key_present"] is False
    assert snapshot(pki_dir) == before
    assert issue(pki_dir, [SERVER, CLIENT])["issued"] == ["broker1", "alice"]
    crl = pki.update_crl(pki_dir, revoked=["alice"])
    assert crl["newly_revoked"] == ["alice"] and (pki_dir / "ca" / "crl.pem").exists()
    # The root CRL cannot be signed: a warning (the broker never reads it), not a failure.
    assert not (pki_dir / "ca" / "root-crl.pem").exists()
    assert any("root key" in w and "offline" in w for w in crl["warnings"])

    # Rotating the intermediate needs the root key: a clear failure naming the step and the fix.
    with pytest.raises(pki.PkiError) as err:
        pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2)
    message = str(err.value)
    assert "rotating the issuing CA" in message and "needs the root CA key" in message
    assert str(pki_dir / "ca" / "ca.key") in message and "tar -xzf" in message
    assert intermediate(pki_dir).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.endswith(" 1")

    # Bring it back: rotation works, and the root CRL is signed on the next CRL run.
    shutil.move(offline, pki_dir / "ca" / "ca.key")
    assert pki.ensure_ca(pki_dir, "Test CA", intermediate_generation=2)["intermediate"]["rotated"]
    assert pki.update_crl(pki_dir)["root"]["changed"]
    root_crl = load_crls(pki_dir / "ca" / "root-crl.pem")[0]
    assert root_crl.is_signature_valid(root(pki_dir).public_key())


def test_one_tier_layout_with_root_offline_fails_clearly(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    make_one_tier(d)
    (d / "ca" / "ca.key").unlink()
    with pytest.raises(pki.PkiError, match="creating the issuing CA needs the root CA key"):
        pki.ensure_ca(d, "Test CA")
    assert not (d / "ca" / "intermediate.crt").exists()


def test_half_present_intermediate_is_refused(pki_dir: Path) -> None:
    (pki_dir / "ca" / "intermediate.key").unlink()
    with pytest.raises(pki.PkiError, match="refusing to replace the issuing CA"):
        pki.ensure_ca(pki_dir, "Test CA")
    with pytest.raises(pki.PkiError, match="refusing"):
        issue(pki_dir, [CLIENT])


# ---------------------------------------------------------------------------------------- revocation and CRLs


@pytest.fixture
def three_clients(pki_dir: Path) -> Path:
    issue(pki_dir, [{"name": n, "profile": "client"} for n in ("alice", "bob", "carol")])
    return pki_dir



def test_revoking_a_client_revokes_every_certificate_it_still_holds(pki_dir: Path) -> None:
    """Review M2: a renewal keeps the key, so the device can still present its old certificate until that expires;
    revoking the client lists the old serial too, and an expired one is not kept."""
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(days=380)
    alice = pki_dir / "clients" / "alice"
    issue(pki_dir, [CLIENT | {"name": "alice"}], now=t0)
    expired = serial(alice)
    issue(pki_dir, [CLIENT | {"name": "alice"}], now=t0 + dt.timedelta(days=398))  # renewed after it expired
    first = serial(alice)
    renewal = t0 + dt.timedelta(days=398 + 397 - 20)  # inside the 30-day window: renewed with the same key
    result = issue(pki_dir, [CLIENT | {"name": "alice"}], now=renewal)
    assert [r["name"] for r in result["renewed"]] == ["alice"]
    second = serial(alice)
    assert len({expired, first, second}) == 3
    assert sorted(p.name for p in (alice / "previous").iterdir()) == [f"{first:x}.pem"]
    assert mode(alice / "previous") == 0o700
    revoked = pki.update_crl(pki_dir, revoked=["alice"], valid_days=30)
    assert revoked["newly_revoked"] == ["alice"] and revoked["revoked"] == ["alice"]
    (crl,) = load_crls(pki_dir / "ca" / "crl.pem")
    assert {r.serial_number for r in crl} == {first, second}
    state = json.loads((pki_dir / "ca" / "revoked.json").read_text())["revoked"]
    assert sorted(int(e["serial"], 16) for e in state if e["name"] == "alice") == sorted([first, second])
    again = pki.update_crl(pki_dir, revoked=["alice"], valid_days=30)
    assert again["newly_revoked"] == [] and again["changed"] is False

def _sha1(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return "SHA1:" + cert.fingerprint(hashes.SHA1()).hex(":").upper()  # noqa: S303 (librelp's format)


def test_the_pinned_fingerprints_are_the_valid_unrevoked_certificates_a_client_holds(pki_dir: Path) -> None:
    """Review L5: librelp checks no CRL, so the collector admits only these: the current certificate and the earlier
    one a renewal kept; not once it expired, not once it is revoked, never another client's."""
    now = dt.datetime.now(dt.UTC)
    alice, bob = pki_dir / "clients" / "alice", pki_dir / "clients" / "bob"
    issue(pki_dir, [CLIENT | {"name": "alice"}], now=now - dt.timedelta(days=380))  # expires in 17 days
    first = _sha1(alice / "cert.pem")
    issue(pki_dir, [CLIENT | {"name": "alice"}, CLIENT | {"name": "bob"}], now=now)  # alice renewed
    second = _sha1(alice / "cert.pem")
    assert first != second
    assert pki.pinned_fingerprints(pki_dir, ["alice"]) == sorted([first, second])
    assert pki.pinned_fingerprints(pki_dir, ["alice"], now=now + dt.timedelta(days=18)) == [second]
    assert pki.pinned_fingerprints(pki_dir, ["bob", "nobody"]) == [_sha1(bob / "cert.pem")]
    pki.update_crl(pki_dir, revoked=["alice"], valid_days=30)
    assert pki.pinned_fingerprints(pki_dir, ["alice"]) == []
    assert pki.pinned_fingerprints(pki_dir / "absent", ["alice"]) == []


def test_a_client_the_deployment_no_longer_has_is_revoked_and_its_name_comes_back_with_a_new_key(
        three_clients: Path) -> None:
    """Review M3: keep_clients names every client the deployment still has. Check mode reports the retirement and
    writes nothing; the run revokes every certificate of the others (current and previous), moves their folders
    whole to retired-clients/, and a name that comes back is issued a new key and serial."""
    d = three_clients
    bob = d / "clients" / "bob"
    old_serial, old_key = serial(bob), (bob / "key.pem").read_bytes()
    before = snapshot(d)
    dry = pki.update_crl(d, keep_clients=["alice", "carol"], valid_days=30, check_mode=True)
    assert dry["changed"] and dry["retired"] == ["bob"] and dry["newly_revoked"] == ["bob"]
    assert snapshot(d) == before
    result = pki.update_crl(d, keep_clients=["alice", "carol"], valid_days=30)
    assert result["retired"] == ["bob"] and result["newly_revoked"] == ["bob"]
    (crl,) = load_crls(d / "ca" / "crl.pem")
    assert {r.serial_number for r in crl} == {old_serial}
    assert not bob.exists() and sorted(p.name for p in (d / "clients").iterdir()) == ["alice", "carol"]
    (kept,) = (d / "retired-clients").iterdir()
    assert kept.name.startswith("bob-") and (kept / "key.pem").read_bytes() == old_key
    assert mode(d / "retired-clients") == 0o700
    again = pki.update_crl(d, keep_clients=["alice", "carol"], valid_days=30)
    assert again["changed"] is False and again["retired"] == []
    back = issue(d, [{"name": n, "profile": "client"} for n in ("alice", "bob", "carol")])
    assert back["issued"] == ["bob"]
    assert serial(bob) != old_serial and (bob / "key.pem").read_bytes() != old_key
    assert pki.update_crl(d, keep_clients=["alice", "bob", "carol"], valid_days=30)["retired"] == []
    assert pki.update_crl(d, valid_days=30)["retired"] == [], "without keep_clients nothing is retired"


def test_crl_lists_exactly_the_revoked_serials(three_clients: Path) -> None:
    d = three_clients
    now = dt.datetime.now(dt.UTC)
    bob, carol = serial(d / "clients" / "bob"), serial(d / "clients" / "carol")
    result = pki.update_crl(d, revoked=["bob", "carol"], valid_days=30, now=now)
    assert result["changed"] and result["newly_revoked"] == ["bob", "carol"] and result["revoked"] == ["bob", "carol"]
    assert result["entries"] == 2 and result["path"] == str(d / "ca" / "crl.pem")
    (crl,) = load_crls(d / "ca" / "crl.pem")
    inter = intermediate(d)
    assert crl.issuer == inter.subject and crl.is_signature_valid(inter.public_key())
    assert not crl.is_signature_valid(root(d).public_key())
    assert {r.serial_number for r in crl} == {bob, carol}
    assert crl.next_update_utc == (now + dt.timedelta(days=30)).replace(microsecond=0)
    assert crl.last_update_utc == (now - dt.timedelta(minutes=5)).replace(microsecond=0)
    assert result["next_update"] == revocation.iso(now + dt.timedelta(days=30))
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ext(inter, x509.SubjectKeyIdentifier).value.digest
    # The state file records serial, name and date.
    state = json.loads((d / "ca" / "revoked.json").read_text())["revoked"]
    assert [(e["name"], int(e["serial"], 16)) for e in state] == [("bob", bob), ("carol", carol)]
    assert all(e["revoked_at"].endswith("Z") for e in state)
    # The root's CRL is separate, signed by the root, empty.
    (root_crl,) = load_crls(d / "ca" / "root-crl.pem")
    assert root_crl.is_signature_valid(root(d).public_key()) and len(root_crl) == 0


def test_openssl_rejects_a_revoked_client_with_the_crl(three_clients: Path) -> None:
    """What mosquitto does with cafile=ca/chain.pem and crlfile=ca/crl.pem (X509_V_FLAG_CRL_CHECK)."""
    d = three_clients
    pki.update_crl(d, revoked=["bob"])

    def verify(name: str) -> subprocess.CompletedProcess:
        leaf = d / "clients" / name
        args = ["-purpose", "sslclient", "-crl_check", "-CAfile", d / "ca" / "chain.pem"]
        args += ["-CRLfile", d / "ca" / "crl.pem", "-untrusted", leaf / "chain.pem", leaf / "cert.pem"]
        return subprocess.run(["openssl", "verify", *map(str, args)], capture_output=True, text=True, check=False)

    assert verify("alice").returncode == 0
    rejected = verify("bob")
    assert rejected.returncode != 0 and "revoked" in rejected.stdout + rejected.stderr


def test_crl_is_idempotent(three_clients: Path) -> None:
    d = three_clients
    pki.update_crl(d, revoked=["bob"])
    before = snapshot(d)
    again = pki.update_crl(d, revoked=["bob"])
    assert again["changed"] is False and again["reason"] is None and again["newly_revoked"] == []
    assert again["revoked"] == ["bob"] and again["root"]["changed"] is False
    assert snapshot(d) == before


def test_crl_reissued_inside_the_renew_window(three_clients: Path) -> None:
    d = three_clients
    t0 = dt.datetime.now(dt.UTC)
    pki.update_crl(d, revoked=["bob"], valid_days=30, renew_before_days=15, now=t0)
    before = (d / "ca" / "crl.pem").read_bytes()
    # 16 days left: outside the 15-day window, byte-for-byte unchanged.
    assert pki.update_crl(d, revoked=["bob"], now=t0 + dt.timedelta(days=14))["changed"] is False
    assert (d / "ca" / "crl.pem").read_bytes() == before
    # 14 days left: re-signed with a fresh nextUpdate and the next CRL number, same serials.
    t1 = t0 + dt.timedelta(days=16)
    result = pki.update_crl(d, revoked=["bob"], now=t1)
    assert result["changed"] and result["reason"].startswith("nextUpdate") and "within 15 days" in result["reason"]
    (crl,) = load_crls(d / "ca" / "crl.pem")
    assert crl.next_update_utc == (t1 + dt.timedelta(days=30)).replace(microsecond=0)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert {r.serial_number for r in crl} == {serial(d / "clients" / "bob")}
    assert result["warnings"] == []


def test_crl_warns_when_it_ends_the_run_close_to_expiry(three_clients: Path) -> None:
    result = pki.update_crl(three_clients, valid_days=5, renew_before_days=1)
    assert any("rejects every client certificate" in w for w in result["warnings"])


def test_revoked_names_are_not_reissued(three_clients: Path) -> None:
    d = three_clients
    pki.update_crl(d, revoked=["bob"])
    bob = d / "clients" / "bob"
    before = {p.name: p.read_bytes() for p in bob.iterdir()}
    specs = [{"name": n, "profile": "client"} for n in ("alice", "bob")]
    # Not even when it is due for renewal or its issuer changed.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)
    result = issue(d, specs, revoked=["bob"], now=later)
    assert result["revoked"] == ["bob"] and "bob" not in result["paths"]
    assert [r["name"] for r in result["renewed"]] == ["alice"]
    pki.ensure_ca(d, "Test CA", intermediate_generation=2)
    result = issue(d, specs, revoked=["bob"])
    assert result["revoked"] == ["bob"] and [r["name"] for r in result["renewed"]] == ["alice"]
    assert {p.name: p.read_bytes() for p in bob.iterdir()} == before


def test_client_revoked_from_the_start_gets_a_certificate_the_crl_lists(pki_dir: Path) -> None:
    specs = [CLIENT, {"name": "mallory", "profile": "client"}]
    first = issue(pki_dir, specs, revoked=["mallory"])
    assert first["issued"] == ["alice", "mallory"] and first["revoked"] == []
    crl = pki.update_crl(pki_dir, revoked=["mallory"])
    assert crl["newly_revoked"] == ["mallory"] and crl["warnings"] == []
    (listed,) = load_crls(pki_dir / "ca" / "crl.pem")
    assert {r.serial_number for r in listed} == {serial(pki_dir / "clients" / "mallory")}
    second = issue(pki_dir, specs, revoked=["mallory"])
    assert second["changed"] is False and second["revoked"] == ["mallory"]


def test_unrevoke_issues_a_new_serial_and_keeps_the_old_on_the_crl(three_clients: Path) -> None:
    d = three_clients
    bob = d / "clients" / "bob"
    old_serial, old_key = serial(bob), (bob / "key.pem").read_bytes()
    pki.update_crl(d, revoked=["bob"])
    crl_before = (d / "ca" / "crl.pem").read_bytes()

    result = issue(d, [{"name": "bob", "profile": "client"}])  # no longer in revoked
    assert result["renewed"][0]["name"] == "bob" and "was revoked" in result["renewed"][0]["reason"]
    assert serial(bob) != old_serial and (bob / "key.pem").read_bytes() != old_key
    verify_client(d, bob)
    crl = pki.update_crl(d)
    assert crl["changed"] is False and crl["entries"] == 1 and crl["revoked"] == []
    assert (d / "ca" / "crl.pem").read_bytes() == crl_before
    assert {r.serial_number for r in load_crls(d / "ca" / "crl.pem")[0]} == {old_serial}
    # Revoking the name again adds the new serial; the old one stays.
    pki.update_crl(d, revoked=["bob"])
    assert {r.serial_number for r in load_crls(d / "ca" / "crl.pem")[0]} == {old_serial, serial(bob)}


def test_revoking_an_unknown_name_warns(three_clients: Path) -> None:
    result = pki.update_crl(three_clients, revoked=["nobody"])
    assert result["newly_revoked"] == [] and "'nobody' has no certificate" in result["warnings"][0]
    with pytest.raises(ValueError, match="invalid names"):
        pki.update_crl(three_clients, revoked=["../x"])


def test_damaged_revocation_state_is_an_error_not_a_reset(three_clients: Path) -> None:
    pki.update_crl(three_clients, revoked=["bob"])
    (three_clients / "ca" / "revoked.json").write_text("{not json")
    with pytest.raises(pki.PkiError, match="restore it from backup"):
        pki.update_crl(three_clients, revoked=["bob"])
    with pytest.raises(pki.PkiError, match="restore it from backup"):
        issue(three_clients, [CLIENT])


def test_check_mode_revocation_and_crl_write_nothing(three_clients: Path) -> None:
    d = three_clients
    pki.update_crl(d)
    before = snapshot(d)
    dry = pki.update_crl(d, revoked=["bob"], check_mode=True)
    assert dry["changed"] and dry["newly_revoked"] == ["bob"] and dry["reason"].startswith("revoked set changed")
    later = pki.update_crl(d, check_mode=True, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=20))
    assert later["changed"] and "within 15 days" in later["reason"]
    assert snapshot(d) == before and not (d / "ca" / "revoked.json").exists()


def test_check_mode_on_fresh_dir_reports_the_crl(tmp_path: Path) -> None:
    result = pki.update_crl(tmp_path / "pki", revoked=["bob"], check_mode=True)
    assert result["changed"] and result["reason"] == "new"
    assert not (tmp_path / "pki").exists()
    with pytest.raises(pki.PkiError, match="no CA"):
        pki.update_crl(tmp_path / "pki")


# ---------------------------------------------------------------------------------------- key custody


def test_passphrase_protected_ca_keys(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    pki.ensure_ca(d, "Test CA", passphrase="correct horse")
    for key in ("ca.key", "intermediate.key"):
        data = (d / "ca" / key).read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") and mode(d / "ca" / key) == 0o600
        serialization.load_pem_private_key(data, password=b"correct horse")
    assert issue(d, [CLIENT], passphrase="correct horse")["issued"] == ["alice"]
    assert pki.update_crl(d, revoked=["alice"], passphrase="correct horse")["newly_revoked"] == ["alice"]
    assert pki.ensure_ca(d, "Test CA", intermediate_generation=2, passphrase="correct horse")["intermediate"]["rotated"]
    with pytest.raises(pki.PkiError, match="encrypted; set pki_ca_key_passphrase"):
        issue(d, [CLIENT])
    with pytest.raises(pki.PkiError, match="cannot decrypt") as err:
        issue(d, [CLIENT], passphrase="wrong")
    assert "wrong" not in str(err.value).replace("pki_ca_key_passphrase does not open", "")


def test_setting_a_passphrase_encrypts_existing_ca_keys_in_place(pki_dir: Path) -> None:
    issue(pki_dir, [CLIENT])
    inter_before = intermediate(pki_dir)
    result = pki.ensure_ca(pki_dir, "Test CA", passphrase="s3cret")
    assert result["changed"] and sorted(result["encrypted"]) == sorted(
        [str(pki_dir / "ca" / "ca.key"), str(pki_dir / "ca" / "intermediate.key")]
    )
    key = serialization.load_pem_private_key((pki_dir / "ca" / "intermediate.key").read_bytes(), b"s3cret")
    assert common.same_public_key(key.public_key(), inter_before.public_key()), "same key, only encrypted"
    assert pki.ensure_ca(pki_dir, "Test CA", passphrase="s3cret")["changed"] is False
    assert issue(pki_dir, [CLIENT], passphrase="s3cret")["unchanged"] == ["alice"]


def test_pkcs12_bundle(pki_dir: Path) -> None:
    result = issue(pki_dir, [SERVER, CLIENT], pkcs12_passphrase="p12-pass")
    alice = pki_dir / "clients" / "alice"
    p12 = alice / "bundle.p12"
    assert result["paths"]["alice"]["pkcs12"] == str(p12) and "pkcs12" not in result["paths"]["broker1"]
    assert mode(p12) == 0o600 and not (pki_dir / "servers" / "broker1" / "bundle.p12").exists()
    key, cert, extra = pkcs12.load_key_and_certificates(p12.read_bytes(), b"p12-pass")
    assert common.same_public_key(key.public_key(), load_key(alice / "key.pem").public_key())
    assert cert == load_cert(alice / "cert.pem") and extra == [intermediate(pki_dir), root(pki_dir)]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(p12.read_bytes(), b"other")

    # Nothing changed: not rewritten (PKCS#12 output is random, so this is a real check).
    before = snapshot(pki_dir)
    again = issue(pki_dir, [SERVER, CLIENT], pkcs12_passphrase="p12-pass")
    assert again["changed"] is False and snapshot(pki_dir) == before
    # A renewed certificate or a new passphrase rewrites it; no passphrase removes it.
    renewed = issue(pki_dir, [CLIENT], key_type="ec-p384", pkcs12_passphrase="p12-pass")
    assert renewed["renewed"][0]["name"] == "alice"
    assert pkcs12.load_key_and_certificates(p12.read_bytes(), b"p12-pass")[1] == load_cert(alice / "cert.pem")
    changed = issue(pki_dir, [CLIENT], key_type="ec-p384", pkcs12_passphrase="new-pass")
    assert changed["repaired"] == [{"name": "alice", "reason": "bundle.p12"}]
    pkcs12.load_key_and_certificates(p12.read_bytes(), b"new-pass")
    removed = issue(pki_dir, [CLIENT], key_type="ec-p384")
    assert removed["repaired"] == [{"name": "alice", "reason": "bundle.p12 removed"}] and not p12.exists()


# ---------------------------------------------------------------------------------------- backup and restore


def test_backup_and_restore_then_issue_and_revoke(three_clients: Path, tmp_path: Path) -> None:
    d = three_clients
    pki.update_crl(d, revoked=["bob"])
    archive = tmp_path / "backups" / "pki.tar.gz"
    result = pki.backup(d, archive)
    assert result["path"] == str(archive) and mode(archive) == 0o600 and result["files"] > 10
    with pytest.raises(pki.PkiError, match="outside"):
        pki.backup(d, d / "self.tar.gz")

    restored = tmp_path / "restored"
    assert pki.restore(archive, restored)["files"] == result["files"]
    assert snapshot_content(restored) == snapshot_content(d)
    assert mode(restored) == 0o700 and mode(restored / "ca" / "ca.key") == 0o600
    assert mode(restored / "clients" / "alice" / "key.pem") == 0o600

    # The restored PKI is fully usable: idempotent, issues, revokes (old revocations kept).
    assert pki.ensure_ca(restored, "Test CA")["changed"] is False
    assert issue(restored, [{"name": "dave", "profile": "client"}])["issued"] == ["dave"]
    verify_client(restored, restored / "clients" / "dave")
    crl = pki.update_crl(restored, revoked=["bob", "dave"])
    assert crl["newly_revoked"] == ["dave"] and crl["revoked"] == ["bob", "dave"]
    serials = {r.serial_number for r in load_crls(restored / "ca" / "crl.pem")[0]}
    assert serials == {serial(restored / "clients" / "bob"), serial(restored / "clients" / "dave")}

    with pytest.raises(pki.PkiError, match="not empty"):
        pki.restore(archive, restored)


def test_backup_cli(three_clients: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Review M5: the command encrypts the archive; a plain one takes --unencrypted."""
    archive = tmp_path / "b.tar.gz"
    monkeypatch.delenv(pkitool.PASSPHRASE_ENV, raising=False)
    assert pkitool.main(["backup", str(three_clients), str(archive)]) == 1
    assert f"{pkitool.PASSPHRASE_ENV} is empty" in capsys.readouterr().err and not archive.exists()
    monkeypatch.setenv(pkitool.PASSPHRASE_ENV, "correct horse battery staple")
    assert pkitool.main(["backup", str(three_clients), str(archive)]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["path"] == str(archive) and run["encrypted"] is True and run["files"] > 0
    assert b"PRIVATE KEY" not in archive.read_bytes() and mode(archive) == 0o600
    monkeypatch.setenv(pkitool.PASSPHRASE_ENV, "not the passphrase")
    assert pkitool.main(["restore", str(archive), str(tmp_path / "r")]) == 1
    assert "wrong passphrase" in capsys.readouterr().err and not (tmp_path / "r").exists()
    monkeypatch.setenv(pkitool.PASSPHRASE_ENV, "correct horse battery staple")
    assert pkitool.main(["restore", str(archive), str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "ca" / "intermediate.key").exists()
    assert pkitool.main(["restore", str(archive), str(tmp_path / "r")]) == 1
    assert "not empty" in capsys.readouterr().err
    plain = tmp_path / "plain.tar.gz"
    assert pkitool.main(["backup", "--unencrypted", str(three_clients), str(plain)]) == 0
    assert json.loads(capsys.readouterr().out)["encrypted"] is False
    with tarfile.open(plain) as tar:
        assert "ca/ca.crt" in tar.getnames()


def test_an_encrypted_backup_refuses_a_missing_or_wrong_passphrase_and_a_changed_byte(three_clients: Path,
                                                                                      tmp_path: Path) -> None:
    archive = tmp_path / "b.tar.gz"
    with pytest.raises(pki.PkiError, match="shorter than 12"):
        pki.backup(three_clients, archive, b"short")
    made = pki.backup(three_clients, archive, b"a long enough passphrase")
    with pytest.raises(pki.PkiError, match="is encrypted; give its passphrase"):
        pki.restore(archive, tmp_path / "r")
    with pytest.raises(pki.PkiError, match="wrong passphrase, or the archive was changed"):
        pki.restore(archive, tmp_path / "r", b"another long passphrase")
    data = bytearray(archive.read_bytes())
    data[-40] ^= 1
    changed = tmp_path / "changed.tar.gz"
    changed.write_bytes(bytes(data))
    with pytest.raises(pki.PkiError, match="wrong passphrase, or the archive was changed"):
        pki.restore(changed, tmp_path / "r", b"a long enough passphrase")
    assert not (tmp_path / "r").exists()
    assert pki.restore(archive, tmp_path / "r", b"a long enough passphrase")["files"] == made["files"]
    assert snapshot_content(tmp_path / "r") == snapshot_content(three_clients)


def snapshot_content(root_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root_dir)): p.read_bytes() for p in root_dir.rglob("*") if p.is_file()}


def test_custody_problems_name_the_variable(tmp_path: Path) -> None:
    """Review M5: a relative pki_dir always; an unencrypted key or a pki_dir in a git checkout unless disposable."""
    from ansible_collections.rampart.mqtt.plugins.module_utils.pki import settings

    outside = tmp_path / "ca"
    assert settings.custody_problems(str(outside), "secret", False) == []
    assert settings.custody_problems(str(outside), "", True) == []
    assert any("pki_dir ('pki') is relative" in p for p in settings.custody_problems("pki", "secret", True))
    assert any("pki_ca_key_passphrase is empty" in p for p in settings.custody_problems(str(outside), "", False))
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    inside = tmp_path / "repo" / "state" / "pki"
    problems = settings.custody_problems(str(inside), "secret", False)
    assert any(f"is inside the git checkout {tmp_path / 'repo'}" in p for p in problems), problems
    assert settings.custody_problems(str(inside), "", True) == []
