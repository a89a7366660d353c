"""Check 2a: exactly one ``Authorization: Bearer <token>`` header.

Why so strict: a request that carries two Authorization values, a ``bearer``
spelled differently, or a token outside RFC 6750's ``b64token`` alphabet is
either a client bug or someone probing how two parsers (this one and the API's)
disagree. Our policy refuses the case variant ``bearer`` on purpose even though
RFC 7235 calls schemes case-insensitive: every client we issue tokens to sends
``Bearer``, and one spelling means one code path.

This module only splits the header; the JWT itself is left to PyJWT.
"""

from __future__ import annotations

import re

from verifier.errors import (
    TokenHeaderMultiple,
    TokenMalformed,
    TokenMissing,
    TokenSchemeCase,
    TokenSchemeNotBearer,
    TokenTooLarge,
)
from verifier.event import AuthorizerEvent

SCHEME = "Bearer"
# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(event: AuthorizerEvent, max_bytes: int) -> str:
    """The token from the single Authorization header, or the reason there is none."""
    values = event.get_header_values("Authorization")
    if not values or values == [""]:
        raise TokenMissing("no Authorization header")
    if len(values) > 1 or "," in values[0]:
        # A comma never occurs in a bearer token; it is how proxies join repeats.
        raise TokenHeaderMultiple(f"{len(values)} Authorization values")
    scheme, _, token = values[0].partition(" ")
    if scheme != SCHEME:
        if scheme.lower() == SCHEME.lower():
            raise TokenSchemeCase(f"scheme {scheme!r}")
        raise TokenSchemeNotBearer(f"scheme {scheme[:16]!r}")
    if len(token) > max_bytes:
        raise TokenTooLarge(f"{len(token)} > {max_bytes} bytes")
    if not _B64TOKEN.fullmatch(token):
        raise TokenMalformed("not an RFC 6750 b64token")
    return token
