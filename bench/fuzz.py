"""Long fuzz run of the verifier's pure core: ``python -m bench.fuzz`` (``make fuzz``).

``tests/unit/test_fuzz.py`` is the short run inside ``make test`` (a few hundred
examples). This is the bounded long run: hypothesis generates up to
``--max-inputs`` (100 000) authorizer events within ``--seconds`` (180), in
batches of fresh hypothesis runs, against ``verifier.handler.decide`` with a
throw-away PKI and signing key (the unit suite's fixtures, built in memory).

Inputs, weighted toward the interesting ones: the genuine token mutated (a
character changed, segments dropped, repeated, swapped or re-padded), headers
rewritten and re-signed with an ATTACKER key (alg none/HS*/ES*/RS*, kids, crit,
jku, jwk, x5c), HMAC "signed" with the public key, arbitrary claims,
arbitrary text in Authorization, other certificates, arbitrary paths and methods.

The invariant: a request is allowed only if its token's signature really
verifies under the signing key. Printed at the end: inputs run, allowed count
split into (a) genuine-key signatures (the control and harmless re-encodings of
it) and (b) anything NOT signed by the key, which must be 0; the reason-code
histogram. Exit status 1 if (b) > 0 or any decision was ``internal_error``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from tests.unit.conftest import (
    CLIENT_ID,
    ISSUER,
    JWKS_URL,
    NOW,
    SigningKey,
    _name,
    base_claims,
    crl_pem,
    issue,
    make_crl,
)
from verifier.handler import decide
from verifier.jwks import StaticKeySource
from verifier.policy import SHIPPED_POLICY_PATH, load_policy
from verifier.revocation import StaticCRLSource
from verifier.settings import Settings

KID = "fuzz-key-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class World:
    """The fixed side of every decision: PKI, keys, CRLs, settings, policy, genuine token."""

    key: SigningKey
    attacker: rsa.RSAPrivateKey
    public_pem: bytes
    settings: Settings
    keys: StaticKeySource
    revocation: StaticCRLSource
    policy: Any
    certs: dict[str, str]
    genuine: str

    @classmethod
    def build(cls) -> World:
        key = SigningKey(KID, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        root = issue(_name("fuzz client root CA"), None, ca=True)
        client_ca = issue(_name("fuzz client issuing CA"), root, ca=True)
        server_ca = issue(_name("fuzz server CA"), None, ca=True)
        revoked = issue(_name("python-client"), client_ca)
        certs = {
            "client": issue(_name("python-client"), client_ca).pem,
            "revoked": revoked.pem,
            "other-client": issue(_name("batch-worker"), client_ca).pem,
            "from-server-ca": issue(_name("python-client"), server_ca).pem,
            "self-signed": issue(_name("python-client"), None).pem,
            "garbage": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "empty": "",
        }
        claims = {**base_claims(), "realm_access": {"roles": ["viewer", "operator", "admin"]}}
        claims["resource_access"] = {"zerotrust-api": {"roles": ["read", "write"]}}
        genuine = jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": KID})
        return cls(
            key=key,
            attacker=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            public_pem=key.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            # The CRLs are in memory (``revocation``); the path is never read.
            settings=Settings(
                client_ca_pem=client_ca.pem,
                client_crl="<in memory>",
                issuer=ISSUER,
                audience=CLIENT_ID,
                jwks_url=JWKS_URL,
                policy_path=str(SHIPPED_POLICY_PATH),
            ),
            keys=StaticKeySource.from_jwks({"keys": [key.jwk]}),
            revocation=StaticCRLSource.from_pem(
                crl_pem(make_crl(client_ca, [revoked.cert.serial_number]), make_crl(root))
            ),
            policy=load_policy(SHIPPED_POLICY_PATH),
            certs=certs,
            genuine=genuine,
        )

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


WORLD = World.build()

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~%* "


@st.composite
def mutated_genuine(draw: st.DrawFn) -> str:
    """The genuine token, changed in one of a few structural ways."""
    token = WORLD.genuine
    parts = token.split(".")
    how = draw(st.sampled_from(["char", "drop", "dup", "swap", "pad", "append", "truncate"]))
    if how == "char":
        i = draw(st.integers(0, len(token) - 1))
        return token[:i] + draw(st.sampled_from(b64chars)) + token[i + 1 :]
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
        return token + draw(st.text(alphabet=b64chars, max_size=20))
    return token[: draw(st.integers(0, len(token) - 1))]


headers_st = st.fixed_dictionaries(
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
        "jwk": st.just(RSAAlgorithm.to_jwk(WORLD.attacker.public_key(), as_dict=True)),
        "x5u": st.just("https://attacker.invalid/x5u"),
        "b64": st.booleans(),
        "enc": st.just("A256GCM"),
    },
)


@st.composite
def claims_st(draw: st.DrawFn) -> dict[str, Any]:
    claims = dict(base_claims())
    for name in draw(st.lists(st.sampled_from(sorted(claims)), max_size=3, unique=True)):
        del claims[name]
    claims.update(
        draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "iss",
                        "aud",
                        "azp",
                        "typ",
                        "exp",
                        "iat",
                        "nbf",
                        "cnf",
                        "realm_access",
                        "resource_access",
                        "org",
                    ]
                ),
                json_values,
                max_size=3,
            )
        )
    )
    return claims


@st.composite
def forged(draw: st.DrawFn) -> str:
    """A token NOT signed by the key: attacker RSA, HMAC with the public key, or none."""
    header = draw(headers_st)
    if draw(st.integers(0, 3)):  # mostly a plausible header, so later checks are reached
        header.setdefault("alg", "RS256")
        header.setdefault("kid", KID)
    claims = (
        draw(claims_st())
        if draw(st.booleans())
        else {
            **base_claims(),
            **draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)),
        }
    )
    signing_input = f"{_b64json(header)}.{_b64json(claims)}"
    how = draw(st.sampled_from(["attacker", "hmac-public", "none", "random"]))
    if how == "attacker":
        sig = WORLD.attacker.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    elif how == "hmac-public":
        sig = hmac.new(WORLD.public_pem, signing_input.encode(), hashlib.sha256).digest()
    elif how == "none":
        sig = b""
    else:
        sig = draw(st.binary(max_size=300))
    return f"{signing_input}.{_b64(sig)}"


@st.composite
def resigned(draw: st.DrawFn) -> str:
    """Arbitrary header/claims signed with the REAL key: exercises the claim checks
    (exp/iat/nbf/lifetime/typ/azp/aud/iss/roles). Allowed only if the claims are valid."""
    header = {"alg": "RS256", "kid": KID, **draw(headers_st)}
    signing_input = f"{_b64json(header)}.{_b64json(draw(claims_st()))}"
    sig = WORLD.key.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(sig)}"


tokens = st.one_of(
    mutated_genuine(),
    forged(),
    resigned(),
    st.text(alphabet=b64chars, max_size=200),
    st.lists(st.text(alphabet=b64chars[:64], max_size=40), min_size=1, max_size=6).map(".".join),
    st.just(WORLD.genuine),  # the control: the only thing that may be allowed
)
authorizations = st.one_of(
    *[tokens.map(lambda t: [f"Bearer {t}"])] * 6,
    st.tuples(st.sampled_from(["bearer", "BEARER", "Basic", "Bearer ", "", "DPoP"]), tokens).map(
        lambda p: [f"{p[0]} {p[1]}"]
    ),
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
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "get", "", "TRACE"])
verify_values = st.sampled_from(
    [["SUCCESS"]] * 20 + [["NONE"], ["FAILED:x"], [], ["SUCCESS", "SUCCESS"]]
)
cert_names = st.sampled_from(["client"] * 20 + sorted(WORLD.certs))


def event(authorization: list[str], cert: str, verify: list[str], method: str, path: str) -> dict:
    headers: dict[str, list[str]] = {}
    if verify:
        headers["X-Client-Verify"] = verify
    if authorization:
        headers["Authorization"] = authorization
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:api/prod/GET/x",
        "httpMethod": method,
        "path": path,
        "headers": {k: v[-1] for k, v in headers.items()},
        "multiValueHeaders": headers,
        "requestContext": {
            "requestId": "fuzz",
            "httpMethod": method,
            "path": path,
            "identity": {
                "sourceIp": "127.0.0.1",
                "clientCert": {"clientCertPem": WORLD.certs[cert], "subjectDN": "", "issuerDN": ""},
            },
        },
    }


@dataclass
class Tally:
    inputs: int = 0
    allowed_genuine: int = 0
    allowed_unsigned: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


TALLY = Tally()


def one_input(authorization, cert, verify, method, path) -> None:
    response = decide(
        event(authorization, cert, verify, method, path),
        keys=WORLD.keys,
        policy=WORLD.policy,
        settings=WORLD.settings,
        revocation=WORLD.revocation,
        now=NOW,
    )
    TALLY.inputs += 1
    TALLY.reasons[response.reason] += 1
    if response.allowed:
        token = authorization[0].partition(" ")[2] if authorization else ""
        if WORLD.signed_by_key(token):
            TALLY.allowed_genuine += 1
        else:
            TALLY.allowed_unsigned += 1
            if len(TALLY.examples) < 5:
                TALLY.examples.append(repr((authorization, cert, verify, method, path))[:500])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--max-inputs", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--batch", type=int, default=2_000, help="examples per hypothesis run")
    args = parser.parse_args(argv)

    started = time.monotonic()
    deadline = started + args.seconds
    runs = 0
    while TALLY.inputs < args.max_inputs and time.monotonic() < deadline:
        batch = min(args.batch, args.max_inputs - TALLY.inputs)
        run = given(
            authorization=authorizations,
            cert=cert_names,
            verify=verify_values,
            method=methods,
            path=paths,
        )(one_input)
        settings(
            max_examples=batch,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(run)()
        runs += 1
        rate = TALLY.inputs / (time.monotonic() - started)
        print(f"  run {runs}: {TALLY.inputs} inputs, {rate:.0f}/s", flush=True)

    elapsed = time.monotonic() - started
    allowed = TALLY.allowed_genuine + TALLY.allowed_unsigned
    print(f"\nfuzz: {TALLY.inputs} inputs in {elapsed:.1f}s ({runs} hypothesis runs)")
    print(
        f"allowed: {allowed} (signed by the key: {TALLY.allowed_genuine}; "
        f"NOT signed by the key: {TALLY.allowed_unsigned}, must be 0)"
    )
    print("reasons:")
    for reason, n in TALLY.reasons.most_common():
        print(f"  {reason:32s} {n:7d}")
    for example in TALLY.examples:
        print(f"  ALLOWED UNSIGNED: {example}")
    failed = TALLY.allowed_unsigned > 0 or TALLY.reasons["internal_error"] > 0
    if TALLY.reasons["internal_error"]:
        print("internal_error decisions are verifier bugs (denied, but unexplained)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
