"""TLS on every listener: no plaintext, TLS 1.2+ only, AEAD suites only, our CA and the right name only."""

import datetime
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rampart import mqttprobe

from .conftest import LAB, probe

AEAD_MARKERS = ("GCM", "CHACHA20", "CCM")


def endpoints(broker, cert_client):
    """(port, TLS client options) for every listener: the certificate listener needs a client certificate."""
    for auth, port in sorted(broker["listeners"].items()):
        creds = {}
        if auth == "certificate":
            creds = {"certfile": cert_client["certfile"], "keyfile": cert_client["keyfile"]}
        yield port, creds


@pytest.mark.parametrize("which", ["password", "certificate"])
def test_plaintext_connect_fails(broker, which):
    res = mqttprobe.raw_connect(broker["address"], broker["listeners"][which], None, None,
                                username="x", password="y")
    assert res.outcome != "connack", res


def handshake(broker, port, **ctx_args):
    ctx = mqttprobe.tls_context(LAB["ca_file"], **ctx_args)
    with (socket.create_connection((broker["address"], port), timeout=5) as raw,
          ctx.wrap_socket(raw, server_hostname=broker["tls_server_name"]) as tls):
        return tls.version(), tls.cipher()[0]


def test_tls12_and_tls13_accepted(broker, cert_client):
    for port, creds in endpoints(broker, cert_client):
        tls12 = handshake(broker, port, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2, **creds)
        assert tls12[0] == "TLSv1.2"
        assert handshake(broker, port, minimum=ssl.TLSVersion.TLSv1_3, **creds)[0] == "TLSv1.3"


def test_tls11_refused(broker, cert_client):
    for port, creds in endpoints(broker, cert_client):
        ctx = mqttprobe.tls_context(LAB["ca_file"], minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1,
                                    ciphers="DEFAULT:@SECLEVEL=0", **creds)
        res = probe(broker, port, ctx=ctx)
        assert res.outcome == "tls-error", res
        # The server refused the version; the client did send a TLS 1.1 hello.
        assert "no protocols available" not in res.detail, "client could not offer TLS 1.1: test proves nothing"
        assert "version" in res.detail.lower(), res.detail


def test_only_aead_suites_accepted_on_tls12(broker, cert_client):
    probe_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe_ctx.set_ciphers("ALL:@SECLEVEL=0")
    offered = [c["name"] for c in probe_ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert len(offered) > 20  # the client really tries non-AEAD suites
    for port, creds in endpoints(broker, cert_client):
        accepted = []
        for cipher in offered:
            try:
                handshake(broker, port, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2,
                          ciphers=f"{cipher}:@SECLEVEL=0", **creds)
            except (ssl.SSLError, ConnectionResetError, OSError):
                continue
            accepted.append(cipher)
        assert accepted, "no TLS 1.2 suite accepted at all"
        assert all(any(m in c for m in AEAD_MARKERS) and c.startswith("ECDHE") for c in accepted), accepted


def test_tls13_suites_are_aead(broker, cert_client):
    for port, creds in endpoints(broker, cert_client):
        assert any(m in handshake(broker, port, minimum=ssl.TLSVersion.TLSv1_3, **creds)[1] for m in AEAD_MARKERS)


def test_every_listener_presents_an_ecdsa_p256_certificate(broker, cert_client):
    """The pki role's default key type (ec-p256, which the lab and Molecule keep): what the broker really
    presents in the handshake, not what a file says."""
    for port, creds in endpoints(broker, cert_client):
        ctx = mqttprobe.tls_context(LAB["ca_file"], **creds)
        with (socket.create_connection((broker["address"], port), timeout=5) as raw,
              ctx.wrap_socket(raw, server_hostname=broker["tls_server_name"]) as tls):
            presented = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        key = presented.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey), f"port {port}: {type(key).__name__}"
        assert key.curve.name == "secp256r1", f"port {port}: {key.curve.name}"
        assert isinstance(presented.signature_hash_algorithm, hashes.SHA256), port


def foreign_ca(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rampart CA")])  # same name, other key
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "foreign-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_client_trusting_another_ca_fails(broker, tmp_path, publisher):
    ctx = mqttprobe.tls_context(foreign_ca(tmp_path))
    res = probe(broker, broker["listeners"]["password"], ctx=ctx, username=publisher["username"],
                password=publisher["password"])
    assert res.outcome == "tls-error" and "certificate verify failed" in res.detail, res


def test_server_name_is_verified(broker, publisher):
    good = probe(broker, broker["listeners"]["password"], username=publisher["username"],
                 password=publisher["password"])
    assert good.accepted, good
    bad = probe(broker, broker["listeners"]["password"], server_name="not-the-broker.example",
                username=publisher["username"], password=publisher["password"])
    assert bad.outcome == "tls-error" and "mismatch" in bad.detail.lower(), bad
