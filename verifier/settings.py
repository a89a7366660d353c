"""The verifier's configuration, as one frozen value.

Why frozen: the decision is a pure function of (event, keys, policy, settings,
revocation, now); settings that could change under a running request would
break that. Files that change while the verifier runs (the CRL file) are named
here by path only and read by the object that owns them
(``verifier.revocation.CRLFileSource``).

Every field can be set from the environment with the ``ZT_VERIFIER_`` prefix
(``ZT_VERIFIER_ISSUER=...``) or from a mapping of the same names without the
prefix (the Flask config, ``create_app(test_config)``):

==========================  ===========================================================
name                        meaning (default)
==========================  ===========================================================
ISSUER                      exact ``iss`` of accepted tokens
                            (``https://localhost:8443/realms/zerotrust``)
AUDIENCE                    this API's client id: must be in ``aud``; its client roles
                            are read from ``resource_access[AUDIENCE]`` (``zerotrust-api``)
JWKS_URL                    Keycloak's JWKS endpoint (``<ISSUER>/protocol/openid-connect/certs``)
JWKS_CA_BUNDLE              PEM file of the SERVER CA used to verify the JWKS endpoint's
                            TLS certificate (unset: the system trust store)
CLIENT_CA_CERT              PEM file of the CLIENT issuing CA certificate(s); a client
                            cert must be issued directly by one of them (required)
CLIENT_CRL                  PEM file of the CLIENT CAs' CRLs (``BEGIN X509 CRL`` blocks:
                            the root's and one per issuing CA), the same file nginx's
                            ``ssl_crl`` loads; re-read when it changes (checked at most
                            once a second). A certificate is refused when it or its
                            issuing CA is listed (401), and the request is refused with
                            503 when the file is unusable or has no current CRL for
                            either issuer (required, no default)
POLICY_PATH                 route policy JSON (``verifier/policy.json``)
AUDIT_LOG                   file the Flask adapter appends audit JSON lines to; unset
                            means every request is denied with ``audit_unavailable``
ASSERTION_KEY_FILE          the key (hex, >= 32 bytes) of the identity assertion the
                            Flask adapter adds to every allow (``X-Auth-Assertion``,
                            ``verifier.assertion``), shared with the API; required by
                            the adapter when configured from the environment
ALGORITHMS                  comma-separated JWS ``alg`` allowlist (``RS256``); ``none``
                            and ``HS*`` are refused at start-up
LEEWAY_SECONDS              clock-skew leeway for exp/iat/nbf (30)
MAX_TOKEN_LIFETIME_SECONDS  largest accepted ``exp - iat``; 0 disables (3600)
MAX_TOKEN_BYTES             largest accepted token (8192)
JWKS_COOLDOWN_SECONDS       least time between two JWKS fetch attempts (30)
JWKS_MAX_AGE_SECONDS        age after which known keys are refreshed too (300)
JWKS_TIMEOUT_SECONDS        timeout of one JWKS fetch (2)
TOKEN_CACHE_SIZE            verified-token cache entries; 0 turns the cache off (4096).
                            See ``verifier.claims``: it skips only the parse and the
                            signature check of a token already verified with the same
                            key; every time/type/binding/policy check still runs
DECISION_CACHE_SECONDS      longest a front proxy may reuse an ALLOW (0..300; 0 = every
                            answer says ``X-Accel-Expires: 0``). The bring-up sets 30
                            for nginx's decision cache; never past token exp/cert end
REQUIRE_VERIFY_HEADER       require nginx's ``X-Client-Verify: SUCCESS`` (true). Set false
                            ONLY behind AWS API Gateway mutual TLS, whose events carry
                            no such header because the gateway rejects unverified
                            certificates itself; a header that is present must still
                            say ``SUCCESS``, and the issuer/validity/EKU checks remain
==========================  ===========================================================
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

ENV_PREFIX = "ZT_VERIFIER_"
DEFAULT_ISSUER = "https://localhost:8443/realms/zerotrust"
DEFAULT_POLICY_PATH = str(Path(__file__).with_name("policy.json"))
_CRL_REQUIRED = (
    "CLIENT_CRL (env ZT_VERIFIER_CLIENT_CRL: PEM file of the client CAs' CRLs) is required"
)


@dataclass(frozen=True)
class Settings:
    """Everything the decision depends on besides the event, the keys, the CRLs and the clock."""

    client_ca_pem: str
    client_crl: str
    """Path of the CRL PEM file (``CLIENT_CRL``); read by ``CRLFileSource``, never here."""
    issuer: str = DEFAULT_ISSUER
    audience: str = "zerotrust-api"
    jwks_url: str = DEFAULT_ISSUER + "/protocol/openid-connect/certs"
    jwks_ca_bundle: str | None = None
    policy_path: str = DEFAULT_POLICY_PATH
    audit_log: str | None = None
    assertion_key_file: str | None = None
    """The identity-assertion key (``verifier.assertion``); the Flask adapter requires it."""
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: float = 30.0
    max_token_lifetime_seconds: float = 3600.0
    max_token_bytes: int = 8192
    jwks_cooldown_seconds: float = 30.0
    jwks_max_age_seconds: float = 300.0
    jwks_timeout_seconds: float = 2.0
    require_verify_header: bool = True
    token_cache_size: int = 4096
    decision_cache_seconds: float = 0.0
    """Upper bound a front proxy may cache an ALLOW for (``X-Accel-Expires`` on the
    adapter's answer, never past ``valid_until``); 0 = answers say "do not cache"."""

    def __post_init__(self) -> None:
        """Refuse configurations that would silently weaken the checks."""
        if not self.algorithms:
            raise ValueError("ALGORITHMS must name at least one algorithm")
        for alg in self.algorithms:
            if alg.lower() == "none" or alg.upper().startswith("HS"):
                raise ValueError(f"algorithm {alg!r} is never allowed")
        if not self.issuer or not self.audience:
            raise ValueError("ISSUER and AUDIENCE must be set")
        if self.leeway_seconds < 0 or self.max_token_bytes <= 0:
            raise ValueError("LEEWAY_SECONDS and MAX_TOKEN_BYTES must be positive")
        if not 0 <= self.decision_cache_seconds <= 300:
            raise ValueError("DECISION_CACHE_SECONDS must be within 0..300")
        if not issuing_cas(self.client_ca_pem):
            raise ValueError("CLIENT_CA_CERT holds no certificate")
        if not self.client_crl:
            raise ValueError(_CRL_REQUIRED)

    @property
    def client_cas(self) -> tuple[x509.Certificate, ...]:
        """The parsed client issuing CAs (parsed once per PEM text)."""
        return issuing_cas(self.client_ca_pem)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Build settings from un-prefixed names; reads the CLIENT_CA_CERT file."""
        ca_path = config.get("CLIENT_CA_CERT")
        if not ca_path:
            raise ValueError("CLIENT_CA_CERT (client issuing CA PEM file) is required")
        crl_path = config.get("CLIENT_CRL")
        if not crl_path:
            raise ValueError(_CRL_REQUIRED)
        issuer = str(config.get("ISSUER") or DEFAULT_ISSUER)
        fields: dict[str, Any] = {
            "client_ca_pem": Path(str(ca_path)).read_text(encoding="ascii"),
            "client_crl": str(crl_path),
            "issuer": issuer,
            "jwks_url": str(config.get("JWKS_URL") or issuer + "/protocol/openid-connect/certs"),
        }
        text = {
            "audience": "AUDIENCE",
            "jwks_ca_bundle": "JWKS_CA_BUNDLE",
            "policy_path": "POLICY_PATH",
            "audit_log": "AUDIT_LOG",
            "assertion_key_file": "ASSERTION_KEY_FILE",
        }
        for field, name in text.items():
            if config.get(name):
                fields[field] = str(config[name])
        numbers = {
            "leeway_seconds": "LEEWAY_SECONDS",
            "max_token_lifetime_seconds": "MAX_TOKEN_LIFETIME_SECONDS",
            "jwks_cooldown_seconds": "JWKS_COOLDOWN_SECONDS",
            "jwks_max_age_seconds": "JWKS_MAX_AGE_SECONDS",
            "jwks_timeout_seconds": "JWKS_TIMEOUT_SECONDS",
            "decision_cache_seconds": "DECISION_CACHE_SECONDS",
        }
        for field, name in numbers.items():
            if config.get(name) is not None:
                fields[field] = float(config[name])
        if config.get("REQUIRE_VERIFY_HEADER") is not None:
            fields["require_verify_header"] = _flag(config["REQUIRE_VERIFY_HEADER"])
        if config.get("MAX_TOKEN_BYTES") is not None:
            fields["max_token_bytes"] = int(config["MAX_TOKEN_BYTES"])
        if config.get("TOKEN_CACHE_SIZE") is not None:
            fields["token_cache_size"] = int(config["TOKEN_CACHE_SIZE"])
        algorithms = config.get("ALGORITHMS")
        if algorithms:
            if isinstance(algorithms, str):
                algorithms = algorithms.split(",")
            fields["algorithms"] = tuple(str(a).strip() for a in algorithms)
        return cls(**fields)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``ZT_VERIFIER_*`` environment variables."""
        return cls.from_config(
            {
                key[len(ENV_PREFIX) :]: value
                for key, value in environ.items()
                if key.startswith(ENV_PREFIX)
            }
        )


def _flag(value: Any) -> bool:
    """A boolean from JSON (Flask's prefixed env) or from a plain env string."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


@functools.lru_cache(maxsize=8)
def issuing_cas(pem: str) -> tuple[x509.Certificate, ...]:
    """Parse a PEM bundle of CA certificates; cached because it is on every request."""
    try:
        return tuple(x509.load_pem_x509_certificates(pem.encode("ascii")))
    except ValueError:
        return ()
