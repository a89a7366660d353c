"""Fixtures for the verifier's unit tests: a throw-away PKI, a signing key, tokens, events.

The builders live in ``tests/verifier_fixtures.py`` (shared with the fuzzer);
this file makes session fixtures of them. Everything is generated once per
session, in memory, at a fixed clock (``NOW``), so no test depends on the wall
clock, on files outside ``tmp_path`` or on a server. State that a decision
changes (the caches) is fresh for every test: ``caches``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import hypothesis
import jwt
import pytest
from jwt.algorithms import RSAAlgorithm
from jwt.utils import base64url_encode

from tests.verifier_fixtures import (
    ASSERTION_KEY_HEX,
    CLIENT_ID,
    ISSUER,
    KID,
    NOW,
    Pki,
    SigningKey,
    authorizer_event,
    base_claims,
    crl_pem,
    make_crl,
    verifier_settings,
)
from verifier.caches import DecisionCaches
from verifier.decision import decide
from verifier.event import AuthorizerEvent
from verifier.jwks import KeySource, StaticKeySource
from verifier.policy import SHIPPED_POLICY_PATH, Policy, load_policy
from verifier.response import AuthorizerResponse
from verifier.revocation import RevocationSource, StaticCRLSource
from verifier.settings import ENV_PREFIX, Settings
from verifier.transport import PresentedCert, parse_client_cert

# No example database: unit runs leave nothing behind in the work tree.
hypothesis.settings.register_profile("unit", database=None, deadline=None)
hypothesis.settings.load_profile("unit")


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki.build()


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
    (tmp_path / "lockout").mkdir()
    monkeypatch.setenv("ZT_VERIFIER_LOCKOUT_DIR", str(tmp_path / "lockout"))
    return tmp_path


@pytest.fixture(scope="session")
def revocation(client_crl_pem: str) -> StaticCRLSource:
    return StaticCRLSource.from_pem(client_crl_pem)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate(KID)


@pytest.fixture(scope="session")
def other_signing_key() -> SigningKey:
    return SigningKey.generate("rotated-key-2")


@pytest.fixture
def now() -> float:
    return NOW


MakeToken = Callable[..., str]


@pytest.fixture(scope="session")
def make_token(signing_key: SigningKey, pki: Pki) -> MakeToken:
    """Sign a token bound to python-client's certificate (``cnf``, RFC 8705); keyword
    arguments override claims, ``drop`` removes some (``drop=["cnf"]``: unbound)."""

    def make(
        *,
        drop: Iterable[str] = (),
        headers: dict[str, Any] | None = None,
        key: Any = None,
        algorithm: str = "RS256",
        kid: str | None = signing_key.kid,
        **overrides: Any,
    ) -> str:
        claims = {**base_claims(pki.client), **overrides}
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
def craft_token(signing_key: SigningKey, pki: Pki) -> MakeToken:
    """Sign an arbitrary JOSE header by hand (PyJWT's encoder normalises some away);
    the claims are ``make_token``'s unless given."""

    def craft(header: dict[str, Any], claims: dict[str, Any] | None = None) -> str:
        segments = [
            base64url_encode(json.dumps(part).encode())
            for part in (header, claims if claims is not None else base_claims(pki.client))
        ]
        signing_input = b".".join(segments)
        signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input, signing_key.private)
        return b".".join([signing_input, base64url_encode(signature)]).decode()

    return craft


MakeEvent = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def make_event(pki: Pki) -> MakeEvent:
    """``authorizer_event`` presenting python-client's certificate unless ``cert_pem`` says."""

    def make(*, cert_pem: str | None = None, **fields: Any) -> dict[str, Any]:
        return authorizer_event(pki.client.pem if cert_pem is None else cert_pem, **fields)

    return make


@pytest.fixture(scope="session")
def settings(pki: Pki, crl_file: Path) -> Settings:
    return verifier_settings(pki.client_ca.pem, str(crl_file))


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(SHIPPED_POLICY_PATH)


@pytest.fixture(scope="session")
def keys(signing_key: SigningKey) -> StaticKeySource:
    return StaticKeySource.from_jwks({"keys": [signing_key.jwk]})


@pytest.fixture
def caches(settings: Settings) -> DecisionCaches:
    """This test's own caches, as ``create_app`` builds them next to the key source."""
    return DecisionCaches.from_settings(settings)


Decide = Callable[..., AuthorizerResponse]


@pytest.fixture
def run(
    keys: StaticKeySource,
    policy: Policy,
    settings: Settings,
    revocation: StaticCRLSource,
    caches: DecisionCaches,
) -> Decide:
    """``decide`` with the session's keys, policy, settings and CRLs, this test's caches,
    at ``NOW``."""

    def run_decide(
        event: dict[str, Any],
        *,
        keys_: KeySource = keys,
        settings_: Settings = settings,
        revocation_: RevocationSource = revocation,
        caches_: DecisionCaches = caches,
        now: float = NOW,
    ) -> AuthorizerResponse:
        return decide(
            event,
            keys=keys_,
            policy=policy,
            settings=settings_,
            revocation=revocation_,
            caches=caches_,
            now=now,
        )

    return run_decide


Present = Callable[..., PresentedCert]


@pytest.fixture
def presented(make_event: MakeEvent, caches: DecisionCaches) -> Present:
    """The parsed certificate of ``make_event(cert_pem=..., verify=...)``, via this test's
    certificate cache."""

    def present(pem: str | None = None, verify: str | None = "SUCCESS") -> PresentedCert:
        event = AuthorizerEvent(make_event(cert_pem=pem, verify=verify))
        return parse_client_cert(event, cache=caches.certs)

    return present
