"""Throw-away X.509 material for tests: one certificate builder instead of a copy per file.

Each certificate gets a fresh P-256 key unless one is passed, lives from a minute ago
to an hour from now unless told otherwise, and carries only the extensions asked for.
The verifier's own test PKI (``tests/unit/conftest.py``: forged AKIs, wrong issuers)
builds on the same calls but keeps its richer ``issue``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scripts.files import write_secret

PrivateKey = CertificateIssuerPrivateKeyTypes


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def build_cert(
    subject: str | x509.Name,
    key: PrivateKey,
    *,
    issuer: x509.Name | None = None,
    signing_key: PrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    ca: bool | None = None,
    path_length: int | None = None,
    client_auth: bool = False,
    subject_key_id: bool = False,
    authority_key: PrivateKey | None = None,
    san_ips: Sequence[str] = (),
) -> x509.Certificate:
    """A certificate for ``key``'s public key, self-signed unless ``signing_key`` is given.

    ``ca``: add BasicConstraints (critical) with that value (None: no extension);
    ``client_auth``: add the clientAuth extended key usage; ``subject_key_id``: add the
    SKI of ``key``; ``authority_key``: add the AKI of that issuer key.
    """
    now = dt.datetime.now(dt.UTC)
    subject_name = name(subject) if isinstance(subject, str) else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer or subject_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=1))
        .not_valid_after(not_after or now + dt.timedelta(hours=1))
    )
    if ca is not None:
        constraints = x509.BasicConstraints(ca=ca, path_length=path_length)
        builder = builder.add_extension(constraints, critical=True)
    if client_auth:
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = builder.add_extension(usage, critical=False)
    if subject_key_id:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = builder.add_extension(ski, critical=False)
    if authority_key is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if san_ips:
        sans = x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(ip)) for ip in san_ips]
        )
        builder = builder.add_extension(sans, critical=False)
    return builder.sign(signing_key or key, hashes.SHA256())


def csr_pem(common_name: str, key: PrivateKey) -> str:
    """A PEM certificate signing request for ``key`` with only a CN."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(name(common_name))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def extended_key_usage(pem: str) -> list[x509.ObjectIdentifier]:
    """The EKU purposes of the first certificate in ``pem``."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_pair(folder: Path, chain_pem: str, key: PrivateKey | str | bytes) -> tuple[str, str]:
    """``cert.pem`` (the chain as given) and ``key.pem`` (0600) in ``folder``: a client's pair."""
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_text(chain_pem)
    write_secret(key_file, key if isinstance(key, str | bytes) else key_pem(key))
    return str(cert_file), str(key_file)
