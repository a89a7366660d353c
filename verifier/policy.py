"""Check 4b: the route's required roles and tenant constraints are in the token.

The policy file (named by the ``POLICY_PATH`` setting; the stack uses
``policy.json`` next to this module) is an object ``{"description": "...",
"rules": [...]}``; each rule::

    {"pattern": "/api/tenants/{org}/**", "methods": ["GET"],
     "realm_roles": ["viewer"], "client_roles": ["read"],
     "claims": {"org": "{org}"}}

* ``pattern`` is matched segment by segment against the canonical path:
  a literal matches itself, ``{name}`` matches exactly one segment and binds
  it, a final ``**`` matches zero or more remaining segments.
* ``methods`` lists the HTTP methods the rule covers (exact, upper-case, from
  ``HTTP_METHODS``).
* ``realm_roles`` must all be in ``realm_access.roles``; ``client_roles`` must
  all be in ``resource_access[<client id>].roles`` (client id = our audience).
  Both are read from the token once, by ``verifier.claims.VerifiedToken``.
* ``claims`` maps a token claim to a literal or to ``{name}`` from the pattern:
  the claim must be a string equal to it (tenant isolation).

Deny by default: a request no rule covers is ``route_not_allowed``. When
several rules cover a request, ALL of them must pass, so a broad rule can add
requirements to a narrow one but never waive them, and rule order is irrelevant.

Why the loader is strict: a policy change must take effect as written or stop
the start. A key the matcher does not read (``"realm_role"`` for
``realm_roles``) would silently drop a requirement, a string where a list
belongs would be read letter by letter, a pattern no canonical path can have
would never match. So ``load_policy`` refuses all of these, and everything
else it cannot read one way only, with one ``PolicyError`` listing every
problem of the file, each naming the file, the rule (index, methods, pattern)
and the key::

    policy.json: rules[2] (GET /api/admin/**): realm_role: unknown key; did you mean realm_roles?

``policy_problems(path)`` returns the same list without raising (``zt
validate``). The checks run once, at load; ``authorize`` does no more work
per request than before.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from verifier.errors import (
    ClientRoleMissing,
    PathNotCanonical,
    PolicyError,
    RealmRoleMissing,
    RouteNotAllowed,
    TenantMismatch,
)
from verifier.paths import canonical_path

if TYPE_CHECKING:
    from verifier.claims import VerifiedToken

__all__ = [
    "HTTP_METHODS",
    "SHIPPED_POLICY_PATH",
    "Policy",
    "PolicyError",
    "Rule",
    "load_policy",
    "policy_problems",
]

HTTP_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""The methods a rule may name: those nginx hands to ``/_authz`` (the adapter's
route accepts exactly these, so a rule for any other would match nothing)."""
SHIPPED_POLICY_PATH: Final = Path(__file__).with_name("policy.json")
"""The policy shipped with the verifier. Never a default: ``POLICY_PATH`` must name it."""

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_WILDCARD = "**"
_DOCUMENT_KEYS = ("rules", "description")
_RULE_KEYS = ("pattern", "methods", "realm_roles", "client_roles", "claims")
_ROLE_KEYS = ("realm_roles", "client_roles")


@dataclass(frozen=True)
class Rule:
    """One route pattern + methods and what a token needs to use it."""

    pattern: str
    methods: frozenset[str]
    realm_roles: frozenset[str] = frozenset()
    client_roles: frozenset[str] = frozenset()
    claims: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        """Refuse a rule built in code that the loader would refuse: the same checks."""
        problems = _pattern_problems(self.pattern)
        problems += _methods_problems(sorted(self.methods))
        for key in _ROLE_KEYS:
            problems += _roles_problems(key, sorted(getattr(self, key)))
        problems += _claims_problems(dict(self.claims), _parameters(self.pattern))
        if problems:
            title = _title(sorted(self.methods), self.pattern)
            raise PolicyError([f"rule{title}: {problem}" for problem in problems])

    @property
    def segments(self) -> list[str]:
        return _path_segments(self.pattern)

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
    def from_dict(cls, data: Any, source: str = "policy") -> Policy:
        """The policy in ``data`` (a parsed policy file), or ``PolicyError`` listing
        every problem, each prefixed with ``source``."""
        problems = _document_problems(data, source)
        if problems:
            raise PolicyError(problems)
        return cls(tuple(_rule(rule) for rule in data["rules"]))

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
    """Read and validate a policy file (at start-up, not per request).

    Raises ``PolicyError`` listing every problem of the file (see
    ``policy_problems``); a file that loads is used exactly as written.
    """
    data, problems = _read(path)
    if problems:
        raise PolicyError(problems)
    return Policy(tuple(_rule(rule) for rule in data["rules"]))


