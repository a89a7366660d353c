"""Turn nginx's ``auth_request`` subrequest into an API Gateway authorizer event.

nginx overwrites every one of these headers on the subrequest (a client can
never set them), so they are as trustworthy as nginx's own variables:

===================  ============================  =====================================
header               nginx variable                event field
===================  ============================  =====================================
X-Client-Verify      ``$ssl_client_verify``        headers (must be exactly ``SUCCESS``)
X-Client-Cert        ``$ssl_client_escaped_cert``  ...identity.clientCert.clientCertPem
                                                   (URL-decoded with ``unquote``)
X-Client-Subject-DN  ``$ssl_client_s_dn``          ...clientCert.subjectDN (logged only)
X-Original-Method    ``$request_method``           httpMethod, requestContext.httpMethod
X-Original-URI       ``$request_uri`` (raw+query)  path, requestContext.path
X-Request-ID         ``$request_id``               requestContext.requestId
X-Client-Addr        ``$remote_addr``              requestContext.identity.sourceIp
Authorization        ``$http_authorization``       headers, multiValueHeaders
===================  ============================  =====================================

The event's other certificate fields are filled from these headers when a
proxy sends them; ours does not, because every check reads the parsed PEM
(nginx/snippets/authz-subrequest.conf):

===================  ============================  =====================================
X-Client-Issuer-DN   ``$ssl_client_i_dn``          ...clientCert.issuerDN
X-Client-Serial      ``$ssl_client_serial``        ...clientCert.serialNumber
X-Client-Not-Before  ``$ssl_client_v_start``       ...clientCert.validity.notBefore
X-Client-Not-After   ``$ssl_client_v_end``         ...clientCert.validity.notAfter
===================  ============================  =====================================

Every request header (except the certificate, moved into ``clientCert``) is
also copied into ``headers`` and ``multiValueHeaders``, as API Gateway does.

The same few certificates arrive on every request, and decoding ~2 KiB of
percent-escapes each time was a tenth of the adapter's cost, so the caller may
pass ``pems``, a cache of decoded values by escaped value (the Flask adapter's
own, built in ``create_app``): ``unquote`` is a pure function of the escaped
text, so a hit is the same string.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from verifier.lru import BoundedLRU

CERT_HEADER = "X-Client-Cert"
PEM_CACHE_SIZE = 256  # escaped certificates remembered (each a few KiB)


def event_from_subrequest(
    headers: Iterable[tuple[str, str]], *, pems: BoundedLRU[str, str] | None = None
) -> dict[str, Any]:
    """The REQUEST-authorizer event for one subrequest's header list."""
    multi: dict[str, list[str]] = {}
    last: dict[str, str] = {}  # lower-cased name -> the last value sent under any spelling
    for name, value in headers:
        multi.setdefault(name, []).append(value)
        last[name.lower()] = value

    def one(name: str) -> str:
        return last.get(name.lower(), "")

    method, uri = one("X-Original-Method"), one("X-Original-URI")
    escaped = one(CERT_HEADER)
    pem = pems.get(escaped) if pems is not None else None
    if pem is None:
        pem = unquote(escaped)
        if pems is not None:
            pems.put(escaped, pem)
    forwarded = {k: v for k, v in multi.items() if k.lower() != CERT_HEADER.lower()}
    return {
        "type": "REQUEST",
        "methodArn": "",
        "httpMethod": method,
        "path": uri,
        "headers": {name: values[-1] for name, values in forwarded.items()},
        "multiValueHeaders": forwarded,
        "requestContext": {
            "requestId": one("X-Request-ID"),
            "httpMethod": method,
            "path": uri,
            "identity": {
                "sourceIp": one("X-Client-Addr"),
                "clientCert": {
                    "clientCertPem": pem,
                    "subjectDN": one("X-Client-Subject-DN"),
                    "issuerDN": one("X-Client-Issuer-DN"),
                    "serialNumber": one("X-Client-Serial"),
                    "validity": {
                        "notBefore": one("X-Client-Not-Before"),
                        "notAfter": one("X-Client-Not-After"),
                    },
                },
            },
        },
    }
