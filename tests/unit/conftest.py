"""Fixtures for the verifier's unit tests: a throw-away PKI, a signing key, tokens, events.

Everything is generated once per session, in memory, at a fixed clock (``now``),
so no test depends on the wall clock, on files outside ``tmp_path`` or on a
server. The shapes copy the real stack: a client root CA and a client
intermediate (the issuing CA the verifier trusts), a separate server CA, the
CRL file nginx and the verifier load (the root's CRL and the issuing CA's), and
Keycloak-like access tokens.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import RSAAlgorithm
from jwt.utils import base64url_encode

from verifier.handler import decide
from verifier.jwks import KeySource, StaticKeySource
from verifier.policy import SHIPPED_POLICY_PATH, Policy, load_policy
from verifier.response import AuthorizerResponse
from verifier.revocation import RevocationSource, StaticCRLSource
from verifier.settings import ENV_PREFIX, JWKS_PATH, Settings

# No example database: unit runs leave nothing behind in the work tree.
hypothesis.settings.register_profile("unit", database=None, deadline=None)
hypothesis.settings.load_profile("unit")

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
ISSUER = "https://localhost:8443/realms/zerotrust"
CLIENT_ID = "zerotrust-api"
JWKS_URL = ISSUER + JWKS_PATH
KID = "test-key-1"
DAY = dt.timedelta(days=1)

CertKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: CertKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(cn: str, *extra_cns: str) -> x509.Name:
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


@pytest.fixture(scope="session")
def pki() -> Pki:
    start = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    root = issue(_name("zerotrust client root CA"), None, ca=True)
    client_ca = issue(_name("zerotrust client issuing CA"), root, ca=True)
    server_ca = issue(_name("zerotrust server CA"), None, ca=True)
    intruder = ec.generate_private_key(ec.SECP256R1())
    retired_ca = issue(_name("zerotrust client issuing CA (retired)"), root, ca=True)
    return Pki(
        client_root=root,
        client_ca=client_ca,
        server_ca=server_ca,
        client=issue(_name("python-client"), client_ca),
        other_client=issue(_name("other-client"), client_ca),
        server_auth_only=issue(
            _name("python-client"), client_ca, eku=[ExtendedKeyUsageOID.SERVER_AUTH]
        ),
        expired=issue(
            _name("python-client"),
            client_ca,
            not_before=start - 60 * DAY,
            not_after=start - DAY,
        ),
        not_yet_valid=issue(
            _name("python-client"),
            client_ca,
            not_before=start + DAY,
            not_after=start + 30 * DAY,
        ),
        from_server_ca=issue(_name("python-client"), server_ca),
        self_signed=issue(_name("python-client"), None),
        forged_signature=issue(_name("python-client"), client_ca, signing_key=intruder),
        wrong_aki=issue(_name("python-client"), client_ca, aki=b"\x01" * 20),
        two_cns=issue(_name("python-client", "other-client"), client_ca),
        revoked=issue(_name("python-client"), client_ca),
        retired_ca=retired_ca,
        from_retired_ca=issue(_name("python-client"), retired_ca),
    )


CRL_LIFETIME = 3 * DAY  # OpenBao's crl_expiry is 72 h


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


@pytest.fixture(scope="session")
def client_crl_pem(pki: Pki) -> str:
    """The CRL file as the stack writes it: the issuing CA's CRL, then the root's.

    The issuing CA revoked ``pki.revoked``; the root revoked ``pki.retired_ca``
    (whose own CRL is no longer published). Every other certificate is in good
    standing until ``NOW + CRL_LIFETIME``.
    """
    return crl_pem(
        make_crl(pki.client_ca, [pki.revoked.cert.serial_number]),
        make_crl(pki.client_root, [pki.retired_ca.cert.serial_number]),
    )


@pytest.fixture(scope="session")
def crl_file(tmp_path_factory: pytest.TempPathFactory, client_crl_pem: str) -> Path:
    """``client_crl_pem`` on disk, for settings and the file-reading source."""
    path = tmp_path_factory.mktemp("crl") / "client-ca.crl.pem"
    path.write_text(client_crl_pem)
    return path


ASSERTION_KEY_HEX = "ab" * 32


@pytest.fixture
def production_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pki: Any, crl_file: Path
) -> Path:
    """The ``ZT_VERIFIER_*`` variables a production worker needs: the realm's issuer
    and the API's client id of these tests, the shipped policy, and test files
    (client CA, CRL, audit log, assertion key); returns the folder holding them.

    Every other ``ZT_VERIFIER_*`` variable is removed first, so a variable set in
    the shell that runs the tests can neither break nor change them."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    ca = tmp_path / "client-ca.pem"
    ca.write_text(pki.client_ca.pem)
    key = tmp_path / "assertion.key"
    key.write_text(ASSERTION_KEY_HEX)
    monkeypatch.setenv("ZT_VERIFIER_ISSUER", ISSUER)
    monkeypatch.setenv("ZT_VERIFIER_AUDIENCE", CLIENT_ID)
    monkeypatch.setenv("ZT_VERIFIER_POLICY_PATH", str(SHIPPED_POLICY_PATH))
    monkeypatch.setenv("ZT_VERIFIER_CLIENT_CA_CERT", str(ca))
    monkeypatch.setenv("ZT_VERIFIER_CLIENT_CRL", str(crl_file))
    monkeypatch.setenv("ZT_VERIFIER_AUDIT_LOG", str(tmp_path / "audit.log"))
    monkeypatch.setenv("ZT_VERIFIER_ASSERTION_KEY_FILE", str(key))
    return tmp_path


