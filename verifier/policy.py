"""Check 4b: the route's required roles and tenant constraints are in the token.

The policy file (``policy.json`` next to this module by default) is a list of
rules::

    {"pattern": "/api/tenants/{org}/**", "methods": ["GET"],
     "realm_roles": ["viewer"], "client_roles": ["read"],
     "claims": {"org": "{org}"}}

* ``pattern`` is matched segment by segment against the canonical path:
  a literal matches itself, ``{name}`` matches exactly one segment and binds
  it, a final ``**`` matches zero or more remaining segments.
* ``methods`` lists the HTTP methods the rule covers (exact, upper-case).
* ``realm_roles`` must all be in ``realm_access.roles``; ``client_roles`` must
  all be in ``resource_access[<client id>].roles`` (client id = our audience).
* ``claims`` maps a token claim to a literal or to ``{name}`` from the pattern:
  the claim must be a string equal to it (tenant isolation).

Deny by default: a request no rule covers is ``route_not_allowed``. When
several rules cover a request, ALL of them must pass, so a broad rule can add
requirements to a narrow one but never waive them, and rule order is irrelevant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from verifier.errors import (
    ClientRoleMissing,
    RealmRoleMissing,
    RouteNotAllowed,
    TenantMismatch,
)

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_WILDCARD = "**"


@dataclass(frozen=True)
class Rule:
    """One route pattern + methods and what a token needs to use it."""

    pattern: str
    methods: frozenset[str]
    realm_roles: frozenset[str] = frozenset()
    client_roles: frozenset[str] = frozenset()
    claims: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        """Refuse patterns whose meaning would be ambiguous."""
        if not self.pattern.startswith("/") or not self.methods:
            raise ValueError(f"rule {self.pattern!r}: needs a /pattern and methods")
        segments = self.segments
        names = [m.group(1) for s in segments if (m := _PARAM.fullmatch(s))]
        if len(names) != len(set(names)):
            raise ValueError(f"rule {self.pattern!r}: repeated parameter")
        if _WILDCARD in segments[:-1]:
            raise ValueError(f"rule {self.pattern!r}: '**' only as the last segment")
        for _, expected in self.claims:
            param = _PARAM.fullmatch(expected)
            if param and param.group(1) not in names:
                raise ValueError(f"rule {self.pattern!r}: unknown {expected}")

    @property
    def segments(self) -> list[str]:
        return self.pattern[1:].split("/") if self.pattern != "/" else []

    @cached_property
    def _compiled(self) -> tuple[tuple[str, str | None], ...]:
        """Each segment with its parameter name (or ``None``), parsed once, not per request."""
        return tuple(
            (segment, m.group(1) if (m := _PARAM.fullmatch(segment)) else None)
            for segment in self.segments
        )

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters if this rule covers (method, path), else ``None``."""
        if method not in self.methods:
            return None
        wanted = self._compiled
        actual = path[1:].split("/") if path != "/" else []
        params: dict[str, str] = {}
        for index, (segment, param) in enumerate(wanted):
            if segment == _WILDCARD:
                return params
            if index >= len(actual):
                return None
            if param is not None:
                params[param] = actual[index]
            elif segment != actual[index]:
                return None
        return params if len(actual) == len(wanted) else None

    def check(self, params: Mapping[str, str], claims: Mapping[str, Any], client_id: str) -> None:
        """Raise the first unmet requirement of this rule."""
        missing = self.realm_roles - realm_roles(claims)
        if missing:
            raise RealmRoleMissing(f"{self.pattern}: needs realm roles {sorted(missing)}")
        missing = self.client_roles - client_roles(claims, client_id)
        if missing:
            raise ClientRoleMissing(f"{self.pattern}: needs {client_id} roles {sorted(missing)}")
        for claim, expected in self.claims:
            param = _PARAM.fullmatch(expected)
            value = params[param.group(1)] if param else expected
            if claims.get(claim) != value:
                raise TenantMismatch(f"{self.pattern}: claim {claim!r} != {value!r}")


@dataclass(frozen=True)
class Policy:
    """All rules; ``authorize`` is the whole of check 4b."""

    rules: tuple[Rule, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        return cls(
            tuple(
                Rule(
                    pattern=str(rule["pattern"]),
                    methods=frozenset(str(m) for m in rule["methods"]),
                    realm_roles=frozenset(str(r) for r in rule.get("realm_roles", ())),
                    client_roles=frozenset(str(r) for r in rule.get("client_roles", ())),
                    claims=tuple((str(k), str(v)) for k, v in rule.get("claims", {}).items()),
                )
                for rule in data["rules"]
            )
        )

    def authorize(self, method: str, path: str, claims: Mapping[str, Any], client_id: str) -> None:
        """Pass silently, or raise why ``claims`` may not ``method`` the canonical ``path``."""
        matched = False
        for rule in self.rules:
            params = rule.match(method, path)
            if params is not None:
                matched = True
                rule.check(params, claims, client_id)
        if not matched:
            raise RouteNotAllowed(f"no rule for {method} {path}")


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (at start-up, not per request)."""
    return Policy.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def realm_roles(claims: Mapping[str, Any]) -> frozenset[str]:
    """``realm_access.roles``, ignoring anything that is not a list of strings."""
    access = claims.get("realm_access")
    return _role_names(access.get("roles") if isinstance(access, dict) else None)


def client_roles(claims: Mapping[str, Any], client_id: str) -> frozenset[str]:
    """``resource_access[client_id].roles``, ignoring malformed entries."""
    resources = claims.get("resource_access")
    access = resources.get(client_id) if isinstance(resources, dict) else None
    return _role_names(access.get("roles") if isinstance(access, dict) else None)


def _role_names(roles: Any) -> frozenset[str]:
    if not isinstance(roles, list):
        return frozenset()
    return frozenset(role for role in roles if isinstance(role, str))