def policy_problems(path: str | Path) -> list[str]:
    """Every reason ``load_policy(path)`` would refuse the file; empty when it loads.

    For the ops tool, which prints them all rather than stopping at the first.
    Each line starts with ``path``, then the rule and the key.
    """
    return _read(path)[1]


def _document_problems(data: Any, source: str) -> list[str]:
    """Every problem of a parsed policy document, each line starting with ``source``."""
    if not isinstance(data, Mapping):
        return [f'{source}: expected a JSON object {{"rules": [...]}}, got {_kind(data)}']
    problems = [f"{source}: {problem}" for problem in _key_problems(data, _DOCUMENT_KEYS)]
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"{source}: description: expected a string, got {_kind(description)}")
    if "rules" not in data:
        return [*problems, f"{source}: rules: missing; without rules every request is refused"]
    rules = data["rules"]
    if not isinstance(rules, list | tuple):
        return [*problems, f"{source}: rules: expected a list of rules, got {_kind(rules)}"]
    if not rules:
        return [*problems, f"{source}: rules: empty; every request would be refused"]
    for index, rule in enumerate(rules):
        label = f"{source}: rules[{index}]{_rule_title(rule)}"
        problems += [f"{label}: {problem}" for problem in _rule_problems(rule)]
    return problems


# --- one checker per key: each returns "key: what is wrong" lines, never raises ----


def _rule_problems(rule: Any) -> list[str]:
    """Every problem of one raw rule."""
    if not isinstance(rule, Mapping):
        return [f"expected an object with pattern and methods, got {_kind(rule)}"]
    problems = _key_problems(rule, _RULE_KEYS)
    for key in ("pattern", "methods"):
        if key not in rule:
            problems.append(f"{key}: missing")
    if "pattern" in rule:
        problems += _pattern_problems(rule["pattern"])
    if "methods" in rule:
        problems += _methods_problems(rule["methods"])
    for key in _ROLE_KEYS:
        if key in rule:
            problems += _roles_problems(key, rule[key])
    if "claims" in rule:
        pattern = rule.get("pattern")
        params = _parameters(pattern) if isinstance(pattern, str) else None
        problems += _claims_problems(rule["claims"], params)
    return problems


def _key_problems(obj: Mapping[Any, Any], known: Sequence[str]) -> list[str]:
    """Keys given twice (JSON keeps only the last) and keys nothing reads."""
    problems = [
        f"{key}: given twice; only the last would count" for key in getattr(obj, "duplicates", ())
    ]
    for key in obj:
        if key not in known:
            problems.append(f"{key}: unknown key{_suggestion(str(key), known)}")
    return problems


def _pattern_problems(pattern: Any) -> list[str]:
    """A pattern the matcher reads one way only, and that some canonical path can match."""
    if not isinstance(pattern, str):
        return [f'pattern: expected a string such as "/api/resource", got {_kind(pattern)}']
    if not pattern:
        return ["pattern: empty"]
    if not pattern.startswith("/"):
        return ["pattern: does not start with '/'"]
    if "?" in pattern:
        return ["pattern: has a '?'; the query string never selects a route"]
    problems = []
    segments = _path_segments(pattern)
    names = _parameters(pattern)
    for index, segment in enumerate(segments):
        if _PARAM.fullmatch(segment):
            continue
        if segment == _WILDCARD:
            if index != len(segments) - 1:
                problems.append("pattern: '**' only as the last segment")
        elif "*" in segment:
            problems.append(
                f"pattern: segment {segment!r} would be compared literally; "
                "the only wildcard is a whole last '**' segment"
            )
        elif "{" in segment or "}" in segment:
            problems.append(
                f"pattern: segment {segment!r} would be compared literally; "
                "a parameter is a whole segment {name}, name of a-z, 0-9, _"
            )
    for name, count in Counter(names).items():
        if count > 1:
            problems.append(f"pattern: parameter {{{name}}} repeated")
    # Check 4a refuses every path that is not canonical, so a pattern whose
    # literal part is not canonical could never match any request.
    sample = "/" + "/".join(
        "x" if _PARAM.fullmatch(segment) else segment
        for segment in (segments[:-1] if segments[-1:] == [_WILDCARD] else segments)
    )
    try:
        canonical_path(sample)
    except PathNotCanonical as e:
        problems.append(f"pattern: can match no canonical path ({e.detail})")
    return problems


def _methods_problems(methods: Any) -> list[str]:
    """A non-empty list of distinct methods from ``HTTP_METHODS``."""
    if not isinstance(methods, list | tuple):
        return [f'methods: expected a list such as ["GET"], got {_kind(methods)}']
    if not methods:
        return ["methods: empty; the rule would match nothing"]
    problems = []
    seen: set[str] = set()
    for index, method in enumerate(methods):
        key = f"methods[{index}]"
        if not isinstance(method, str):
            problems.append(f"{key}: expected a method name, got {_kind(method)}")
        elif method not in HTTP_METHODS:
            hint = (
                f"; did you mean {method.upper()}?"
                if method.upper() in HTTP_METHODS
                else f"; expected one of {', '.join(HTTP_METHODS)}"
            )
            problems.append(f"{key}: {method!r} is not a method a rule can match{hint}")
        elif method in seen:
            problems.append(f"{key}: {method} listed twice")
        else:
            seen.add(method)
    return problems


