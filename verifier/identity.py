"""The caller's identity: one schema, one set of names, from the verifier to the API.

The same twelve fields, with the same names, are:

* ``AuthorizerResponse.identity`` (what ``decide`` proved; fields stay empty
  until proven, so a deny still records what was established);
* the ``X-Auth-Identity`` header of an allow (``Identity.to_header``), which nginx
  copies to the API and the identity assertion covers (``verifier.assertion``);
* the audit record of every decision (``verifier.audit.AuditRecord`` extends
  ``IdentityJSON``);
* the API's view of the caller (``api.app`` reads the header back with
  ``Identity.from_header``) and its answer;
* the API Gateway authorizer ``context`` (``Identity.ascontext``: the same names,
  role lists comma-joined because API Gateway takes flat values only).

``subject`` is the authenticated workload: the certificate CN, which the
binding check proved equal to the token's ``azp``. ``sub`` is the token's own
subject (Keycloak's service-account user id). ``cert_serial`` is
``verifier.transport.serial_hex`` of the certificate (nginx's
``$ssl_client_serial``). ``realm_roles`` and ``client_roles`` (those of the
API's own client) are sorted.

A leaf module (JSON only): the API imports it without the verifier's checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, TypedDict

HEADER = "X-Auth-Identity"


class IdentityJSON(TypedDict):
    """``Identity`` as JSON: the header, the audit record's identity fields, the API's answer."""

    subject: str
    azp: str
    sub: str
    jti: str
    cert_cn: str
    cert_serial: str
    cert_subject_dn: str
    cert_issuer_dn: str
    realm_roles: list[str]
    client_roles: list[str]
    org: str
    department: str


@dataclass(frozen=True)
class Identity:
    """What the checks proved about the caller (see the module docstring for each name)."""

    subject: str = ""
    azp: str = ""
    sub: str = ""
    jti: str = ""
    cert_cn: str = ""
    cert_serial: str = ""
    cert_subject_dn: str = ""
    cert_issuer_dn: str = ""
    realm_roles: tuple[str, ...] = ()
    client_roles: tuple[str, ...] = ()
    org: str = ""
    department: str = ""

    def asdict(self) -> IdentityJSON:
        """Every field, roles as lists (JSON arrays)."""
        return IdentityJSON(
            subject=self.subject,
            azp=self.azp,
            sub=self.sub,
            jti=self.jti,
            cert_cn=self.cert_cn,
            cert_serial=self.cert_serial,
            cert_subject_dn=self.cert_subject_dn,
            cert_issuer_dn=self.cert_issuer_dn,
            realm_roles=list(self.realm_roles),
            client_roles=list(self.client_roles),
            org=self.org,
            department=self.department,
        )

    def to_header(self) -> str:
        """Every field as one JSON object, the value of ``HEADER`` (computed once per
        object: an allow's identity is remembered per certificate and token,
        ``verifier.decision``, so a client reusing its token pays the JSON once).

        ``ensure_ascii`` escapes every character outside printable ASCII (CR, LF,
        DEL, non-ASCII) as ``\\uXXXX``, so the value is always a safe header value
        and ``from_header`` reads it back exactly; a role list stays a list (a
        comma in a role name cannot split it).
        """
        return self._header

    @cached_property
    def _header(self) -> str:
        return json.dumps(self.asdict(), separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_header(cls, value: str | None) -> Identity:
        """The identity ``to_header`` wrote; empty for anything that is not a JSON object.

        The reader is the API, behind nginx, which always overwrites the header
        with the verifier's answer: a missing or unreadable value means nobody,
        never a crash. A field of the wrong type reads as empty; unknown names
        are ignored.
        """
        try:
            data = json.loads(value or "{}")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        return cls(**{name: _read(name, data.get(name)) for name in _FIELD_NAMES})

    def ascontext(self) -> dict[str, str]:
        """Flat string values (API Gateway authorizer ``context``), role lists comma-joined."""
        flat = self.asdict()
        return {
            name: ",".join(value) if isinstance(value, list) else value
            for name, value in flat.items()
        }


_FIELD_NAMES = tuple(field.name for field in fields(Identity))
_ROLE_FIELDS = frozenset({"realm_roles", "client_roles"})


def _read(name: str, value: Any) -> Any:
    if name in _ROLE_FIELDS:
        roles = value if isinstance(value, list) else []
        return tuple(role for role in roles if isinstance(role, str))
    return value if isinstance(value, str) else ""
