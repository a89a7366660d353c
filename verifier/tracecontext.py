"""The W3C Trace Context ``traceparent`` header, validated before it is recorded.

Why validate: the header is the client's, so it is attacker-influenced text; the
audit line records it only when it has the W3C form (``version-traceid-parentid-
flags``, lower-case hex, https://www.w3.org/TR/trace-context/#traceparent-header)
and otherwise records the marker ``invalid``, never the raw value. nginx applies
the same rules before passing it to the API (``nginx/snippets/authz-maps.conf``),
so the API and the audit line agree.

Rules: version ``00`` is exactly 55 characters; a higher version (not ``ff``) may
carry more after a ``-``, of which only the four known fields are kept; the trace
id and the parent id must not be all zeros.
"""

from __future__ import annotations

import re
from typing import Final

INVALID: Final = "invalid"
_FORM = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def traceparent(value: str | None) -> str:
    """``value`` when it is a valid traceparent (its four fields), ``""`` when absent,
    ``INVALID`` otherwise."""
    if not value:
        return ""
    found = _FORM.match(value)
    if found is None:
        return INVALID
    version, trace_id, parent_id, _flags = found.groups()
    rest = value[found.end() :]
    if version == "ff" or (version == "00" and rest) or (rest and not rest.startswith("-")):
        return INVALID
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return INVALID
    return found.group(0)
