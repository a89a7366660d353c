"""Flask adapter: nginx ``auth_request`` subrequest in, 204/401/403 out.

Thin on purpose: build the event (``verifier.subrequest``), let the CRL source
re-check its file (``refresh_if_changed``: at most one ``stat`` a second, a
re-read only when the file changed), call the pure core
(``verifier.decision.decide``) with the objects ``create_app`` built once (key
source, CRL source, caches), write the audit line (``verifier.auditlog``, fail
closed), translate the response into HTTP. Serve it with
``gunicorn --bind unix:<sock> 'verifier.app:create_app()'``.

Routes
  ``/_authz`` (any method)  204 + ``X-Auth-*`` identity headers when allowed;
                            401 ``{"error":"unauthorized"}``, 403 ``{"error":"forbidden"}``
                            or 503 ``{"error":"unavailable"}`` when denied. Every answer
                            carries ``X-Auth-Reason`` (for nginx's log; never
                            forwarded to clients) and ``X-Accel-Expires``:
                            how many seconds nginx's decision cache may
                            keep it (0 for every deny; see ``cacheable_seconds``).
                            A locked-out certificate (``verifier.lockout``): 403 +
                            ``X-Auth-Reason: locked_out``, ``Retry-After`` and
                            ``Cache-Control: max-age`` (nginx's lockout cache), both
                            the seconds left; nginx answers the client 429.
  ``GET /metrics``          Prometheus text: decisions, latency, JWKS, token cache
                            (``verifier.metrics``; every gunicorn worker summed).
  ``GET /healthz``          200 ``{"status":"ok","problems":[],"jwks_keys":N,...,"pid":P}``
                            when keys are loaded and fresh, the audit log is
                            writable and copies to the audit sink succeed;
                            503 ``{"status":"unhealthy","problems":[...]}`` otherwise
                            (``verifier.health``). Starts a due JWKS refresh in the
                            background, never waits for it.

Configuration: without ``test_config`` (gunicorn, production) the settings
are read strictly from ``ZT_VERIFIER_*`` environment variables by
``Settings.from_env``: an unknown name, a missing required setting or a bad
value stops the start with one error listing every problem. This adapter also
needs ``AUDIT_LOG`` and ``ASSERTION_KEY_FILE`` (``ENV_REQUIRED``).
``create_app(test_config)`` takes the same names without prefix
(``{"ISSUER": ...}``, ``Settings.from_config``), and refuses unknown keys too,
except those in ``TEST_CONFIG_KEYS``: three hooks for tests only, which the
environment can never set, ``KEY_SOURCE`` (a ``KeySource``), ``REVOCATION``
(a ``RevocationSource``; otherwise a ``CRLFileSource`` of ``CLIENT_CRL``) and
``CLOCK`` (a callable returning epoch seconds), and Flask's own ``TESTING``.

Answer headers when allowed: ``X-Auth-Subject`` (the workload: cert CN == azp,
percent-encoded outside printable ASCII), ``X-Auth-Identity`` (every
``verifier.identity.Identity`` field as one ASCII-escaped JSON object;
``Identity.to_header``),
``X-Auth-Assertion`` (``verifier.assertion``: a MAC over that identity, the
method and the raw URI, which the API verifies) and ``X-Auth-Reason`` (``ok``).
One JSON header instead of a header per field: nginx copies a few variables
instead of ten, the API parses one header, and a role list is a list (a comma in
a role name cannot split it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote

from flask import Blueprint, Flask, Response, current_app, request

from verifier import assertion, metrics
from verifier.audit import audit_record
from verifier.auditlog import AuditWriter
from verifier.auditsink import SinkSender
from verifier.decision import Decider
from verifier.errors import AuditUnavailable
from verifier.event import AuthorizerEvent
from verifier.health import health_report
from verifier.identity import HEADER as IDENTITY_HEADER
from verifier.lockout import answer_headers as lockout_headers
from verifier.lru import BoundedLRU
from verifier.policy import HTTP_METHODS
from verifier.response import DENY, AuthorizerResponse
from verifier.settings import Settings
from verifier.subrequest import PEM_CACHE_SIZE, event_from_subrequest

log = logging.getLogger(__name__)
bp = Blueprint("verifier", __name__)

ALL_METHODS = list(HTTP_METHODS)  # a policy rule can name exactly these
ALLOW_HTTP_STATUS = 204
_DENY_BODIES = {401: "unauthorized", 403: "forbidden", 503: "unavailable"}
_WIRE_STATUS = {429: 403}
"""nginx's ``auth_request`` turns any answer but 2xx/401/403 into a 500: a lockout
(429) is sent as 403 + ``X-Auth-Reason: locked_out``, and nginx answers the client
429 (nginx/snippets/lockout-refusal.conf)."""
# Printable ASCII except '%': everything else is percent-encoded in X-Auth-* values.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
SUBJECT_HEADER = "X-Auth-Subject"
BOOT_WAIT_SLACK_SECONDS = 1.0
"""A booting worker waits for its first JWKS fetch up to its deadline plus this."""


@dataclasses.dataclass(frozen=True)
class Verifier:
    """What one app instance decides with; built once in ``create_app``, all together."""

    decider: Decider
    """Settings, policy, key source, CRL source and this app's own caches."""
    escaped_pems: BoundedLRU[str, str]
    """``X-Client-Cert`` values already URL-decoded (``event_from_subrequest``)."""
    clock: Callable[[], float]
    assertion_key: bytes | None = None
    """Signs ``X-Auth-Assertion`` on every allow; None only in tests that inject none."""
    audit: AuditWriter = dataclasses.field(default_factory=lambda: AuditWriter(None))
    """Appends each decision's line to the chained audit file (and the sink's copy)."""


