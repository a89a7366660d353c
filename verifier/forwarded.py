"""Check 2, first step: every header the client controls reached the verifier intact.

Why this exists: gunicorn, the verifier's HTTP server, refuses a request whose
header value holds a control byte (0x01-0x08, 0x0A-0x1F, 0x7F: RFC 9110 5.5),
while nginx forwards such a byte in ``Authorization`` as the client sent it. The
subrequest then died in gunicorn (400, which ``auth_request`` turns into a 5xx)
before anything was decided or audited (issue 17). So nginx never forwards such
a value: ``nginx/snippets/authz-maps.conf`` detects it, sends the header empty
(not at all) and names it in ``X-Refused-Header``, and this check refuses the
request as ``token_malformed``, audited like every other decision. The raw value
is never echoed: the audit detail names the header only.

nginx's own limits stay in front: NUL, CR and LF end or break a header line in
nginx itself (400, nothing reaches the verifier; a bare LF ends the value), and
nginx refuses control bytes and 0x80-0xFF in the request target (400).
Bytes 0x80-0xFF and TAB in ``Authorization`` are legal for gunicorn and reach
``bearer_token``, which refuses them as not RFC 6750 (``token_malformed``).

Only nginx sets ``X-Refused-Header`` (the subrequest forwards an allowlist of
headers, each set from nginx's variables), so a client cannot send one through
nginx; sent straight to the Lambda adapter it can only get its own request
refused.
"""

from __future__ import annotations

import re

from verifier.errors import TokenMalformed
from verifier.event import AuthorizerEvent

REFUSED_HEADER = "X-Refused-Header"
"""Set by nginx to the name(s) of the header(s) it withheld (authz-maps.conf)."""
_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")


def check_forwarded_intact(event: AuthorizerEvent) -> None:
    """Refuse the request when nginx withheld a header the verifier could not receive."""
    marked = [v for v in event.get_header_values(REFUSED_HEADER) if v]
    if not marked:
        return
    names = [n if _NAME.fullmatch(n) else "(unnamed)" for v in marked for n in v.split()]
    raise TokenMalformed(
        f"{', '.join(names)}: a control byte the verifier's HTTP server refuses; "
        "nginx withheld the value"
    )
