"""Builders for the verifier's test inputs: a throw-away PKI, signing keys, tokens, events.

Shared by the unit tests (``tests/unit/conftest.py`` wraps them in fixtures) and
the fuzzer (``tests/fuzz``), so neither imports the other's privates. Everything
is built in memory at a fixed clock (``NOW``); nothing reads the wall clock, a
file outside the caller's temporary folder, or a server. The shapes copy the
real stack: a client root CA and a client intermediate (the issuing CA the
verifier trusts), a separate server CA, the CRL file nginx and the verifier load
(the root's CRL and the issuing CA's), Keycloak-like access tokens, and the API
Gateway REQUEST-authorizer event the nginx adapter builds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import RSAAlgorithm

from verifier.policy import SHIPPED_POLICY_PATH
from verifier.settings import JWKS_PATH, Settings

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
ISSUER = "https://localhost:8443/realms/zerotrust"
CLIENT_ID = "zerotrust-api"
JWKS_URL = ISSUER + JWKS_PATH
KID = "test-key-1"
DAY = dt.timedelta(days=1)
CRL_LIFETIME = 3 * DAY  # OpenBao's crl_expiry is 72 h
ASSERTION_KEY_HEX = "ab" * 32

CertKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# --- PKI ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: CertKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def name(cn: str, *extra_cns: str) -> x509.Name:
    """``O=zerotrust-test`` and one CN per argument."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zerotrust-test")]
    attrs += [x509.NameAttribute(NameOID.COMMON_NAME, c) for c in (cn, *extra_cns)]
    return x509.Name(attrs)