TEST_CONFIG_KEYS: Final = ("KEY_SOURCE", "REVOCATION", "CLOCK", "TESTING")
"""The keys of ``test_config`` that are not settings: the test hooks (read by
``create_app``) and Flask's ``TESTING``. The one allowlist; any other key that is
not a setting is refused."""
ENV_REQUIRED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "LOCKOUT_DIR": "its workers count refused tokens per certificate there "
        "(verifier/lockout.py; LOCKOUT_THRESHOLD=0 turns the lockout off)",
        "AUDIT_LOG": "this adapter audits every decision; without a log it denies every request",
        "ASSERTION_KEY_FILE": "the API refuses every request without the verifier's "
        "identity assertion (verifier/assertion.py)",
    }
)
"""Settings optional in ``Settings`` that this adapter, started from the environment,
cannot serve without (pass them to ``settings_problems`` to validate a deployment)."""


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Application factory; fails at start-up on missing CA, policy or bad settings.

    A missing or bad CRL FILE does not stop the start: it is logged here and
    every request is refused with ``crl_unavailable`` until the file is fixed
    (the file is re-checked per request, so no restart is needed).
    """
    app = Flask(__name__)
    injected: Mapping[str, Any] = {}  # objects can only be injected by code, never by env
    if test_config is None:
        settings = Settings.from_env(os.environ, also_required=ENV_REQUIRED)
    else:
        settings = Settings.from_config(test_config, also_allowed=TEST_CONFIG_KEYS)
        app.testing = bool(test_config.get("TESTING", False))
        injected = test_config
    key_file = settings.assertion_key_file
    app.extensions["verifier"] = Verifier(
        decider=Decider.from_settings(
            settings, keys=injected.get("KEY_SOURCE"), revocation=injected.get("REVOCATION")
        ),
        escaped_pems=BoundedLRU(PEM_CACHE_SIZE),
        clock=injected.get("CLOCK") or time.time,
        assertion_key=assertion.load_key(key_file) if key_file else None,
        audit=AuditWriter(
            settings.audit_log,
            SinkSender(settings.audit_sink_socket) if settings.audit_sink_socket else None,
        ),
    )
    verifier = app.extensions["verifier"]
    metrics.install(app, verifier.decider, verifier.clock)  # GET /metrics; counts the boot fetch
    verifier.decider.revocation.refresh_if_changed(verifier.clock())  # logs a bad file at boot
    if test_config is None:
        # Each gunicorn worker loads Keycloak's keys as it boots, so no worker
        # meets its first request cold (nginx keeps connections to one worker
        # alive; a cold one would answer jwks_unavailable if Keycloak were down).
        # A failed fetch is only logged: the cooldown and fail-closed rules apply.
        # The fetch runs on the key source's refresh thread under its own total
        # deadline; the boot waits for it (a little longer than that deadline).
        wait = verifier.decider.settings.jwks_timeout_seconds + BOOT_WAIT_SLACK_SECONDS
        verifier.decider.keys.refresh_if_stale(verifier.clock(), wait=wait)
    app.register_blueprint(bp)
    return app


def _verifier() -> Verifier:
    return current_app.extensions["verifier"]


@bp.route("/_authz", methods=ALL_METHODS, provide_automatic_options=False)
def authz() -> Response:
    """Decide the subrequest, audit it, answer nginx."""
    verifier = _verifier()
    started = time.perf_counter()
    raw_event = event_from_subrequest(request.headers.items(), pems=verifier.escaped_pems)
    event = AuthorizerEvent(raw_event)
    now = verifier.clock()
    verifier.decider.revocation.refresh_if_changed(now)
    response = verifier.decider.decide(event, now)
    latency_ms = (time.perf_counter() - started) * 1000
    record = audit_record(event, response, now=now, latency_ms=latency_ms)
    try:
        verifier.audit.append(record)
    except AuditUnavailable as e:
        response = dataclasses.replace(
            response, decision=DENY, status=e.status, reason=e.reason, detail=e.detail
        )
        # The only trail left: the record (no token in it) on gunicorn's error log.
        log.error("audit write failed (%s); denying: %s", e.detail, json.dumps(record))
    verifier.decider.lockouts.record(response, now)  # counts refused tokens per certificate
    metrics.observe(event, response, time.perf_counter() - started)
    limit = verifier.decider.settings.decision_cache_seconds
    cache_seconds = cacheable_seconds(response, limit, now)
    signer = _signer(verifier, event, now, cache_seconds)
    return _answer(response, cache_seconds, signer, lockout_headers(response, now))


def cacheable_seconds(response: AuthorizerResponse, limit: float, now: float) -> int:
    """Whole seconds nginx's decision cache may reuse this answer; 0 = never cache it.

    Only an allow (a deny is always decided afresh and audited), at most
    ``limit``, and ending a second before ``valid_until`` (token ``exp``, cert
    ``notAfter`` or the CRL's ``nextUpdate``): nginx adds these seconds to its own
    once-per-event-loop clock.
    """
    if not response.allowed or limit <= 0:
        return 0
    return max(0, int(min(limit, response.valid_until - now - 1)))


@bp.get("/healthz")
def healthz() -> Response:
    """200 only when this worker can decide AND record: Keycloak's keys loaded and
    within the staleness bound, the audit log writable (``verifier.health``); 503
    otherwise, the body naming every problem. Either way the body names the worker
    (``pid``): the bring-up waits until every worker of a new master answered 200.
    A probe starts a due JWKS refresh in the background and never waits for it."""
    verifier = _verifier()
    now = verifier.clock()
    verifier.decider.keys.refresh_if_stale(now)
    report = health_report(verifier.decider, now, sink=verifier.audit.sink)
    return _json(200 if report["status"] == "ok" else 503, {**report, "pid": os.getpid()})


class _NoContent(Response):
    """A body-less answer (the allow's 204): no Content-Type header either."""

    default_mimetype = None


Signer = Callable[[str], str]
"""Identity JSON -> its ``X-Auth-Assertion`` for the request being answered."""


def _signer(verifier: Verifier, event: AuthorizerEvent, now: float, lifetime: int) -> Signer:
    """Assertions bound to this request's method and raw URI, valid while nginx may
    reuse the answer (``lifetime``) plus ``assertion.SLACK_SECONDS``."""
    key = verifier.assertion_key
    if key is None:
        return lambda _identity: ""
    method, uri = event.http_method, event.path
    return lambda identity: assertion.sign(key, identity, method, uri, now=now, lifetime=lifetime)


def _answer(
    response: AuthorizerResponse,
    cache_seconds: int,
    signer: Signer,
    extra: list[tuple[str, str]],
) -> Response:
    """The HTTP answer to nginx, every header in one list (no per-header rewrites)."""
    headers = [("X-Auth-Reason", response.reason), ("X-Accel-Expires", str(cache_seconds))]
    headers += extra
    if response.allowed:
        identity = response.identity
        identity_json = identity.to_header()
        headers.append((SUBJECT_HEADER, _header_value(identity.subject)))
        headers.append((IDENTITY_HEADER, identity_json))
        headers.append((assertion.HEADER, signer(identity_json)))
        return _NoContent(status=ALLOW_HTTP_STATUS, headers=headers)
    status = _WIRE_STATUS.get(response.status, response.status)
    status = status if status in _DENY_BODIES else 401
    if status == 401:
        headers.append(("WWW-Authenticate", "Bearer"))
    return _json(status, {"error": _DENY_BODIES[status]}, headers)


def _header_value(value: str) -> str:
    """``value`` as is when it is printable ASCII without '%', else percent-encoded."""
    if value.isascii() and value.isprintable() and "%" not in value:
        return value  # the common case, and exactly what quote() would return
    return quote(value, safe=_HEADER_SAFE)


def _json(
    status: int, body: Mapping[str, Any], headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )
