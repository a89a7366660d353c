"""What the fuzzer feeds ``decide``, and the invariant every answer must keep.

Shared by the long run (``tests.fuzz.long_run``) and the short one inside
``make test`` (``tests/unit/test_fuzz.py``), so both generate the same inputs
and check the same thing.

``World`` is the fixed side of every decision: a throw-away PKI and signing key
(built with ``tests.verifier_fixtures``), the CRLs, settings (bound tokens
required, the default), policy, the decision caches and one genuine token,
bound to the client certificate (RFC 8705 ``cnf.x5t#S256``).
``requests(world)`` generates the other side, weighted toward the interesting
inputs: the genuine token mutated (a character changed, segments dropped,
repeated, swapped or re-padded), headers rewritten and re-signed with an
ATTACKER key (alg none/HS*/ES*/RS*, kids, crit, jku, jwk, x5c), HMAC "signed"
with the public key, arbitrary claims re-signed with the real key (among them
``cnf`` variants: the client's thumbprint, the previous certificate's, none,
``jkt``, re-spelt or arbitrary JSON), arbitrary text in Authorization, other
certificates (the same workload's previous one among them), arbitrary paths
and methods.

The invariant (``Tally.record``): a request is allowed only if its token's
signature really verifies under the signing key and its ``cnf`` is exactly
``{"x5t#S256": <the presented certificate's thumbprint>}`` (computed here, not
by the verifier), and no decision is ``internal_error`` (a verifier bug, denied
but unexplained).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from tests.verifier_fixtures import (
    NOW,
    Issued,
    SigningKey,
    authorizer_event,
    base_claims,
    cnf_of,
    crl_pem,
    issue,
    make_crl,
    name,
    verifier_settings,
    x5t_s256,
)
from verifier.caches import DecisionCaches
from verifier.decision import Decider
from verifier.jwks import StaticKeySource
from verifier.policy import SHIPPED_POLICY_PATH, load_policy
from verifier.response import AuthorizerResponse
from verifier.revocation import StaticCRLSource

KID = "fuzz-key-1"
B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~%* "


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class World:
    """The fixed side of every decision: PKI, keys, CRLs, settings, policy, caches, token."""

    key: SigningKey
    attacker: rsa.RSAPrivateKey
    public_pem: bytes
    decider: Decider
    """Settings, the static key and CRL sources, the shipped policy, fresh caches."""
    client: Issued
    """python-client's current certificate: the genuine token is bound to it."""
    previous: Issued
    """python-client's certificate before a rotation: same CN and CA, another key."""
    certs: dict[str, str]
    thumbprints: dict[str, str]
    """``x5t#S256`` of each certificate of ``certs`` that is one."""
    genuine: str

    @classmethod
    def build(cls) -> World:
        key = SigningKey.generate(KID)
        root = issue(name("fuzz client root CA"), None, ca=True)
        client_ca = issue(name("fuzz client issuing CA"), root, ca=True)
        server_ca = issue(name("fuzz server CA"), None, ca=True)
        revoked = issue(name("python-client"), client_ca)
        client = issue(name("python-client"), client_ca)
        previous = issue(name("python-client"), client_ca)
        issued = {
            "client": client,
            "previous-client": previous,
            "revoked": revoked,
            "other-client": issue(name("batch-worker"), client_ca),
            "from-server-ca": issue(name("python-client"), server_ca),
            "self-signed": issue(name("python-client"), None),
        }
        certs = {key: cert.pem for key, cert in issued.items()}
        certs["garbage"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        certs["empty"] = ""
        claims = {
            **base_claims(client),
            "realm_access": {"roles": ["viewer", "operator", "admin"]},
        }
        claims["resource_access"] = {"zerotrust-api": {"roles": ["read", "write"]}}
        genuine = jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": KID})
        # The CRLs are in memory (``revocation``); the settings' path is never read.
        settings = verifier_settings(client_ca.pem, "<in memory>")
        return cls(
            key=key,
            attacker=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            public_pem=key.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            decider=Decider(
                settings=settings,
                policy=load_policy(SHIPPED_POLICY_PATH),
                keys=StaticKeySource.from_jwks({"keys": [key.jwk]}),
                revocation=StaticCRLSource.from_pem(
                    crl_pem(make_crl(client_ca, [revoked.cert.serial_number]), make_crl(root))
                ),
                caches=DecisionCaches.from_settings(settings),
            ),
            client=client,
            previous=previous,
            certs=certs,
            thumbprints={key: x5t_s256(cert) for key, cert in issued.items()},
            genuine=genuine,
        )

    def decide(self, request: FuzzRequest) -> AuthorizerResponse:
        """``decide`` on ``request``'s event with this world's objects, at ``NOW``."""
        return self.decider.decide(request.event(self), NOW)

    def signed_by_key(self, token: str) -> bool:
        """Does ``token``'s signature (leniently decoded) verify under the real key?"""
        try:
            signing_input, signature = token.rsplit(".", 1)
            raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
            self.key.private.public_key().verify(
                raw, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (ValueError, binascii.Error, InvalidSignature):
            return False
        return True

    def bound_to(self, token: str, cert: str) -> bool:
        """Is ``token``'s ``cnf`` (leniently decoded) exactly the thumbprint of ``cert``?"""
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError, binascii.Error):
            return False
        thumbprint = self.thumbprints.get(cert)
        cnf = claims.get("cnf") if isinstance(claims, dict) else None
        return thumbprint is not None and cnf == {"x5t#S256": thumbprint}


@dataclass(frozen=True)
class FuzzRequest:
    """One generated request: what nginx would forward to the verifier."""

    authorization: list[str]
    cert: str
    """A key of ``World.certs``."""
    verify: list[str]
    method: str
    path: str

    @property
    def token(self) -> str:
        """The first Authorization value after its scheme (what an allow must be signed by)."""
        return self.authorization[0].partition(" ")[2] if self.authorization else ""

    def event(self, world: World) -> dict[str, Any]:
        return authorizer_event(
            world.certs[self.cert],
            authorization=self.authorization,
            verify=self.verify,
            method=self.method,
            path=self.path,
            request_id="fuzz",
        )


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn, token: str) -> str:
    """``token``, changed in one of a few structural ways."""
    parts = token.split(".")
    how = draw(st.sampled_from(["char", "drop", "dup", "swap", "pad", "append", "truncate"]))
    if how == "char":
        i = draw(st.integers(0, len(token) - 1))
        return token[:i] + draw(st.sampled_from(B64_CHARS)) + token[i + 1 :]
    if how == "drop":
        i = draw(st.integers(0, 2))
        return ".".join(p for n, p in enumerate(parts) if n != i)
    if how == "dup":
        i = draw(st.integers(0, 2))
        return ".".join([*parts[: i + 1], parts[i], *parts[i + 1 :]])
    if how == "swap":
        i, j = draw(st.permutations([0, 1, 2]).map(lambda p: (p[0], p[1])))
        parts[i], parts[j] = parts[j], parts[i]
        return ".".join(parts)
    if how == "pad":
        i = draw(st.integers(0, 2))
        parts[i] += draw(st.sampled_from(["=", "==", "===", "A", "AA"]))
        return ".".join(parts)
    if how == "append":
        return token + draw(st.text(alphabet=B64_CHARS, max_size=20))
    return token[: draw(st.integers(0, len(token) - 1))]


