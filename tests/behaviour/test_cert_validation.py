"""The certificate listener accepts only current, correctly used certificates from our issuing CA.

Short-lived and deliberately wrong certificates are made here, signed with the deployment's own
issuing CA key (on the control node, under the pki_dir that holds lab.json's ca_file).
"""

import datetime
from pathlib import Path

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import logship
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.mqtt import port_for

from .conftest import LAB, probe

PKI_DIR = Path(LAB["ca_file"]).parent.parent
NOW = datetime.datetime.now(datetime.UTC)


def issuing_ca():
    ca_dir = PKI_DIR / "ca"
    name = "intermediate" if (ca_dir / "intermediate.crt").exists() else "ca"
    cert = x509.load_pem_x509_certificate((ca_dir / f"{name}.crt").read_bytes())
    key = serialization.load_pem_private_key((ca_dir / f"{name}.key").read_bytes(), password=None)
    return cert, key


def make_client_cert(tmp_path, cn, *, not_before, not_after, issuer=None, eku=ExtendedKeyUsageOID.CLIENT_AUTH):
    issuer_cert, issuer_key = issuer or issuing_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))
    chain = cert.public_bytes(serialization.Encoding.PEM)
    if issuer is None and (PKI_DIR / "ca" / "intermediate.crt").exists():
        chain += (PKI_DIR / "ca" / "intermediate.crt").read_bytes()
    cert_path, key_path = tmp_path / f"{cn}-{id(cert)}.crt", tmp_path / f"{cn}-{id(cert)}.key"
    cert_path.write_bytes(chain)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def handshake(broker, client, certfile, keyfile):
    return probe(broker, port_for(broker, client), certfile=certfile, keyfile=keyfile)


def test_freshly_signed_certificate_accepted(broker, cert_client, tmp_path):
    """Positive control: a certificate made the same way, but valid, is accepted."""
    crt, key = make_client_cert(tmp_path, cert_client["name"], not_before=NOW - datetime.timedelta(minutes=5),
                                not_after=NOW + datetime.timedelta(hours=1))
    assert handshake(broker, cert_client, crt, key).accepted


@pytest.mark.parametrize(("label", "start", "end"), [
    ("expired", -datetime.timedelta(days=2), -datetime.timedelta(days=1)),
    ("not-yet-valid", datetime.timedelta(days=1), datetime.timedelta(days=2)),
])
def test_certificate_outside_its_validity_refused(broker, cert_client, tmp_path, label, start, end):
    crt, key = make_client_cert(tmp_path, cert_client["name"], not_before=NOW + start, not_after=NOW + end)
    res = handshake(broker, cert_client, crt, key)
    assert res.outcome in ("tls-error", "closed"), (label, res)


def test_certificate_from_a_foreign_ca_with_the_same_subject_refused(broker, cert_client, tmp_path):
    real_cert, _ = issuing_ca()
    fake_key = ec.generate_private_key(ec.SECP256R1())
    fake_ca = (x509.CertificateBuilder().subject_name(real_cert.subject).issuer_name(real_cert.issuer)
               .public_key(fake_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .sign(fake_key, hashes.SHA256()))
    crt, key = make_client_cert(tmp_path, cert_client["name"], not_before=NOW - datetime.timedelta(minutes=5),
                                not_after=NOW + datetime.timedelta(hours=1), issuer=(fake_ca, fake_key))
    res = handshake(broker, cert_client, crt, key)
    assert res.outcome in ("tls-error", "closed"), res


def test_server_certificate_presented_as_client_certificate_refused(broker, cert_client, tmp_path):
    """Wrong EKU: our own serverAuth-only certificate, signed by the right CA, is not a client certificate."""
    crt, key = make_client_cert(tmp_path, cert_client["name"], not_before=NOW - datetime.timedelta(minutes=5),
                                not_after=NOW + datetime.timedelta(hours=1), eku=ExtendedKeyUsageOID.SERVER_AUTH)
    res = handshake(broker, cert_client, crt, key)
    assert res.outcome in ("tls-error", "closed"), res
    server_dir = PKI_DIR / "servers" / f"mqtt-{broker['name']}"  # the broker's certificate (roles/wiring/vars/main.yml)
    res = handshake(broker, cert_client, str(server_dir / "chain.pem"), str(server_dir / "key.pem"))
    assert res.outcome in ("tls-error", "closed"), res


def test_log_shipping_certificate_is_no_mqtt_login(broker, cert_client, tmp_path):
    """Review M4: every host that ships its logs holds a log sender's client certificate (log-<host>); it comes from the
    infrastructure CA, which the broker does not trust, so it is refused at the handshake. The positive control is
    test_freshly_signed_certificate_accepted (a certificate of the devices' CA, same listener)."""
    collector = LAB.get("collector")
    if not collector:
        pytest.fail("the description has no collector, so there is no log sender's certificate to present")
    # The broker's own, or (a broker that keeps its logs: an edge of the multi-site lab) another sender's.
    senders = [s["name"] for s in collector["senders"]]
    assert senders, "the collector has no senders"
    name = broker["name"] if broker["name"] in senders else senders[0]
    sender = Path(collector["client_cert_dir"]) / logship.client_name(name)
    assert (sender / "key.pem").is_file(), f"no log sender's certificate in {sender}"
    res = handshake(broker, cert_client, str(sender / "chain.pem"), str(sender / "key.pem"))
    assert res.outcome in ("tls-error", "closed"), res
