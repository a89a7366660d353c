"""The identity assertion: how the API knows an identity came from the verifier.

nginx forwards the verifier's ``X-Auth-Identity`` to the API, but a header proves
nothing about who wrote it: any process that can reach the API's socket could
send one. So every allow also carries ``X-Auth-Assertion``, a short-lived MAC over
the identity and the request it was decided for (the cheap variant of Pomerium's
signed ``X-Pomerium-Jwt-Assertion``), and the API refuses a request whose
assertion it cannot verify.

Format: ``v1.<exp>.<mac>`` where ``exp`` is epoch seconds and ``mac`` is
base64url (no padding) of HMAC-SHA256 over, one per line::

    zt-identity-assertion
    v1
    <exp>
    <method>
    <raw request URI, as nginx's $request_uri>
    <X-Auth-Identity value>

It binds the identity to the method and the exact URI the verifier decided on, so
an assertion captured for ``GET /api/resource`` is useless for anything else, and
it expires: ``exp`` covers the time nginx's decision cache may reuse the allow,
plus ``SLACK_SECONDS`` for the request's trip to the API. Both sides hold the same
key (generated at first start, 0600, owned by the services' user); a MAC, not a
signature, because the only party that verifies it is also trusted to decide.

Pure functions: the key, the clock and the request are passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

VERSION = "v1"
DOMAIN = b"zt-identity-assertion"
SLACK_SECONDS = 10
MIN_KEY_BYTES = 32
HEADER = "X-Auth-Assertion"


class AssertionInvalid(Exception):
    """The assertion is missing, malformed, expired or does not match the request."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mac(key: bytes, exp: int, method: str, uri: str, identity: str) -> str:
    message = b"\n".join(
        (
            DOMAIN,
            VERSION.encode(),
            str(exp).encode(),
            method.encode(),
            uri.encode(),
            identity.encode(),
        )
    )
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(key: bytes, identity: str, method: str, uri: str, *, now: float, lifetime: float) -> str:
    """The assertion for ``identity`` on ``method uri``, valid ``lifetime`` + slack seconds."""
    exp = int(now + max(0.0, lifetime)) + SLACK_SECONDS
    return f"{VERSION}.{exp}.{_mac(key, exp, method, uri, identity)}"


def verify(
    key: bytes, value: str | None, identity: str, method: str, uri: str, *, now: float
) -> None:
    """Raise ``AssertionInvalid`` (with a reason code) unless ``value`` asserts exactly this."""
    if not value:
        raise AssertionInvalid("assertion_missing")
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != VERSION or not parts[1].isdigit() or len(parts[1]) > 12:
        raise AssertionInvalid("assertion_malformed")
    exp = int(parts[1])
    expected = _mac(key, exp, method, uri, identity)
    if not hmac.compare_digest(expected.encode(), parts[2].encode("ascii", "replace")):
        raise AssertionInvalid("assertion_mismatch")
    if now > exp:
        raise AssertionInvalid("assertion_expired")


def load_key(path: str) -> bytes:
    """The shared key from ``path`` (hex text); refuses a short or unreadable one."""
    try:
        key = bytes.fromhex(Path(path).read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"identity assertion key {path!r} is unreadable: {e}") from e
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"identity assertion key {path!r} is shorter than {MIN_KEY_BYTES} bytes")
    return key
