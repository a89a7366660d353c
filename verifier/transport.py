"""Check 1, transport: the client certificate nginx verified is a client-CA workload cert.

nginx already required the certificate and verified its chain against the
CLIENT CA; these checks are defence in depth against a mis-edited nginx config
(e.g. ``ssl_verify_client optional``, the wrong CA file) and they make the
verifier safe to run anywhere the event comes from (API Gateway, tests, fuzzer):

1. nginx's verify result (``X-Client-Verify``) is exactly ``SUCCESS``;
2. the PEM parses (``cryptography``), never a header string;
3. it carries the clientAuth extended key usage;
4. ``now`` is inside its validity window (no leeway: the CA sets the window);
5. it was issued directly by a configured client issuing CA: issuer name equals
   the CA's subject, its AuthorityKeyIdentifier equals the CA's
   SubjectKeyIdentifier, and the signature verifies with the CA's key. This is
   what refuses a certificate from the SERVER CA even when it carries clientAuth.

``check_client_cert`` returns that issuing CA: the step after it,
``verifier.revocation.check_not_revoked``, looks up the certificate on its
issuer's CRL and the issuing CA on the root's.

Parsing is on every request, so the caller passes two caches (``decide`` hands
over those of its ``verifier.caches.DecisionCaches``; None = no cache): parsed
certificates by their exact PEM text (a dict lookup; no digest to compute per
request, no collision to reason about: a hit is the same input), and the issuer
verdict by (cert fingerprint, CA object).

``serial_hex`` is the verifier's one spelling of a serial (identity, audit,
revocation details): nginx's ``$ssl_client_serial``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from verifier.errors import (
    ClientCertExpired,
    ClientCertIssuerUntrusted,
    ClientCertMalformed,
    ClientCertMissing,
    ClientCertNotClientAuth,
    ClientCertNotVerified,
    ClientCertNotYetValid,
)
from verifier.event import AuthorizerEvent
from verifier.lru import BoundedLRU

VERIFY_HEADER = "X-Client-Verify"
MAX_PEM_BYTES = 16 * 1024


@dataclass(frozen=True)
class PresentedCert:
    """A parsed client certificate and the facts the later checks need from it."""

    certificate: x509.Certificate
    fingerprint: bytes
    """SHA-256 of the DER: the issuer-verdict cache key, and what an RFC 8705
    ``cnf.x5t#S256`` must decode to (``verifier.binding``)."""
    common_names: tuple[str, ...]
    serial: str
    """``serial_hex`` of the serial, as nginx writes it (identity, audit)."""
    serial_number: int
    """The same serial as an int, as CRLs list it (``verifier.revocation``)."""
    subject_dn: str
    issuer_dn: str
    not_before: float
    not_after: float
    client_auth: bool


CertCache = BoundedLRU[str, PresentedCert]
"""Parsed certificates by their exact PEM text."""
IssuerCache = BoundedLRU[tuple[bytes, int], tuple[x509.Certificate, bool]]
"""Issuer verdicts by (cert fingerprint, ``id`` of the CA object); the entry keeps
the CA object, so the id cannot be reused while cached and a hit is trusted only
for that same object. Why not the CA itself as the key: hashing a certificate
serializes it (DER) each time, a few microseconds per request."""


def serial_hex(serial: int) -> str:
    """Upper-case hex with an even number of digits, as nginx's ``$ssl_client_serial``."""
    digits = f"{serial:X}"
    return digits if len(digits) % 2 == 0 else "0" + digits


def parse_client_cert(
    event: AuthorizerEvent, *, cache: CertCache | None, require_verify_header: bool = True
) -> PresentedCert:
    """Steps 1-2: nginx verified a certificate and its PEM parses.

    ``require_verify_header=False`` accepts an ABSENT verify header (API Gateway
    events have none); a present one must still be exactly ``SUCCESS``.
    """
    verify = event.get_header_values(VERIFY_HEADER)
    if verify != ["SUCCESS"] and (require_verify_header or verify):
        raise ClientCertNotVerified(f"{VERIFY_HEADER}={verify!r}")
    pem = event.client_cert.client_cert_pem
    if not pem:
        raise ClientCertMissing("no clientCertPem in the event")
    presented = cache.get(pem) if cache is not None else None
    if presented is None:
        presented = _describe(_checked_pem_bytes(pem))
        if cache is not None:
            cache.put(pem, presented)
    return presented


def _checked_pem_bytes(pem: str) -> bytes:
    try:
        pem_bytes = pem.encode("ascii")
    except UnicodeEncodeError as e:
        raise ClientCertMalformed("PEM is not ASCII") from e
    if len(pem_bytes) > MAX_PEM_BYTES:
        raise ClientCertMalformed(f"PEM larger than {MAX_PEM_BYTES} bytes")
    return pem_bytes


def check_client_cert(
    presented: PresentedCert,
    client_cas: tuple[x509.Certificate, ...],
    now: float,
    *,
    cache: IssuerCache | None,
) -> x509.Certificate:
    """Steps 3-5: a clientAuth certificate, valid now, issued by a client CA.

    Returns the configured issuing CA that signed it.
    """
    if not presented.client_auth:
        raise ClientCertNotClientAuth("no clientAuth in extendedKeyUsage")
    if now < presented.not_before:
        raise ClientCertNotYetValid(f"notBefore {presented.not_before:.0f} > now")
    if now > presented.not_after:
        raise ClientCertExpired(f"notAfter {presented.not_after:.0f} < now")
    for ca in client_cas:
        if _issued_by(presented, ca, cache):
            return ca
    raise ClientCertIssuerUntrusted(f"issuer {presented.issuer_dn!r}")


def _describe(pem: bytes) -> PresentedCert:
    try:
        cert = x509.load_pem_x509_certificate(pem)
        extensions = cert.extensions  # parsed lazily; duplicates raise here
        subject = cert.subject
        common_names = tuple(
            str(attr.value) for attr in subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
        return PresentedCert(
            certificate=cert,
            fingerprint=cert.fingerprint(hashes.SHA256()),
            common_names=common_names,
            serial=serial_hex(cert.serial_number),
            serial_number=cert.serial_number,
            subject_dn=subject.rfc4514_string(),
            issuer_dn=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc.timestamp(),
            not_after=cert.not_valid_after_utc.timestamp(),
            client_auth=_has_client_auth(extensions),
        )
    except ValueError as e:
        raise ClientCertMalformed(str(e)) from e


def _has_client_auth(extensions: x509.Extensions) -> bool:
    try:
        eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in eku


def _issued_by(presented: PresentedCert, ca: x509.Certificate, cache: IssuerCache | None) -> bool:
    if cache is None:
        return _verify_issuer(presented.certificate, ca)
    key = (presented.fingerprint, id(ca))
    hit = cache.get(key)
    if hit is not None and hit[0] is ca:
        return hit[1]
    verdict = _verify_issuer(presented.certificate, ca)
    cache.put(key, (ca, verdict))
    return verdict


def _verify_issuer(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Name, key identifier and signature all point at ``ca``."""
    if cert.issuer != ca.subject:
        return False
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return False
    if aki.value.key_identifier is None or aki.value.key_identifier != ski.value.digest:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
