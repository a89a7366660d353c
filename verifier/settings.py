"""The verifier's configuration, as one frozen value, read strictly.

Why frozen: the decision is a pure function of (event, keys, policy, settings,
revocation, now); settings that could change under a running request would
break that. Files that change while the verifier runs (the CRL file) are named
here by path only and read by the object that owns them
(``verifier.revocation.CRLFileSource``).

Why strict: a change must take effect or stop the start. A misspelt name
(``ZT_VERIFIER_ISUER``) would otherwise be ignored and leave the old value in
force, and a convenient default for a security setting (a localhost issuer, the
demo policy) would be trusted whenever a deployment forgot to set it. So:

* every ``ZT_VERIFIER_*`` variable (``Settings.from_env``) and every key of a
  config mapping (``Settings.from_config``, Flask's ``create_app(test_config)``)
  must be a name from the table below; an unknown one is refused, with the
  closest known name suggested;
* the settings marked *required* have no default;
* every value is parsed as the type the table gives, and range-checked;
* every problem is collected first and raised as ONE ``SettingsError`` listing
  them all, one line each, ``<NAME>: <what is wrong>``::

      ZT_VERIFIER_ISUER: unknown setting; did you mean ZT_VERIFIER_ISSUER?
      ZT_VERIFIER_LEEWAY_SECONDS: 'abc' is not a number of seconds
      ZT_VERIFIER_AUDIENCE: required, not set (this API's client id: must be in aud)

``settings_problems(environ)`` returns that list without raising (``zt validate``).

Names, with the ``ZT_VERIFIER_`` prefix in the environment and without it in a
config mapping:

==========================  ===========================================================
name                        meaning (default; *required* = no default)
==========================  ===========================================================
ISSUER                      exact ``iss`` of accepted tokens, an https:// URL (*required*)
AUDIENCE                    this API's client id: must be in ``aud``; its client roles
                            are read from ``resource_access[AUDIENCE]`` (*required*)
JWKS_URL                    Keycloak's JWKS endpoint, an https:// URL (derived from
                            ISSUER: ``<ISSUER>/protocol/openid-connect/certs``)
JWKS_CA_BUNDLE              PEM file of the SERVER CA used to verify the JWKS endpoint's
                            TLS certificate, checked to hold one at start-up (unset: the
                            system trust store)
CLIENT_CA_CERT              PEM file of the CLIENT issuing CA certificate(s); a client
                            cert must be issued directly by one of them. Read and parsed
                            at start-up (*required*)
CLIENT_CRL                  PEM file of the CLIENT CAs' CRLs (``BEGIN X509 CRL`` blocks:
                            the root's and one per issuing CA), the same file nginx's
                            ``ssl_crl`` loads; re-read when it changes (checked at most
                            once a second). A certificate is refused when it or its
                            issuing CA is listed (401), and the request is refused with
                            503 when the file is unusable or has no current CRL for
                            either issuer, so a missing FILE does not stop the start
                            (*required*)
POLICY_PATH                 route policy JSON, loaded strictly by
                            ``verifier.policy.load_policy`` (*required*; the stack
                            names ``verifier/policy.json``)
AUDIT_LOG                   file the Flask adapter appends audit JSON lines to; unset
                            means every request is denied with ``audit_unavailable``.
                            The adapter started from the environment refuses to start
                            without it (``verifier.app.ENV_REQUIRED``). Each line is
                            the next link of a hash chain (``verifier.auditchain``)
AUDIT_SINK_SOCKET           the second audit sink's unix datagram socket: each line is
                            also copied there, best effort (``verifier.auditsink``);
                            unset means no copy
ASSERTION_KEY_FILE          the key (hex, >= 32 bytes) of the identity assertion the
                            Flask adapter adds to every allow (``X-Auth-Assertion``,
                            ``verifier.assertion``), shared with the API; required by
                            the adapter started from the environment
ALGORITHMS                  comma-separated JWS ``alg`` allowlist (``RS256``); each must
                            be an algorithm PyJWT knows; ``none`` and ``HS*`` are refused
LEEWAY_SECONDS              clock-skew leeway for exp/iat/nbf, >= 0 (30)
MAX_TOKEN_LIFETIME_SECONDS  largest accepted ``exp - iat``, >= 0; 0 disables (3600)
MAX_TOKEN_BYTES             largest accepted token, >= 1 (8192)
JWKS_COOLDOWN_SECONDS       least time between two JWKS fetch attempts, >= 0 (30)
JWKS_MAX_AGE_SECONDS        age after which known keys are refreshed too (in the
                            background: requests go on with the keys held), >= 0 (300)
JWKS_MAX_STALENESS_SECONDS  hard maximum age of the keys: keys last fetched successfully
                            longer ago are refused (``jwks_stale``) until a refresh
                            succeeds, so a key removed from Keycloak stops working even
                            while refreshes fail; > JWKS_MAX_AGE_SECONDS (900)
JWKS_TIMEOUT_SECONDS        TOTAL deadline of one JWKS fetch (connect, TLS, status line,
                            headers, body), 0 < t <= 10 (2)
JWKS_UNKNOWN_KID_WAIT_SECONDS  longest a request with an unknown ``kid`` waits for the
                            JWKS fetch in flight before ``token_key_unknown``, 0..2: it
                            must stay well under nginx's 3 s ``proxy_read_timeout`` of
                            the auth subrequest (1)
TOKEN_CACHE_SIZE            verified-token cache entries, >= 0; 0 turns the cache off
                            (4096). See ``verifier.claims``: it skips only the parse and
                            the signature check of a token already verified with the
                            same key; every time/type/binding/policy check still runs
DECISION_CACHE_SECONDS      longest a front proxy may reuse an ALLOW (0..300; 0 = every
                            answer says ``X-Accel-Expires: 0``) (0). The bring-up sets
                            30 for nginx's decision cache; never past token exp/cert end
LOCKOUT_DIR                 folder where the Flask adapter's workers count refused tokens
                            per client certificate and record lockouts
                            (``verifier.lockout``); unset: no lockout (the Lambda). The
                            adapter started from the environment requires it
LOCKOUT_THRESHOLD           refused tokens (401s of the token and binding checks, not
                            ``jwks_*``/``token_key_unknown``) from one certificate within
                            LOCKOUT_WINDOW_SECONDS that lock it out, 0..1000; 0 turns the
                            lockout off (10)
LOCKOUT_WINDOW_SECONDS      the window those refusals are counted in, 1..3600 (60)
LOCKOUT_SECONDS             how long a locked-out certificate is refused (429
                            ``locked_out``, before its token is read), 1..86400 (300)
REQUIRE_VERIFY_HEADER       require nginx's ``X-Client-Verify: SUCCESS``; a boolean
                            (true/false, yes/no, on/off, 1/0) (true). Set false ONLY
                            behind AWS API Gateway mutual TLS, whose events carry no
                            such header because the gateway rejects unverified
                            certificates itself; a header that is present must still
                            say ``SUCCESS``, and the issuer/validity/EKU checks remain
REQUIRE_BOUND_TOKENS        refuse a token not bound to the presented certificate
                            (RFC 8705 ``cnf.x5t#S256``) with ``token_not_bound``; a
                            boolean (true). Set false ONLY while phasing RFC 8705 in
                            (an IdP that does not bind yet): the CN == ``azp`` check
                            remains, a thumbprint that is present must still match,
                            and a ``cnf`` naming another method (``jkt``...) is
                            refused either way
==========================  ===========================================================

Numbers must be finite (``inf`` and ``nan`` would disable a check without
saying so). An empty value is refused rather than read as "unset": unset the
variable to get the default.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography import x509
from jwt.algorithms import get_default_algorithms

from verifier.errors import SettingsError

__all__ = ["ENV_PREFIX", "JWKS_PATH", "Settings", "SettingsError", "settings_problems"]

ENV_PREFIX: Final = "ZT_VERIFIER_"
JWKS_PATH: Final = "/protocol/openid-connect/certs"
"""Keycloak's JWKS endpoint under the issuer: the JWKS_URL derived from ISSUER."""
MAX_DECISION_CACHE_SECONDS: Final = 300.0
MAX_JWKS_TIMEOUT_SECONDS: Final = 10.0
"""A fetch runs in the background; past this it would only hold the single flight."""
MAX_UNKNOWN_KID_WAIT_SECONDS: Final = 2.0
"""A request waits on top of its own work: keep it well under nginx's 3 s
``proxy_read_timeout`` of the auth subrequest (nginx/snippets/authz-subrequest.conf)."""
MAX_LOCKOUT_THRESHOLD: Final = 1000
"""Each refusal reads its certificate's count file (at most 2x this many lines)."""
MAX_LOCKOUT_WINDOW_SECONDS: Final = 3600.0
MAX_LOCKOUT_SECONDS: Final = 86400.0
_NOTHING: Final[Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the decision depends on besides the event, the keys, the CRLs and the clock.

    Built in code (tests, the fuzzer) the values are checked the same way as
    from the environment (``__post_init__``), without the parsing.
    """

    client_ca_pem: str
    """The text of the CLIENT_CA_CERT file (read once, at start-up)."""
    client_cas: tuple[x509.Certificate, ...] = field(init=False, repr=False, compare=False)
    """``client_ca_pem`` parsed, once, when the settings are built: read on every
    request, so it is part of this value rather than parsed again (or memoized
    somewhere else)."""
    client_crl: str
    """Path of the CRL PEM file (``CLIENT_CRL``); read by ``CRLFileSource``, never here."""
    issuer: str
    audience: str
    jwks_url: str
    policy_path: str
    jwks_ca_bundle: str | None = None
    audit_log: str | None = None
    audit_sink_socket: str | None = None
    """The second audit sink's unix datagram socket (``verifier.auditsink``); unset: none."""
    assertion_key_file: str | None = None
    """The identity-assertion key (``verifier.assertion``); the Flask adapter requires it."""
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: float = 30.0
    max_token_lifetime_seconds: float = 3600.0
    max_token_bytes: int = 8192
    jwks_cooldown_seconds: float = 30.0
    jwks_max_age_seconds: float = 300.0
    jwks_max_staleness_seconds: float = 900.0
    jwks_timeout_seconds: float = 2.0
    jwks_unknown_kid_wait_seconds: float = 1.0
    require_verify_header: bool = True
    require_bound_tokens: bool = True
    lockout_dir: str | None = None
    """Where refused tokens are counted per certificate (``verifier.lockout``); None: no lockout."""
    lockout_threshold: int = 10
    lockout_window_seconds: float = 60.0
    lockout_seconds: float = 300.0
    """RFC 8705: a token must carry ``cnf.x5t#S256`` (``verifier.binding``)."""
    token_cache_size: int = 4096
    decision_cache_seconds: float = 0.0
    """Upper bound a front proxy may cache an ALLOW for (``X-Accel-Expires`` on the
    adapter's answer, never past ``valid_until``); 0 = answers say "do not cache"."""

    def __post_init__(self) -> None:
        """Refuse values that would silently weaken the checks, listing every one."""
        problems = [
            f"{spec.name}: {problem}"
            for spec in _SETTINGS
            if (value := getattr(self, spec.field)) is not None
            and (problem := spec.check(value)) is not None
        ]
        problems += _between_settings(
            self.jwks_max_age_seconds, self.jwks_max_staleness_seconds, lambda name: name
        )
        if problems:
            raise SettingsError(problems)
        object.__setattr__(self, "client_cas", issuing_cas(self.client_ca_pem))

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        also_allowed: Collection[str] = (),
        also_required: Mapping[str, str] = _NOTHING,
    ) -> Settings:
        """Settings from un-prefixed names (``{"ISSUER": ...}``); reads the CLIENT_CA_CERT file.

        ``also_allowed``: keys the caller reads itself (the Flask adapter's test
        hooks), accepted and ignored here; any other unknown key is refused.
        ``also_required``: optional settings this caller cannot run without,
        each with the reason given in the error.
        """
        fields, problems = _read(config, str, also_allowed, also_required)
        if problems:
            raise SettingsError(problems)
        return cls(**fields)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, also_required: Mapping[str, str] = _NOTHING
    ) -> Settings:
        """Settings from ``ZT_VERIFIER_*`` environment variables; other names are not
        looked at. ``also_required`` as for ``from_config``."""
        fields, problems = _read_env(environ, also_required)
        if problems:
            raise SettingsError(problems)
        return cls(**fields)