def issue(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    ca: bool = False,
    eku: Iterable[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    issuer_name: x509.Name | None = None,
    aki: bytes | None = None,
    signing_key: CertKey | None = None,
) -> Issued:
    """Issue a certificate; the keyword overrides build the forged variants."""
    start = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    signer = signing_key or (issuer.key if issuer else key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or (issuer.cert.subject if issuer else subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or start - DAY)
        .not_valid_after(not_after or start + 30 * DAY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    issuer_public = (issuer.key if issuer else key).public_key()
    authority = (
        x509.AuthorityKeyIdentifier(aki, None, None)
        if aki is not None
        else x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public)
    )
    builder = builder.add_extension(authority, critical=False)
    eku = list(eku)
    if not ca and eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    """Every certificate the tests present."""

    client_root: Issued
    client_ca: Issued
    server_ca: Issued
    client: Issued
    previous_client: Issued
    """python-client's certificate before its last rotation: same CN and CA, another key."""
    other_client: Issued
    server_auth_only: Issued
    expired: Issued
    not_yet_valid: Issued
    from_server_ca: Issued
    self_signed: Issued
    forged_signature: Issued
    wrong_aki: Issued
    two_cns: Issued
    revoked: Issued
    """A python-client certificate listed on the issuing CA's CRL."""
    retired_ca: Issued
    """An issuing CA the root has revoked (the end of a CA rollover)."""
    from_retired_ca: Issued
    """A python-client certificate issued by ``retired_ca``."""

    @classmethod
    def build(cls) -> Pki:
        start = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
        root = issue(name("zerotrust client root CA"), None, ca=True)
        client_ca = issue(name("zerotrust client issuing CA"), root, ca=True)
        server_ca = issue(name("zerotrust server CA"), None, ca=True)
        intruder = ec.generate_private_key(ec.SECP256R1())
        retired_ca = issue(name("zerotrust client issuing CA (retired)"), root, ca=True)
        return cls(
            client_root=root,
            client_ca=client_ca,
            server_ca=server_ca,
            client=issue(name("python-client"), client_ca),
            previous_client=issue(name("python-client"), client_ca),
            other_client=issue(name("other-client"), client_ca),
            server_auth_only=issue(
                name("python-client"), client_ca, eku=[ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            expired=issue(
                name("python-client"),
                client_ca,
                not_before=start - 60 * DAY,
                not_after=start - DAY,
            ),
            not_yet_valid=issue(
                name("python-client"),
                client_ca,
                not_before=start + DAY,
                not_after=start + 30 * DAY,
            ),
            from_server_ca=issue(name("python-client"), server_ca),
            self_signed=issue(name("python-client"), None),
            forged_signature=issue(name("python-client"), client_ca, signing_key=intruder),
            wrong_aki=issue(name("python-client"), client_ca, aki=b"\x01" * 20),
            two_cns=issue(name("python-client", "other-client"), client_ca),
            revoked=issue(name("python-client"), client_ca),
            retired_ca=retired_ca,
            from_retired_ca=issue(name("python-client"), retired_ca),
        )


def make_crl(
    issuer: Issued,
    revoked: Iterable[int] = (),
    *,
    last_update: float = NOW - 3600,
    next_update: float | None = None,
    issuer_name: x509.Name | None = None,
) -> x509.CertificateRevocationList:
    """A CRL signed by ``issuer`` listing ``revoked`` serials, current at ``NOW`` by default."""
    start = dt.datetime.fromtimestamp(last_update, tz=dt.UTC)
    end = (
        dt.datetime.fromtimestamp(next_update, tz=dt.UTC)
        if next_update is not None
        else start + CRL_LIFETIME
    )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_name or issuer.cert.subject)
        .last_update(start)
        .next_update(end)
    )
    for serial in revoked:
        entry = (
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(start).build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer.key, hashes.SHA256())


def crl_pem(*crls: x509.CertificateRevocationList) -> str:
    """CRLs as one PEM file, the way the ops tooling concatenates them for ``ssl_crl``."""
    return "".join(crl.public_bytes(serialization.Encoding.PEM).decode("ascii") for crl in crls)


def client_crls(pki: Pki, revoked: Iterable[int] = (), **times: float) -> str:
    """A CRL file of the client PKI: the issuing CA's CRL listing ``revoked``, the
    root's listing nothing; ``times`` (``last_update``, ``next_update``) apply to both."""
    return crl_pem(make_crl(pki.client_ca, revoked, **times), make_crl(pki.client_root, **times))


# --- tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An RSA key as Keycloak would publish it in its JWKS."""

    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def jwk(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


def x5t_s256(issued: Issued) -> str:
    """RFC 8705 ``x5t#S256`` of a test certificate, computed here rather than by the
    verifier: base64url(SHA-256(DER)) without padding."""
    digest = hashlib.sha256(issued.cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def cnf_of(issued: Issued) -> dict[str, str]:
    """The ``cnf`` claim Keycloak writes into a token bound to ``issued``'s certificate."""
    return {"x5t#S256": x5t_s256(issued)}


def base_claims(bound_to: Issued | None) -> dict[str, Any]:
    """A Keycloak access token for python-client with viewer + read in org acme, bound
    to ``bound_to``'s certificate (``cnf``), or unbound (no ``cnf``) when it is None."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": [CLIENT_ID, "account"],
        "azp": "python-client",
        "typ": "Bearer",
        "sub": "5f0c9d8e-service-account-python-client",
        "jti": "c0ffee00-0000-4000-8000-000000000001",
        "iat": int(NOW) - 10,
        "exp": int(NOW) + 290,
        "scope": "profile email",
        "realm_access": {"roles": ["viewer", "default-roles-zerotrust"]},
        "resource_access": {
            CLIENT_ID: {"roles": ["read"]},
            "account": {"roles": ["manage-account"]},
        },
        "org": "acme",
        "department": "engineering",
    }
    if bound_to is not None:
        claims["cnf"] = cnf_of(bound_to)
    return claims


# --- settings and events ------------------------------------------------------------


def verifier_settings(client_ca_pem: str, client_crl: str) -> Settings:
    """The settings of these tests: this realm and API, the shipped policy, ``client_ca_pem``."""
    return Settings(
        client_ca_pem=client_ca_pem,
        client_crl=client_crl,
        issuer=ISSUER,
        audience=CLIENT_ID,
        jwks_url=JWKS_URL,
        policy_path=str(SHIPPED_POLICY_PATH),
    )


def required_config(ca_file: Path | str, crl_file: Path | str) -> dict[str, str]:
    """The settings with no default (un-prefixed names, as ``Settings.from_config``
    and ``create_app(test_config)`` take them), set for these tests."""
    return {
        "ISSUER": ISSUER,
        "AUDIENCE": CLIENT_ID,
        "POLICY_PATH": str(SHIPPED_POLICY_PATH),
        "CLIENT_CA_CERT": str(ca_file),
        "CLIENT_CRL": str(crl_file),
    }


def authorizer_event(
    cert_pem: str,
    *,
    token: str | None = None,
    authorization: str | list[str] | None = None,
    verify: str | list[str] | None = "SUCCESS",
    method: str = "GET",
    path: str = "/api/resource",
    request_id: str = "req-0001",
) -> dict[str, Any]:
    """An API Gateway REQUEST-authorizer event as the nginx adapter builds it.

    ``token`` sends ``Authorization: Bearer <token>``; ``authorization`` sends
    exactly the value(s) given instead. ``verify`` is nginx's verify result (a
    list sends the header that many times). None or an empty list sends no header.
    """
    headers: dict[str, list[str]] = {}
    verify_values = [verify] if isinstance(verify, str) else verify
    if verify_values:
        headers["X-Client-Verify"] = verify_values
    if authorization is None and token is not None:
        authorization = f"Bearer {token}"
    authorization_values = [authorization] if isinstance(authorization, str) else authorization
    if authorization_values:
        headers["Authorization"] = authorization_values
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:api/prod/GET/x",
        "httpMethod": method,
        "path": path,
        "headers": {header: values[-1] for header, values in headers.items()},
        "multiValueHeaders": headers,
        "requestContext": {
            "requestId": request_id,
            "httpMethod": method,
            "path": path,
            "identity": {
                "sourceIp": "127.0.0.1",
                "clientCert": {
                    "clientCertPem": cert_pem,
                    "subjectDN": "CN=python-client,O=zerotrust-test",
                    "issuerDN": "CN=zerotrust client issuing CA,O=zerotrust-test",
                    "serialNumber": "01",
                    "validity": {"notBefore": "", "notAfter": ""},
                },
            },
        },
    }
