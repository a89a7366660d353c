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
  Both are read from the token once, by ``verifier.claims.VerifiedToken``.
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
from typing import TYPE_CHECKING, Any

from verifier.errors import (
    ClientRoleMissing,
    RealmRoleMissing,
    RouteNotAllowed,
    TenantMismatch,
)

if TYPE_CHECKING:
    from verifier.claims import VerifiedToken

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

    @cached_property
    def _claim_values(self) -> tuple[tuple[str, str, str | None], ...]:
        """Each claim constraint as (claim, literal, parameter name or ``None``), parsed once."""
        return tuple(
            (claim, expected, m.group(1) if (m := _PARAM.fullmatch(expected)) else None)
            for claim, expected in self.claims
        )

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters if this rule covers (method, path), else ``None``."""
        return self.match_segments(method, _path_segments(path))

    def match_segments(self, method: str, actual: list[str]) -> dict[str, str] | None:
        """``match`` for a path already split into its segments."""
        if method not in self.methods:
            return None
        wanted = self._compiled
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

    def check(self, params: Mapping[str, str], token: VerifiedToken) -> None:
        """Raise the first unmet requirement of this rule."""
        missing = self.realm_roles - token.realm_roles
        if missing:
            raise RealmRoleMissing(f"{self.pattern}: needs realm roles {sorted(missing)}")
        missing = self.client_roles - token.client_roles
        if missing:
            raise ClientRoleMissing(f"{self.pattern}: needs client roles {sorted(missing)}")
        for claim, literal, param in self._claim_values:
            value = params[param] if param is not None else literal
            if token.claims.get(claim) != value:
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

    def authorize(self, method: str, path: str, token: VerifiedToken) -> None:
        """Pass silently, or raise why ``token`` may not ``method`` the canonical ``path``."""
        segments = _path_segments(path)
        matched = False
        for rule in self.rules:
            params = rule.match_segments(method, segments)
            if params is not None:
                matched = True
                rule.check(params, token)
        if not matched:
            raise RouteNotAllowed(f"no rule for {method} {path}")


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (at start-up, not per request)."""
    return Policy.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _path_segments(path: str) -> list[str]:
    return path[1:].split("/") if path != "/" else []
