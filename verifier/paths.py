"""Check 4a: the request path is canonical, so the policy matches what the API serves.

Why refuse instead of normalising: if the verifier normalised ``/api/../admin``
one way and the API (or nginx, or werkzeug) another, a policy written for one
path would guard a different one. A canonical path has exactly one spelling, so
the verifier refuses every path that has another (``path_not_canonical``):

* the route part (before the first ``?``) must start with ``/``;
* no ``%`` at all: percent-encoding is how ``%2e%2e``, ``%2F`` and double
  encodings smuggle separators past a matcher; our API has no use for it;
* no backslash, ``;`` (path parameters, ``..;/`` tricks), ``#``, space,
  control characters or non-ASCII;
* no empty segment (``//``, trailing ``/``), no ``.`` or ``..`` segment.

The query string is stripped and not inspected; it never selects a route.
"""

from __future__ import annotations

import re

from verifier.errors import PathNotCanonical

MAX_PATH_CHARS = 2048
# Anything outside printable ASCII (space and controls included), and % \ ; #
_FORBIDDEN = re.compile(r"[^\x21-\x7e]|[%\\;#]")


def canonical_path(raw: str) -> str:
    """The route part of ``raw`` if it is canonical, else ``PathNotCanonical``."""
    route = raw.split("?", 1)[0]
    if not route.startswith("/"):
        raise PathNotCanonical("path does not start with '/'")
    if len(route) > MAX_PATH_CHARS:
        raise PathNotCanonical(f"path longer than {MAX_PATH_CHARS}")
    forbidden = _FORBIDDEN.search(route)
    if forbidden:
        raise PathNotCanonical(f"forbidden character {forbidden.group()!r}")
    if route == "/":
        return route
    for segment in route[1:].split("/"):
        if segment in ("", ".", ".."):
            raise PathNotCanonical(f"segment {segment!r}")
    return route