@pytest.fixture(scope="session")
def revocation(client_crl_pem: str) -> StaticCRLSource:
    return StaticCRLSource.from_pem(client_crl_pem)


@dataclass(frozen=True)
class SigningKey:
    """An RSA key as Keycloak would publish it in its JWKS."""

    kid: str
    private: rsa.RSAPrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey(KID, rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def other_signing_key() -> SigningKey:
    return SigningKey(
        "rotated-key-2", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )


@pytest.fixture
def now() -> float:
    return NOW


def base_claims() -> dict[str, Any]:
    """A Keycloak access token for python-client with viewer + read in org acme."""
    return {
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


MakeToken = Callable[..., str]


@pytest.fixture(scope="session")
def make_token(signing_key: SigningKey) -> MakeToken:
    """Sign a token; keyword arguments override claims, ``drop`` removes some."""

    def make(
        *,
        drop: Iterable[str] = (),
        headers: dict[str, Any] | None = None,
        key: Any = None,
        algorithm: str = "RS256",
        kid: str | None = signing_key.kid,
        **overrides: Any,
    ) -> str:
        claims = {**base_claims(), **overrides}
        for name in drop:
            claims.pop(name, None)
        header = {"kid": kid} if kid is not None else {}
        return jwt.encode(
            claims,
            key if key is not None else signing_key.private,
            algorithm=algorithm,
            headers={**header, **(headers or {})},
        )

    return make


@pytest.fixture(scope="session")
def craft_token(signing_key: SigningKey) -> MakeToken:
    """Sign an arbitrary JOSE header by hand (PyJWT's encoder normalises some away)."""

    def craft(header: dict[str, Any], claims: dict[str, Any] | None = None) -> str:
        segments = [
            base64url_encode(json.dumps(part).encode())
            for part in (header, claims if claims is not None else base_claims())
        ]
        signing_input = b".".join(segments)
        signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input, signing_key.private)
        return b".".join([signing_input, base64url_encode(signature)]).decode()

    return craft


MakeEvent = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def make_event(pki: Pki) -> MakeEvent:
    """An API Gateway REQUEST-authorizer event as the nginx adapter builds it."""

    def make(
        *,
        token: str | None = None,
        authorization: str | list[str] | None = None,
        cert_pem: str | None = None,
        verify: str | None = "SUCCESS",
        method: str = "GET",
        path: str = "/api/resource",
        request_id: str = "req-0001",
    ) -> dict[str, Any]:
        headers: dict[str, list[str]] = {}
        if verify is not None:
            headers["X-Client-Verify"] = [verify]
        if authorization is None and token is not None:
            authorization = f"Bearer {token}"
        if isinstance(authorization, str):
            headers["Authorization"] = [authorization]
        elif isinstance(authorization, list):
            headers["Authorization"] = authorization
        pem = pki.client.pem if cert_pem is None else cert_pem
        return {
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:api/prod/GET/x",
            "httpMethod": method,
            "path": path,
            "headers": {name: values[-1] for name, values in headers.items()},
            "multiValueHeaders": headers,
            "requestContext": {
                "requestId": request_id,
                "httpMethod": method,
                "path": path,
                "identity": {
                    "sourceIp": "127.0.0.1",
                    "clientCert": {
                        "clientCertPem": pem,
                        "subjectDN": "CN=python-client,O=zerotrust-test",
                        "issuerDN": "CN=zerotrust client issuing CA,O=zerotrust-test",
                        "serialNumber": "01",
                        "validity": {"notBefore": "", "notAfter": ""},
                    },
                },
            },
        }

    return make


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


@pytest.fixture(scope="session")
def settings(pki: Pki, crl_file: Path) -> Settings:
    return Settings(
        client_ca_pem=pki.client_ca.pem,
        client_crl=str(crl_file),
        issuer=ISSUER,
        audience=CLIENT_ID,
        jwks_url=JWKS_URL,
        policy_path=str(SHIPPED_POLICY_PATH),
    )


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(SHIPPED_POLICY_PATH)


@pytest.fixture(scope="session")
def keys(signing_key: SigningKey) -> StaticKeySource:
    return StaticKeySource.from_jwks({"keys": [signing_key.jwk]})


Decide = Callable[..., AuthorizerResponse]


@pytest.fixture
def run(
    keys: StaticKeySource, policy: Policy, settings: Settings, revocation: StaticCRLSource
) -> Decide:
    """``decide`` with the session's keys, policy, settings and CRLs at ``NOW``."""

    def run_decide(
        event: dict[str, Any],
        *,
        keys_: KeySource = keys,
        settings_: Settings = settings,
        revocation_: RevocationSource = revocation,
        now: float = NOW,
    ) -> AuthorizerResponse:
        return decide(
            event,
            keys=keys_,
            policy=policy,
            settings=settings_,
            revocation=revocation_,
            now=now,
        )

    return run_decide