def jose_headers(world: World) -> st.SearchStrategy[dict[str, Any]]:
    """JOSE headers, from plausible to hostile (attacker keys and URLs)."""
    return st.fixed_dictionaries(
        {},
        optional={
            "alg": st.sampled_from(
                ["RS256", "RS384", "RS512", "PS256", "ES256", "HS256", "none", "None", "", "rs256"]
            )
            | json_scalars,
            "kid": st.sampled_from([KID, KID + " ", KID.upper(), "", "other"]) | json_values,
            "typ": st.sampled_from(["JWT", "at+jwt", "JWE"]) | json_scalars,
            "crit": json_values,
            "jku": st.just("https://attacker.invalid/jwks"),
            "jwk": st.just(RSAAlgorithm.to_jwk(world.attacker.public_key(), as_dict=True)),
            "x5u": st.just("https://attacker.invalid/x5u"),
            "b64": st.booleans(),
            "enc": st.just("A256GCM"),
        },
    )


def cnf_values(world: World) -> st.SearchStrategy[Any]:
    """``cnf`` claims, from the right one to the hostile: another certificate's thumbprint,
    nothing, other confirmation methods (DPoP ``jkt``...), the thumbprint re-spelt."""
    right = x5t_s256(world.client)
    respelt = [
        right + "=",
        right.replace("-", "+").replace("_", "/"),
        right.upper(),
        right[:-1],
        world.client.cert.fingerprint(hashes.SHA256()).hex(),
    ]
    return st.one_of(
        st.sampled_from(
            [
                cnf_of(world.client),
                cnf_of(world.previous),
                {},
                {"jkt": right},
                {**cnf_of(world.client), "jkt": right},
                {**cnf_of(world.client), "x5t": right[:27]},
                {"jwk": RSAAlgorithm.to_jwk(world.attacker.public_key(), as_dict=True)},
                *({"x5t#S256": spelling} for spelling in respelt),
            ]
        ),
        st.dictionaries(
            st.sampled_from(["x5t#S256", "jkt", "jwk", "kid", "X5T#S256", ""]), json_values
        ),
        json_values,
    )


