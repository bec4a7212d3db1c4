"""A loaded certificate authority: what it issued, and signing certificates and CRLs with its key.

Every CA of the hierarchy (root, current and retired intermediates) is one of these; the files
they come from are :mod:`.hierarchy`'s business.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ansible_collections.rampart.mqtt.plugins.module_utils.pki import common
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def hash_for(key: common.PrivateKey) -> hashes.HashAlgorithm:
    return hashes.SHA384() if common.key_type_of(key) == "ec-p384" else hashes.SHA256()


def ski(cert: x509.Certificate) -> bytes | None:
    """The certificate's subject key identifier, None when it has none."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def aki(cert: x509.Certificate) -> bytes | None:
    """The key identifier of the certificate's issuer, None when it names none."""
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def key_usage(*, ca: bool, key_encipherment: bool = False) -> x509.KeyUsage:
    """A CA signs certificates and CRLs only; a leaf signs (and, with an RSA key, enciphers keys)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def ca_extensions(path_length: int) -> list[tuple[x509.ExtensionType, bool]]:
    """The profile of a CA certificate: CA with ``path_length``, signs certificates and CRLs only."""
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (key_usage(ca=True), True),
    ]


# The signature algorithms this package signs with, by issuer key type: for these, a certificate's
# signature is checked with the issuer's public key parsed once per CA instead of once per certificate.
_ECDSA = {
    x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512,
}
_RSA_PKCS1 = {
    x509.SignatureAlgorithmOID.RSA_WITH_SHA256,
    x509.SignatureAlgorithmOID.RSA_WITH_SHA384,
    x509.SignatureAlgorithmOID.RSA_WITH_SHA512,
}


def signature_valid(cert: x509.Certificate, issuer: x509.Certificate, issuer_key: common.PublicKey) -> None:
    """Raise InvalidSignature (or ValueError, TypeError, UnsupportedAlgorithm) unless ``issuer_key`` signed ``cert``.

    ``issuer_key`` is ``issuer.public_key()``. The same check as ``cert.verify_directly_issued_by(issuer)``
    minus the name comparison (:meth:`CertificateAuthority.issued` does that), without re-parsing the issuer's
    key for every certificate; an algorithm other than ECDSA or RSA PKCS#1 v1.5 with SHA-2 goes to
    ``verify_directly_issued_by`` itself.
    """
    oid = cert.signature_algorithm_oid
    if isinstance(issuer_key, ec.EllipticCurvePublicKey) and oid in _ECDSA:
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    elif isinstance(issuer_key, rsa.RSAPublicKey) and oid in _RSA_PKCS1:
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    else:
        cert.verify_directly_issued_by(issuer)


@dataclass(frozen=True)
class CertificateAuthority:
    """A loaded CA. Load it once per call; it is immutable afterwards.

    ``chain`` is this CA's own certificate followed by any further intermediates up to (but not
    including) the root; it is empty for the root itself. ``root`` is the trust anchor. ``key`` is
    None for a CA whose key is not on disk (the root kept offline): it can then verify, not sign.
    """

    cert: x509.Certificate
    key: common.PrivateKey | None = field(repr=False)
    root: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def key_type(self) -> str | None:
        return common.key_type_of(self.cert.public_key())

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    def bundle(self) -> list[x509.Certificate]:
        """What verifies certificates this CA issued: the issuing chain, then the root."""
        return [*self.chain, self.root]

    def leaf_chain(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        """A leaf followed by its issuer chain minus the root (what a TLS peer presents)."""
        return [leaf, *self.chain]

    @functools.cached_property
    def _public_key(self) -> common.PublicKey:
        """This CA's public key, parsed once (every check of a leaf's signature needs it)."""
        return self.cert.public_key()

    @functools.cached_property
    def _ski(self) -> bytes | None:
        return ski(self.cert)

    def issued(self, cert: x509.Certificate) -> bool:
        """True when ``cert`` was signed by this CA (name, AKI and signature all match)."""
        if cert.issuer != self.cert.subject:
            return False
        key_id = aki(cert)
        if key_id is not None and key_id != self._ski:
            return False
        try:
            signature_valid(cert, self.cert, self._public_key)
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            return False
        return True

    def _signing_key(self) -> common.PrivateKey:
        if self.key is None:  # callers check first and raise a PkiError naming the operation
            raise common.PkiError(f"the key of {self.cert.subject.rfc4514_string()} is not available")
        return self.key

    def sign(
        self,
        *,
        subject: x509.Name,
        public_key: common.PublicKey,
        extensions: Sequence[tuple[x509.ExtensionType, bool]],
        not_before: dt.datetime,
        not_after: dt.datetime,
    ) -> x509.Certificate:
        """Sign a certificate (leaf or intermediate) with this CA's key.

        Adds the serial, issuer, SKI and AKI; the caller supplies the profile extensions.
        ``not_after`` is capped at this CA's own expiry: a certificate never outlives its issuer.
        """
        key = self._signing_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(min(not_after, self.not_after))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.cert.public_key()), critical=False)
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(key, hash_for(key))

    def owns_crl(self, crl: x509.CertificateRevocationList) -> bool:
        """True when ``crl`` was issued and signed by this CA."""
        return crl.issuer == self.cert.subject and crl.is_signature_valid(self.cert.public_key())

    def sign_crl(
        self, revoked: Iterable[tuple[int, dt.datetime]], now: dt.datetime, valid_days: int, number: int
    ) -> x509.CertificateRevocationList:
        """A CRL listing ``revoked`` (serial, revocation date), valid from now (back-dated) for ``valid_days``."""
        key = self._signing_key()
        key_id = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - common.CLOCK_SKEW)
            .next_update(now + dt.timedelta(days=valid_days))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_id), critical=False)
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for serial, when in sorted(revoked):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(key, hash_for(key))
