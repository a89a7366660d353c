"""Check 3, binding: the certificate and the token name the same workload.

Why: a bearer token alone can be replayed by anyone who steals it. Two facts
tie it to the caller's mTLS certificate:

* the certificate's subject CN equals the token's ``azp`` (the client the
  token was issued to), so a stolen token is useless without a certificate of
  the same workload;
* RFC 8705: Keycloak binds the token to the exact certificate the client
  presented when it asked for it, as ``cnf["x5t#S256"]``, the base64url
  SHA-256 of its DER. It must equal the fingerprint of the certificate nginx
  verified on this request, so a token is useless even with another
  certificate of the same workload (the previous one, after a rotation).

With ``REQUIRE_BOUND_TOKENS`` (the default) a token without that thumbprint is
refused (``token_not_bound``); a deployment whose IdP does not bind yet sets it
false and keeps the CN check alone. Whatever the setting, a ``cnf`` we cannot
confirm is refused (``token_binding_unsupported``): one that is not an object,
or that names another confirmation method (DPoP's ``jkt``, ``jwk``...). The
issuer bound that token to a proof we do not check, so accepting it as a plain
Bearer token would drop the very protection the issuer asked for.

* The CN comes from the PARSED certificate; the ``subjectDN`` string in the
  event (nginx's ``$ssl_client_s_dn``) is ignored for decisions, because
  comparing DN strings means parsing them by hand and it adds nothing: both
  come from the same TLS handshake. It is only logged.
* A certificate with zero or several CNs cannot bind and is refused.
* The token's ``cnf`` was read once, when it was verified
  (``VerifiedToken.confirmation``: the thumbprint decoded, a malformed one
  already refused as ``token_claim_invalid``), so a cached token costs one
  constant-time comparison of 32 bytes here.
* Failures are 401 (RFC 8705 section 3: "invalid_token", HTTP 401): the caller
  has not authenticated as one principal.
"""

from __future__ import annotations

import hmac

from verifier.claims import VerifiedToken
from verifier.errors import (
    BindingCnMismatch,
    BindingThumbprintMismatch,
    TokenBindingUnsupported,
    TokenNotBound,
)
from verifier.transport import PresentedCert


def check_binding(presented: PresentedCert, token: VerifiedToken, *, require_bound: bool) -> str:
    """The bound principal name (cert CN == ``azp``), or the binding error.

    ``require_bound``: the ``REQUIRE_BOUND_TOKENS`` setting.
    """
    if len(presented.common_names) != 1:
        raise BindingCnMismatch(f"certificate has {len(presented.common_names)} CNs")
    cn = presented.common_names[0]
    if token.azp != cn:
        raise BindingCnMismatch(f"cert CN {cn!r} != azp {token.azp[:64]!r}")
    cnf = token.confirmation
    if cnf.unsupported:
        raise TokenBindingUnsupported(cnf.unsupported)
    if cnf.x5t_s256 is None:
        if require_bound:
            raise TokenNotBound("no cnf.x5t#S256: the token is not bound to a certificate")
    elif not hmac.compare_digest(cnf.x5t_s256, presented.fingerprint):
        raise BindingThumbprintMismatch("cnf.x5t#S256 is not the presented certificate's")
    return cn