@st.composite
def claims(draw: st.DrawFn, world: World) -> dict[str, Any]:
    """The base claims (bound to the client certificate) with a few removed, a few
    replaced by arbitrary JSON, and often another ``cnf``."""
    drawn = dict(base_claims(world.client))
    for claim in draw(st.lists(st.sampled_from(sorted(drawn)), max_size=3, unique=True)):
        del drawn[claim]
    names = ["iss", "aud", "azp", "typ", "exp", "iat", "nbf", "cnf", "realm_access"]
    names += ["resource_access", "org"]
    drawn.update(draw(st.dictionaries(st.sampled_from(names), json_values, max_size=3)))
    if draw(st.booleans()):
        drawn["cnf"] = draw(cnf_values(world))
    return drawn


@st.composite
def forged(draw: st.DrawFn, world: World) -> str:
    """A token NOT signed by the key: attacker RSA, HMAC with the public key, or none."""
    header = draw(jose_headers(world))
    if draw(st.integers(0, 3)):  # mostly a plausible header, so later checks are reached
        header.setdefault("alg", "RS256")
        header.setdefault("kid", KID)
    body = (
        draw(claims(world))
        if draw(st.booleans())
        else {
            **base_claims(world.client),
            **draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)),
        }
    )
    signing_input = f"{_b64json(header)}.{_b64json(body)}"
    how = draw(st.sampled_from(["attacker", "hmac-public", "none", "random"]))
    if how == "attacker":
        sig = world.attacker.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    elif how == "hmac-public":
        sig = hmac.new(world.public_pem, signing_input.encode(), hashlib.sha256).digest()
    elif how == "none":
        sig = b""
    else:
        sig = draw(st.binary(max_size=300))
    return f"{signing_input}.{_b64(sig)}"


@st.composite
def resigned(draw: st.DrawFn, world: World) -> str:
    """Arbitrary header/claims signed with the REAL key: exercises the claim checks
    (exp/iat/nbf/lifetime/typ/azp/aud/iss/roles). Allowed only if the claims are valid."""
    header = {"alg": "RS256", "kid": KID, **draw(jose_headers(world))}
    signing_input = f"{_b64json(header)}.{_b64json(draw(claims(world)))}"
    sig = world.key.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(sig)}"


def requests(world: World) -> st.SearchStrategy[FuzzRequest]:
    """Every generated request against ``world`` (see the module docstring)."""
    tokens = st.one_of(
        mutated(world.genuine),
        forged(world),
        resigned(world),
        st.text(alphabet=B64_CHARS, max_size=200),
        st.lists(st.text(alphabet=B64_CHARS[:64], max_size=40), min_size=1, max_size=6).map(
            ".".join
        ),
        st.just(world.genuine),  # the control: the only thing that may be allowed
    )
    schemes = st.sampled_from(["bearer", "BEARER", "Basic", "Bearer ", "", "DPoP"])
    authorizations = st.one_of(
        *[tokens.map(lambda t: [f"Bearer {t}"])] * 6,
        st.tuples(schemes, tokens).map(lambda p: [f"{p[0]} {p[1]}"]),
        st.lists(tokens.map(lambda t: f"Bearer {t}"), min_size=2, max_size=3),
        tokens.map(lambda t: [f"Bearer {t},Bearer {t}"]),
        st.lists(st.text(max_size=60), max_size=2),
    )
    paths = st.sampled_from(
        [
            "/api/resource",
            "/api/admin/stats",
            "/api/tenants/acme/x",
            "/api/tenants/globex/x",
            "/api/../api/admin/stats",
            "/api%2Fadmin/stats",
            "//api/admin/stats",
            "/api/resource?x=1",
        ]
    ) | st.text(max_size=40).map(lambda s: "/" + s)
    return st.builds(
        FuzzRequest,
        authorization=authorizations,
        cert=st.sampled_from(["client"] * 20 + ["previous-client"] * 2 + sorted(world.certs)),
        verify=st.sampled_from(
            [["SUCCESS"]] * 20 + [["NONE"], ["FAILED:x"], [], ["SUCCESS", "SUCCESS"]]
        ),
        method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "get", "", "TRACE"]),
        path=paths,
    )


@dataclass
class Tally:
    """What a run saw: inputs, allows split by whether the key signed them and whether
    the token was bound to the presented certificate, reasons."""

    inputs: int = 0
    allowed_genuine: int = 0
    allowed_unsigned: int = 0
    allowed_unbound: int = 0
    """Allowed, signed by the key, but not bound to the presented certificate: must be 0."""
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def record(self, world: World, request: FuzzRequest, response: AuthorizerResponse) -> None:
        self.inputs += 1
        self.reasons[response.reason] += 1
        if not response.allowed:
            return
        if not world.signed_by_key(request.token):
            self.allowed_unsigned += 1
        elif not world.bound_to(request.token, request.cert):
            self.allowed_unbound += 1
        else:
            self.allowed_genuine += 1
            return
        if len(self.examples) < 5:
            self.examples.append(repr(request)[:500])

    @property
    def failed(self) -> bool:
        """An allow the key did not sign or not bound to the certificate, or a verifier bug."""
        return (
            self.allowed_unsigned > 0
            or self.allowed_unbound > 0
            or self.reasons["internal_error"] > 0
        )
