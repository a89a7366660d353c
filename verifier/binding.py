"""Check 3, binding: the certificate and the token name the same workload.

Why: a bearer token alone can be replayed by anyone who steals it. Requiring
that the mTLS certificate's subject CN equals the token's ``azp`` (the client
the token was issued to) means a stolen token is useless without the matching
private key, and when Keycloak binds the token to the certificate
(RFC 8705 ``cnf["x5t#S256"]``) the match is exact to the certificate.

* The CN comes from the PARSED certificate; the ``subjectDN`` string in the
  event (nginx's ``$ssl_client_s_dn``) is ignored for decisions, because
  comparing DN strings means parsing them by hand and it adds nothing: both
  come from the same TLS handshake. It is only logged.
* A certificate with zero or several CNs cannot bind and is refused.
* Failures are 401 (RFC 8705 section 3: "invalid_token", HTTP 401): the caller
  has not authenticated as one principal.
* ``cnf`` present but not an object cannot be confirmed, so it is refused;
  other confirmation members (e.g. DPoP ``jkt``) are not checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verifier.errors import BindingCnMismatch, BindingThumbprintMismatch
from verifier.transport import PresentedCert

THUMBPRINT_CLAIM = "x5t#S256"


def check_binding(presented: PresentedCert, claims: Mapping[str, Any]) -> str:
    """The bound principal name (cert CN == ``azp``), or the binding error."""
    if len(presented.common_names) != 1:
        raise BindingCnMismatch(f"certificate has {len(presented.common_names)} CNs")
    cn = presented.common_names[0]
    azp = claims.get("azp")
    if not isinstance(azp, str) or azp != cn:
        raise BindingCnMismatch(f"cert CN {cn!r} != azp {str(azp)[:64]!r}")
    if "cnf" in claims:
        _check_thumbprint(presented, claims["cnf"])
    return cn


def _check_thumbprint(presented: PresentedCert, cnf: Any) -> None:
    if not isinstance(cnf, Mapping):
        raise BindingThumbprintMismatch("cnf is not an object")
    if THUMBPRINT_CLAIM not in cnf:
        return
    expected = cnf[THUMBPRINT_CLAIM]
    if not isinstance(expected, str) or expected != presented.x5t_s256:
        raise BindingThumbprintMismatch("cnf.x5t#S256 does not match the certificate")
