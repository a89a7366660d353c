"""Binding: the certificate's CN is the token's azp, and the token is bound to the certificate.

RFC 8705: ``cnf["x5t#S256"]`` must be the SHA-256 thumbprint of the certificate
presented on this request, required unless ``REQUIRE_BOUND_TOKENS`` is false; a
``cnf`` we cannot confirm is refused whatever the setting. The claim is read once,
when the token is verified (``VerifiedToken.confirmation``): a malformed
thumbprint is refused there, as a claim of the wrong type.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

import pytest

from tests.verifier_fixtures import CLIENT_ID, base_claims, cnf_of, x5t_s256
from verifier.binding import check_binding
from verifier.claims import VerifiedToken
from verifier.errors import (
    BindingCnMismatch,
    BindingThumbprintMismatch,
    TokenBindingUnsupported,
    TokenClaimInvalid,
    TokenNotBound,
)


@pytest.fixture
def client_cert(presented):
    return presented()


@pytest.fixture
def token(pki):
    """A verified token bound to python-client's certificate; keywords override claims."""

    def make(*, drop: tuple[str, ...] = (), **overrides: Any) -> VerifiedToken:
        claims = {**base_claims(pki.client), **overrides}
        for claim in drop:
            del claims[claim]
        return VerifiedToken.from_claims(claims, CLIENT_ID)

    return make


def bind(cert, token, *, require_bound: bool = True) -> str:
    return check_binding(cert, token, require_bound=require_bound)


# --- the CN --------------------------------------------------------------------------


def test_the_bound_principal_is_the_certificate_cn(client_cert, token):
    assert bind(client_cert, token()) == "python-client"


@pytest.mark.parametrize("azp", ["Python-Client", "python-client ", "other-client"])
def test_azp_must_equal_the_cn_exactly(client_cert, token, azp):
    with pytest.raises(BindingCnMismatch):
        bind(client_cert, token(azp=azp))


def test_a_certificate_with_two_cns_binds_nothing(presented, pki, token):
    with pytest.raises(BindingCnMismatch):
        bind(presented(pki.two_cns.pem), token(cnf=cnf_of(pki.two_cns)))


# --- the thumbprint ------------------------------------------------------------------


def test_a_token_bound_to_the_presented_certificate_passes(client_cert, pki, token):
    assert bind(client_cert, token(cnf=cnf_of(pki.client))) == "python-client"


def test_the_previous_certificate_of_the_same_workload_does_not_match_after_rotation(
    presented, pki, token
):
    with pytest.raises(BindingThumbprintMismatch):
        bind(presented(pki.client.pem), token(cnf=cnf_of(pki.previous_client)))
    with pytest.raises(BindingThumbprintMismatch):
        bind(presented(pki.previous_client.pem), token(cnf=cnf_of(pki.client)))


def test_a_thumbprint_mismatch_is_refused_even_when_bound_tokens_are_not_required(
    client_cert, pki, token
):
    with pytest.raises(BindingThumbprintMismatch):
        bind(client_cert, token(cnf=cnf_of(pki.previous_client)), require_bound=False)