def settings_problems(
    environ: Mapping[str, str], *, also_required: Mapping[str, str] = _NOTHING
) -> list[str]:
    """Every reason ``Settings.from_env(environ, ...)`` would refuse; empty when it starts.

    For the ops tool, which prints them all. Reads the CLIENT_CA_CERT file, as
    the verifier does at start-up. The Flask adapter's extra requirements are
    ``verifier.app.ENV_REQUIRED`` (pass it as ``also_required``).
    """
    return _read_env(environ, also_required)[1]


def issuing_cas(pem: str) -> tuple[x509.Certificate, ...]:
    """Parse a PEM bundle of CA certificates; empty when it holds none or does not parse."""
    try:
        return tuple(x509.load_pem_x509_certificates(pem.encode("ascii")))
    except ValueError:
        return ()


# --- reading: one parser per type, one range check per setting ----------------------


def _read_env(
    environ: Mapping[str, str], also_required: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    values = {
        name.removeprefix(ENV_PREFIX): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX)
    }
    return _read(values, lambda name: ENV_PREFIX + name, (), also_required)


def _read(
    values: Mapping[str, Any],
    label: Callable[[str], str],
    also_allowed: Collection[str],
    also_required: Mapping[str, str],
) -> tuple[dict[str, Any], list[str]]:
    """``Settings`` fields from raw ``values``, and every problem, each line naming
    the setting as its source spells it (``label``)."""
    known = {spec.name: spec for spec in _SETTINGS}
    not_settings = set(also_required) - known.keys()
    if not_settings:
        raise ValueError(f"also_required names no setting: {sorted(not_settings)}")
    problems = [
        f"{label(name)}: unknown setting{_suggestion(name, [*known, *also_allowed], label)}"
        for name in values
        if name not in known and name not in also_allowed
    ]
    fields: dict[str, Any] = {}
    for spec in _SETTINGS:
        raw = values.get(spec.name)
        why = spec.required or also_required.get(spec.name, "")
        problem: str | None = None
        if raw is None:
            problem = f"required, not set ({why})" if why else None
        elif isinstance(raw, str) and not raw:
            problem = f"empty; expected {spec.expected}" + (f" ({why})" if why else "")
        else:
            try:
                value = spec.parse(raw)
            except ValueError as e:
                problem = f"{raw!r} is not {spec.expected}" + (f" ({e})" if str(e) else "")
            else:
                problem = spec.check(value)
                fields[spec.field] = value
        if problem is not None:
            problems.append(f"{label(spec.name)}: {problem}")
            fields.pop(spec.field, None)  # a refused value takes part in no other check
    defaults = Settings.__dataclass_fields__
    age, staleness = (
        fields.get(name, defaults[name].default if raw_is_unset else None)
        for name, raw_is_unset in (
            ("jwks_max_age_seconds", values.get("JWKS_MAX_AGE_SECONDS") is None),
            ("jwks_max_staleness_seconds", values.get("JWKS_MAX_STALENESS_SECONDS") is None),
        )
    )
    if age is not None and staleness is not None:
        problems += _between_settings(age, staleness, label)
    if values.get("JWKS_URL") is None and "issuer" in fields:
        fields["jwks_url"] = fields["issuer"] + JWKS_PATH
    return fields, problems


