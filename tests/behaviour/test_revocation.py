"""Revoked certificates fail the TLS handshake on the certificate listener."""

import pytest

from tests.support.mqtt import port_for

from .conftest import LAB, probe

REVOKED = [c for c in LAB["clients"] if c["expect"] == "revoked"]


def test_the_deployment_shows_a_revoked_client():
    assert REVOKED, "the lab inventory must define a revoked certificate client"


@pytest.mark.parametrize("client", REVOKED, ids=[c["name"] for c in REVOKED])
def test_revoked_client_refused_at_handshake(broker, client):
    res = probe(broker, port_for(broker, client), certfile=client["certfile"], keyfile=client["keyfile"])
    assert res.outcome in ("tls-error", "closed"), res


def test_allowed_certificate_client_passes_the_crl_check(broker, cert_client):
    """Positive control: the CRL is loaded and does not refuse everyone (an expired CRL would)."""
    res = probe(broker, port_for(broker, cert_client), certfile=cert_client["certfile"],
                keyfile=cert_client["keyfile"])
    assert res.accepted, res
