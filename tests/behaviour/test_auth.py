"""Who may connect: password clients over TLS, certificate clients, and everyone else refused."""

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

from rampart import mqttprobe
from tests.support.mqtt import concrete, port_for

from .conftest import LAB, probe

NOT_AUTHORISED_V3 = 5
NOT_AUTHORISED_V5 = 0x87


def test_password_client_publishes_and_subscriber_receives(broker, connect, publisher, admin):
    listener = connect(admin)
    topic = concrete(publisher["publish"][0])
    assert listener.subscribe(topic) is not None
    sender = connect(publisher)
    assert sender.publish(topic, b"21.5", qos=1) == 0
    assert (topic, b"21.5") in listener.received(3)


def test_password_client_v311_roundtrip(broker, connect, publisher, admin):
    listener = connect(admin, protocol=mqttprobe.MQTT311)
    topic = concrete(publisher["publish"][0])
    listener.subscribe(topic)
    connect(publisher, protocol=mqttprobe.MQTT311).publish(topic, b"v311")
    assert (topic, b"v311") in listener.received(3)


def test_certificate_client_connects_with_its_certificate(broker, connect, cert_client, admin):
    listener = connect(admin)
    topic = concrete(cert_client["publish"][0])
    listener.subscribe(topic)
    device = connect(cert_client)
    assert device.publish(topic, b"from-cert", qos=1) == 0
    assert (topic, b"from-cert") in listener.received(3)


def test_certificate_client_connects_with_the_credentials_unpacked_from_its_pkcs12_bundle(broker, connect, cert_client,
                                                                                         admin, tmp_path):
    """A device that takes one file gets its PKCS#12 bundle (pki_pkcs12_passphrase): the wrong passphrase opens
    nothing; the right one gives the client's own certificate, a key and the chain, and a device holding only what
    it unpacked connects to the certificate listener and publishes."""
    bundle = Path(cert_client["p12file"]).read_bytes()
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle, b"not-the-passphrase")
    key, cert, chain = pkcs12.load_key_and_certificates(bundle, cert_client["p12_passphrase"].encode())
    issued = x509.load_pem_x509_certificates(Path(cert_client["certfile"]).read_bytes())[0]
    assert cert == issued and chain, "the bundle does not hold the client's certificate and its chain"
    keyfile, certfile = tmp_path / "key.pem", tmp_path / "chain.pem"
    keyfile.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    keyfile.chmod(0o600)
    certfile.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in [cert, *chain]))
    listener = connect(admin)
    topic = concrete(cert_client["publish"][0])
    listener.subscribe(topic)
    device = connect({**cert_client, "certfile": str(certfile), "keyfile": str(keyfile)})
    assert device.publish(topic, b"from-the-bundle", qos=1) == 0
    assert (topic, b"from-the-bundle") in listener.received(3)


def test_certificate_listener_refuses_a_client_without_certificate(broker, cert_client):
    res = probe(broker, port_for(broker, cert_client), username=cert_client["username"])
    assert not res.accepted
    assert res.outcome in ("tls-error", "closed"), res


def test_certificate_client_sending_the_admins_username_is_accepted(broker, cert_client, admin):
    """A certificate client that sends the admin's username and a wrong password still connects (the listener
    takes the username from the certificate's CN). That it then has only its own rights is not checked here."""
    res = probe(broker, port_for(broker, cert_client), username=admin["username"], password="x",
                certfile=cert_client["certfile"], keyfile=cert_client["keyfile"])
    assert res.accepted


def test_anonymous_refused(broker):
    port = broker["listeners"]["password"]
    assert probe(broker, port).code == NOT_AUTHORISED_V3
    assert probe(broker, port, protocol=mqttprobe.MQTT5).code == NOT_AUTHORISED_V5


def test_wrong_password_refused(broker, publisher):
    port = broker["listeners"]["password"]
    res = probe(broker, port, username=publisher["username"], password=publisher["password"] + "-wrong")
    assert (res.outcome, res.code) == ("connack", NOT_AUTHORISED_V3)
    res = probe(broker, port, username=publisher["username"], password="wrong", protocol=mqttprobe.MQTT5)
    assert (res.outcome, res.code) == ("connack", NOT_AUTHORISED_V5)


def test_unknown_user_refused(broker):
    port = broker["listeners"]["password"]
    assert probe(broker, port, username="nobody-here", password="x").code == NOT_AUTHORISED_V3
    assert probe(broker, port, username="nobody-here", password="x", protocol=mqttprobe.MQTT5).code == NOT_AUTHORISED_V5


def test_username_without_password_refused(broker, publisher):
    assert probe(broker, broker["listeners"]["password"], username=publisher["username"]).code == NOT_AUTHORISED_V3


def test_client_id_cannot_be_used_to_kick_another_client(broker, connect, publisher, reader):
    """Client ids are replaced by usernames: a client claiming another's id does not disconnect it."""
    victim = connect(publisher)
    ctx = mqttprobe.tls_context(LAB["ca_file"])
    intruder = mqttprobe.session(broker["address"], broker["listeners"]["password"], ctx, broker["tls_server_name"],
                                 username=reader["username"], password=reader["password"],
                                 client_id=publisher["username"])
    try:
        assert not victim.disconnected.wait(2), "the victim was kicked off by a client reusing its client id"
    finally:
        intruder.close()


def test_keepalive_above_the_maximum_refused(broker, publisher):
    """max_keepalive applies to MQTT 3.1.1 clients too (2.0.12+): CONNACK 2, identifier rejected."""
    limit = int(broker["max_keepalive"])
    port = broker["listeners"]["password"]
    args = {"username": publisher["username"], "password": publisher["password"]}
    ok = mqttprobe.raw_connect(broker["address"], port, mqttprobe.tls_context(LAB["ca_file"]),
                               broker["tls_server_name"], keepalive=limit, **args)
    assert ok.accepted, ok
    too_long = mqttprobe.raw_connect(broker["address"], port, mqttprobe.tls_context(LAB["ca_file"]),
                                     broker["tls_server_name"], keepalive=limit + 1, **args)
    assert (too_long.outcome, too_long.code) == ("connack", 2), too_long


def test_empty_client_id_accepted(broker, publisher):
    """mosquitto_pub/sub send an empty client id; the broker names the client after its username."""
    ctx = mqttprobe.tls_context(LAB["ca_file"])
    res = mqttprobe.raw_connect(broker["address"], broker["listeners"]["password"], ctx, broker["tls_server_name"],
                                username=publisher["username"], password=publisher["password"], client_id="")
    assert res.accepted, res


def test_correct_password_accepted_by_raw_probe(broker, publisher):
    """Positive control for the refusals above: the same probe with the right password gets CONNACK 0."""
    res = probe(broker, broker["listeners"]["password"], username=publisher["username"],
                password=publisher["password"])
    assert (res.outcome, res.code) == ("connack", 0)