def _between_settings(
    max_age: float, max_staleness: float, label: Callable[[str], str]
) -> list[str]:
    """What is wrong between two settings (each alone in range)."""
    if max_staleness > max_age:
        return []
    return [
        f"{label('JWKS_MAX_STALENESS_SECONDS')}: {max_staleness:g} must be greater than "
        f"{label('JWKS_MAX_AGE_SECONDS')} ({max_age:g}), or keys would be refused "
        "before a refresh is even due"
    ]


def _suggestion(name: str, known: list[str], label: Callable[[str], str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {label(close[0])}?"
    return " (the known names are in the table of verifier/settings.py)"


def _text(raw: Any) -> str:
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    if not isinstance(raw, str):
        raise ValueError(f"got {type(raw).__name__}")
    if raw != raw.strip():
        raise ValueError("leading or trailing whitespace")
    return raw


def _pem_file(raw: Any) -> str:
    """The text of a PEM file of CA certificates, refused unless it holds one."""
    try:
        pem = Path(_text(raw)).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(getattr(e, "strerror", None) or str(e)) from e
    if not issuing_cas(pem):
        raise ValueError("it holds no certificate")
    return pem


def _pem_file_path(raw: Any) -> str:
    """The path of a PEM file of CA certificates, read once now so a wrong path stops
    the start instead of failing every JWKS fetch."""
    path = _text(raw)
    _pem_file(path)
    return path


def _seconds(raw: Any) -> float:
    """A finite number from a string (the environment) or a number (a config mapping)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"got {type(raw).__name__}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError from None
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _count(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f"got {type(raw).__name__}")
    try:
        return int(raw)
    except ValueError:
        raise ValueError from None


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = raw.strip().lower() if isinstance(raw, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError


def _algorithms(raw: Any) -> tuple[str, ...]:
    """A comma-separated string (the environment) or a list (a config mapping)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(a, str) for a in items):
        raise ValueError(f"got {type(raw).__name__}")
    names = tuple(a.strip() for a in items)
    if "" in names:
        raise ValueError("an empty name")
    return names


def _https_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname and not parts.query and not parts.fragment:
        return None
    return f"{value!r} is not an https:// URL without query or fragment"


def _not_empty(value: str) -> str | None:
    return None if value else "empty"


def _has_certificate(pem: str) -> str | None:
    return None if issuing_cas(pem) else "holds no PEM certificate"


def _allowed_algorithms(algorithms: tuple[str, ...]) -> str | None:
    """PyJWT's asymmetric algorithms only: ``none`` has no signature, and an HMAC
    key would be the JWKS's public key used as a shared secret (alg confusion)."""
    if not algorithms:
        return "empty; expected at least one algorithm"
    for alg in algorithms:
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            return f"algorithm {alg!r} is never allowed"
        if alg not in get_default_algorithms():
            return f"{alg!r} is not an algorithm PyJWT knows"
    return None


def _within(
    low: float, high: float = math.inf, *, above: bool = False
) -> Callable[[float], str | None]:
    """A range check; ``above``: ``low`` itself is out of range."""
    shown = f"> {low:g}" if above else f">= {low:g}"
    if high != math.inf:
        shown = f"{shown} and <= {high:g}" if above else f"{low:g}..{high:g}"

    def check(value: float) -> str | None:
        inside = (value > low if above else value >= low) and value <= high
        return None if inside and math.isfinite(value) else f"{value:g} is out of range ({shown})"

    return check


def _no_check(_value: Any) -> str | None:
    return None


@dataclass(frozen=True)
class _Setting:
    """One row of the table: how a raw value is parsed and what range it must be in."""

    name: str
    field: str
    expected: str
    """What a value must be, for "'abc' is not <expected>"."""
    parse: Callable[[Any], Any]
    """Raw value -> typed value, or ``ValueError`` (its text, if any, is a detail)."""
    check: Callable[[Any], str | None] = _no_check
    """Typed value -> what is wrong with it, or ``None``; also run on settings built in code."""
    required: str = ""
    """Why it has no default; empty for an optional setting."""


_SECONDS = "a number of seconds"
_COUNT = "a whole number"
_PATH = "a file path"
_PEM = "a readable PEM file of CA certificates"
_BOOLEAN = "a boolean (true/false, yes/no, on/off, 1/0)"
_SETTINGS: Final = (
    _Setting(
        "ISSUER", "issuer", "an https:// URL", _text, _https_url, "the exact iss of accepted tokens"
    ),
    _Setting(
        "AUDIENCE",
        "audience",
        "a client id",
        _text,
        _not_empty,
        "this API's client id: must be in aud",
    ),
    _Setting("JWKS_URL", "jwks_url", "an https:// URL", _text, _https_url),
    _Setting("JWKS_CA_BUNDLE", "jwks_ca_bundle", _PEM, _pem_file_path, _not_empty),
    _Setting(
        "CLIENT_CA_CERT",
        "client_ca_pem",
        _PEM,
        _pem_file,
        _has_certificate,
        "PEM file of the client issuing CA certificate(s)",
    ),
    _Setting(
        "CLIENT_CRL",
        "client_crl",
        _PATH,
        _text,
        _not_empty,
        "PEM file of the client CAs' CRLs, the one nginx's ssl_crl loads",
    ),
    _Setting(
        "POLICY_PATH",
        "policy_path",
        _PATH,
        _text,
        _not_empty,
        "the route policy JSON; there is no default policy",
    ),
    _Setting("AUDIT_LOG", "audit_log", _PATH, _text, _not_empty),
    _Setting("AUDIT_SINK_SOCKET", "audit_sink_socket", _PATH, _text, _not_empty),
    _Setting("ASSERTION_KEY_FILE", "assertion_key_file", _PATH, _text, _not_empty),
    _Setting(
        "ALGORITHMS",
        "algorithms",
        "a comma-separated list of JWS algorithms",
        _algorithms,
        _allowed_algorithms,
    ),
    _Setting("LEEWAY_SECONDS", "leeway_seconds", _SECONDS, _seconds, _within(0)),
    _Setting(
        "MAX_TOKEN_LIFETIME_SECONDS", "max_token_lifetime_seconds", _SECONDS, _seconds, _within(0)
    ),
    _Setting("MAX_TOKEN_BYTES", "max_token_bytes", _COUNT, _count, _within(1)),
    _Setting("JWKS_COOLDOWN_SECONDS", "jwks_cooldown_seconds", _SECONDS, _seconds, _within(0)),
    _Setting("JWKS_MAX_AGE_SECONDS", "jwks_max_age_seconds", _SECONDS, _seconds, _within(0)),
    _Setting(
        "JWKS_MAX_STALENESS_SECONDS",
        "jwks_max_staleness_seconds",
        _SECONDS,
        _seconds,
        _within(0, above=True),
    ),
    _Setting(
        "JWKS_TIMEOUT_SECONDS",
        "jwks_timeout_seconds",
        _SECONDS,
        _seconds,
        _within(0, MAX_JWKS_TIMEOUT_SECONDS, above=True),
    ),
    _Setting(
        "JWKS_UNKNOWN_KID_WAIT_SECONDS",
        "jwks_unknown_kid_wait_seconds",
        _SECONDS,
        _seconds,
        _within(0, MAX_UNKNOWN_KID_WAIT_SECONDS),
    ),
    _Setting("LOCKOUT_DIR", "lockout_dir", _PATH, _text, _not_empty),
    _Setting(
        "LOCKOUT_THRESHOLD",
        "lockout_threshold",
        _COUNT,
        _count,
        _within(0, MAX_LOCKOUT_THRESHOLD),
    ),
    _Setting(
        "LOCKOUT_WINDOW_SECONDS",
        "lockout_window_seconds",
        _SECONDS,
        _seconds,
        _within(1, MAX_LOCKOUT_WINDOW_SECONDS),
    ),
    _Setting(
        "LOCKOUT_SECONDS", "lockout_seconds", _SECONDS, _seconds, _within(1, MAX_LOCKOUT_SECONDS)
    ),
    _Setting("REQUIRE_VERIFY_HEADER", "require_verify_header", _BOOLEAN, _flag),
    _Setting("REQUIRE_BOUND_TOKENS", "require_bound_tokens", _BOOLEAN, _flag),
    _Setting("TOKEN_CACHE_SIZE", "token_cache_size", _COUNT, _count, _within(0)),
    _Setting(
        "DECISION_CACHE_SECONDS",
        "decision_cache_seconds",
        _SECONDS,
        _seconds,
        _within(0, MAX_DECISION_CACHE_SECONDS),
    ),
)