def _roles_problems(key: str, roles: Any) -> list[str]:
    """A list of distinct, non-empty role names a token could carry."""
    if not isinstance(roles, list | tuple):
        return [f'{key}: expected a list of role names such as ["viewer"], got {_kind(roles)}']
    problems = []
    seen: set[str] = set()
    for index, role in enumerate(roles):
        item = f"{key}[{index}]"
        if not isinstance(role, str):
            problems.append(f"{item}: expected a role name, got {_kind(role)}")
        elif not role:
            problems.append(f"{item}: empty role name")
        elif role != role.strip():
            problems.append(f"{item}: {role!r} has leading or trailing whitespace")
        elif role in seen:
            problems.append(f"{item}: {role!r} listed twice")
        else:
            seen.add(role)
    return problems


def _claims_problems(claims: Any, params: Collection[str] | None) -> list[str]:
    """Claim names with a literal or a ``{name}`` of the pattern (``params``;
    ``None`` when the pattern itself is unusable, so no name can be checked)."""
    if not isinstance(claims, Mapping):
        return [f'claims: expected an object such as {{"org": "{{org}}"}}, got {_kind(claims)}']
    problems = [
        f"claims.{key}: given twice; only the last would count"
        for key in getattr(claims, "duplicates", ())
    ]
    for claim, expected in claims.items():
        key = f"claims.{claim}"
        if not isinstance(claim, str) or not claim.strip():
            problems.append(f"claims: {claim!r} is not a claim name")
        elif not isinstance(expected, str):
            problems.append(
                f"{key}: expected a string or a {{name}} of the pattern, got {_kind(expected)}"
            )
        elif not expected:
            problems.append(f"{key}: empty; give the literal value or a {{name}} of the pattern")
        elif "{" in expected or "}" in expected:
            param = _PARAM.fullmatch(expected)
            if param is None:
                problems.append(
                    f"{key}: {expected!r} would be compared literally; a parameter is "
                    "{name}, name of a-z, 0-9, _"
                )
            elif params is not None and param.group(1) not in params:
                known = ", ".join(f"{{{name}}}" for name in dict.fromkeys(params)) or "none"
                problems.append(
                    f"{key}: {expected} is not a parameter of the pattern (it has {known})"
                )
    return problems


# --- reading -------------------------------------------------------------------------


class _JSONObject(dict[str, Any]):
    """A JSON object that remembers the keys given twice (``json`` keeps only the last)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        counts = Counter(key for key, _ in pairs)
        self.duplicates = tuple(key for key, count in counts.items() if count > 1)


def _read(path: str | Path) -> tuple[Any, list[str]]:
    """The parsed file and its problems (unreadable, not JSON, or the document's)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [f"{source}: cannot read: {e}"]
    try:
        data = json.loads(text, object_pairs_hook=_JSONObject)
    except json.JSONDecodeError as e:
        return None, [f"{source}: not valid JSON: {e}"]
    return data, _document_problems(data, source)


def _rule(raw: Mapping[str, Any]) -> Rule:
    """A checked raw rule as a ``Rule``."""
    return Rule(
        pattern=raw["pattern"],
        methods=frozenset(raw["methods"]),
        realm_roles=frozenset(raw.get("realm_roles", ())),
        client_roles=frozenset(raw.get("client_roles", ())),
        claims=tuple(raw.get("claims", {}).items()),
    )


def _rule_title(rule: Any) -> str:
    """`` (GET,HEAD /api/x)`` for a problem line: which rule, as far as it is readable."""
    if not isinstance(rule, Mapping):
        return ""
    methods = rule.get("methods")
    readable = [m for m in methods if isinstance(m, str)] if isinstance(methods, list) else []
    pattern = rule.get("pattern")
    return _title(readable, pattern if isinstance(pattern, str) else "?")


def _title(methods: Sequence[str], pattern: str) -> str:
    return f" ({','.join(methods) or '?'} {pattern or '?'})"


def _suggestion(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {close[0]}?" if close else f"; expected one of {', '.join(known)}"


def _kind(value: Any) -> str:
    """The JSON name of ``value``'s type, for "expected X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _parameters(pattern: str) -> list[str]:
    """The ``{name}`` parameters of ``pattern``, in order (repeats kept)."""
    return [m.group(1) for s in _path_segments(pattern) if (m := _PARAM.fullmatch(s))]


def _path_segments(path: str) -> list[str]:
    return path[1:].split("/") if path != "/" else []