def test_the_thumbprint_is_compared_in_constant_time(client_cert, token, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    bind(client_cert, token())
    assert compared == [(client_cert.fingerprint, client_cert.fingerprint)]


# --- unbound tokens ------------------------------------------------------------------


def test_a_token_without_cnf_is_refused_as_not_bound(client_cert, token):
    with pytest.raises(TokenNotBound):
        bind(client_cert, token(drop=("cnf",)))


def test_an_empty_cnf_is_not_a_binding_and_is_refused_as_not_bound(client_cert, token):
    with pytest.raises(TokenNotBound):
        bind(client_cert, token(cnf={}))


def test_an_unbound_token_passes_when_bound_tokens_are_not_required(client_cert, token):
    assert bind(client_cert, token(drop=("cnf",)), require_bound=False) == "python-client"
    assert bind(client_cert, token(cnf={}), require_bound=False) == "python-client"


# --- confirmation methods we do not verify --------------------------------------------


DPOP_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
"""RFC 9449's example ``cnf.jkt``: a token bound to a DPoP key, not to a certificate."""

# Each: the presented certificate's thumbprint -> a cnf we cannot confirm.
UNSUPPORTED = [
    pytest.param(lambda right: {"jkt": DPOP_JKT}, id="dpop-jkt-only"),
    pytest.param(lambda right: {"x5t#S256": right, "jkt": DPOP_JKT}, id="x5t-and-jkt"),
    pytest.param(lambda right: {"jwk": {"kty": "EC", "crv": "P-256"}}, id="jwk"),
    pytest.param(lambda right: {"kid": "key-1"}, id="kid"),
    pytest.param(lambda right: {"x5t": "c2hhMQ"}, id="x5t-sha1"),
    pytest.param(lambda right: {"X5T#S256": right}, id="x5t-s256-in-another-case"),
    pytest.param(lambda right: "x5t", id="a-string"),
    pytest.param(lambda right: [right], id="an-array"),
    pytest.param(lambda right: None, id="null"),
    pytest.param(lambda right: 1, id="a-number"),
    pytest.param(lambda right: True, id="a-boolean"),
]


@pytest.mark.parametrize("require_bound", [True, False], ids=["required", "not-required"])
@pytest.mark.parametrize("cnf", UNSUPPORTED)
def test_a_cnf_we_cannot_confirm_is_refused_whatever_the_setting(
    client_cert, pki, token, cnf, require_bound
):
    with pytest.raises(TokenBindingUnsupported):
        bind(client_cert, token(cnf=cnf(x5t_s256(pki.client))), require_bound=require_bound)


def test_an_unsupported_cnf_names_the_members_it_carries(client_cert, pki, token):
    with pytest.raises(TokenBindingUnsupported) as refused:
        bind(client_cert, token(cnf={**cnf_of(pki.client), "jkt": DPOP_JKT}))
    assert "jkt" in refused.value.detail


# --- the thumbprint's spelling, checked when the token is verified ---------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
DIGEST = bytes(range(0xE0, 0x100))
"""32 bytes whose base64url spelling has both ``-`` and ``_``."""
CANONICAL = base64.urlsafe_b64encode(DIGEST).rstrip(b"=").decode()
# The 43rd character carries 4 bits of the digest and 2 spare bits, zero in the
# canonical spelling; a lenient decoder reads the same digest with a spare bit set.
NON_CANONICAL = CANONICAL[:-1] + ALPHABET[ALPHABET.index(CANONICAL[-1]) | 1]


def test_the_other_spellings_below_would_decode_to_the_same_digest_if_read_leniently():
    assert "-" in CANONICAL and "_" in CANONICAL
    assert base64.urlsafe_b64decode(NON_CANONICAL + "=") == DIGEST
    assert base64.b64decode(CANONICAL.replace("-", "+").replace("_", "/") + "=") == DIGEST


def test_the_canonical_spelling_is_read_as_the_digest(token):
    assert token(cnf={"x5t#S256": CANONICAL}).confirmation.x5t_s256 == DIGEST


@pytest.mark.parametrize(
    "thumbprint",
    [
        pytest.param(None, id="null"),
        pytest.param(1, id="a-number"),
        pytest.param(["abc"], id="an-array"),
        pytest.param({"x5t#S256": CANONICAL}, id="an-object"),
        pytest.param("", id="empty"),
        pytest.param("AAAA", id="too-short"),
        pytest.param(CANONICAL + "A", id="too-long"),
        pytest.param(DIGEST.hex(), id="hex"),
        pytest.param("!" * 43, id="not-base64url"),
        pytest.param(CANONICAL + "=", id="padded"),
        pytest.param(CANONICAL.replace("-", "+").replace("_", "/"), id="standard-base64"),
        pytest.param(NON_CANONICAL, id="non-canonical-last-character"),
        pytest.param(" " + CANONICAL[1:], id="a-space"),
        pytest.param(CANONICAL[:-1] + "\u00e9", id="non-ascii"),
    ],
)
def test_a_thumbprint_spelt_any_other_way_is_an_invalid_claim(token, thumbprint):
    with pytest.raises(TokenClaimInvalid):
        token(cnf={"x5t#S256": thumbprint})


def test_the_thumbprint_is_decoded_once_when_the_token_is_verified(client_cert, token):
    verified = token()
    assert verified.confirmation.x5t_s256 == client_cert.fingerprint
    assert verified.confirmation.unsupported == ""
