"""Protected API: serves only requests whose identity the verifier asserted.

``X-Auth-Identity`` is the verifier's JSON object of the caller's identity, read
into the verifier's own schema (``verifier.identity.Identity``: ``subject``,
``azp``, ``sub``, ``jti``, ``cert_cn``, ``cert_serial``, ``cert_subject_dn``,
``cert_issuer_dn``, ``realm_roles``, ``client_roles``, ``org``, ``department``);
every answer and request-log line carries exactly those fields, under those
names, plus ``request_id`` and ``traceparent`` (the client's W3C trace context as
nginx validated it, ``""`` when absent or malformed). ``X-Auth-Subject`` names
the workload. A header proves nothing about who wrote it, and being reachable only through nginx (a
unix socket of the gateway's group) is one layer, not a proof: every request
must also carry the verifier's ``X-Auth-Assertion`` (``verifier.assertion``: a
short-lived MAC over the identity, the method and the raw URI), or it is refused
with 401 ``{"error":"unauthorized"}`` and logged with the reason
(``assertion_missing``, ``assertion_malformed``, ``assertion_mismatch``,
``assertion_expired``). ``/healthz`` is the one unauthenticated route.

Settings (environment, all ``ZT_API_*``; an unknown one is refused at start):
  ``ZT_API_ASSERTION_KEY_FILE``  the key shared with the verifier (required)
  ``ZT_API_REQUEST_LOG``         where every received request is logged (optional)
  ``ZT_API_INSECURE_SKIP_ASSERTION=1``  benchmark only: serve without checking
                                 (``make bench``'s baseline, which has no verifier)

Routes
  GET  /api/resource                 the caller's identity as the gateway proved it
  POST /api/resource                 an operator-only write (echoes the JSON body)
  GET  /api/admin/stats              admin-only
  GET  /api/tenants/<org>/resource   tenant-scoped read (the verifier checks org)
  GET  /healthz                      liveness (reachable only through the socket)
  GET  /metrics                      Prometheus text (``api.metrics``: answered before the
                                     routes, never logged; not to a request via the public
                                     listener)

Every request the API receives is appended as one JSON line to ``API_REQUEST_LOG``
(request id, method, path, caller, and ``refused`` with the reason when it was),
so tests can prove a refused request never reached a route.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from api.metrics import APIMetrics
from verifier import assertion
from verifier.identity import HEADER as IDENTITY_HEADER
from verifier.identity import Identity

bp = Blueprint("api", __name__)
_log_lock = threading.Lock()
ENV_PREFIX = "ZT_API_"
ENV_NAMES = {"ASSERTION_KEY_FILE", "REQUEST_LOG", "INSECURE_SKIP_ASSERTION"}
UNAUTHENTICATED_ROUTES = frozenset({"/healthz"})


def _caller() -> dict[str, Any]:
    """The caller as the verifier proved it, and this request's id.

    Only nginx can reach this API and it always overwrites ``X-Auth-Identity``
    with the verifier's answer (and the assertion check below proves it did);
    anything but a JSON object (which nginx never sends) is nobody: every
    field empty, rather than a crash.
    """
    identity = Identity.from_header(request.headers.get(IDENTITY_HEADER))
    return {
        **identity.asdict(),
        "request_id": request.headers.get("X-Request-ID"),
        # The client's W3C trace context, as nginx validated it (absent: "").
        "traceparent": request.headers.get("traceparent", ""),
    }


def _raw_uri() -> str:
    """The request target as the client sent it (nginx passes it on unchanged)."""
    return request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path


def _refusal() -> str | None:
    """Why this request may not be served (a reason code), or None."""
    key = current_app.config["ASSERTION_KEY"]
    if key is None or request.path in UNAUTHENTICATED_ROUTES:
        return None
    try:
        assertion.verify(
            key,
            request.headers.get(assertion.HEADER),
            request.headers.get(IDENTITY_HEADER, ""),
            request.method,
            _raw_uri(),
            now=current_app.config["CLOCK"](),
        )
    except assertion.AssertionInvalid as e:
        return e.reason
    return None


@bp.before_app_request
def _authenticate_and_record() -> Response | None:
    g.caller = _caller()
    refused = _refusal()
    path = current_app.config.get("API_REQUEST_LOG")
    if path:
        record = {"time": time.time(), "method": request.method, "path": request.path}
        record.update(g.caller)
        if refused:
            record["refused"] = refused
        with _log_lock, open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    if refused:
        return Response('{"error":"unauthorized"}\n', 401, mimetype="application/json")
    return None


@bp.get("/api/resource")
def read_resource():
    return jsonify({"resource": "demo", **g.caller})


@bp.post("/api/resource")
def write_resource():
    body = request.get_json(silent=True)
    return jsonify({"written": body, **g.caller}), 201


@bp.get("/api/admin/stats")
def admin_stats():
    return jsonify({"admin": True, **g.caller})


@bp.get("/api/tenants/<org>/resource")
def tenant_resource(org: str):
    return jsonify({"tenant": org, **g.caller})


@bp.get("/healthz")
def healthz():
    """Liveness, and which worker answered (see verifier/app.py healthz)."""
    return jsonify({"status": "ok", "pid": os.getpid()})


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``API_REQUEST_LOG`` and ``ASSERTION_KEY`` from ``ZT_API_*``; strict about names."""
    given = {k[len(ENV_PREFIX) :]: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    unknown = sorted(set(given) - ENV_NAMES)
    if unknown:
        names = ", ".join(ENV_PREFIX + n for n in unknown)
        raise ValueError(f"unknown setting(s) {names}; known: {', '.join(sorted(ENV_NAMES))}")
    skip = given.get("INSECURE_SKIP_ASSERTION", "")
    if skip not in ("", "0", "1"):
        raise ValueError(f"{ENV_PREFIX}INSECURE_SKIP_ASSERTION must be 0 or 1, not {skip!r}")
    key_file = given.get("ASSERTION_KEY_FILE")
    if skip == "1":
        key = None
    elif not key_file:
        raise ValueError(
            f"{ENV_PREFIX}ASSERTION_KEY_FILE is required: the key the verifier's identity "
            "assertions are checked with (the bring-up generates it in the state folder)"
        )
    else:
        key = assertion.load_key(key_file)
    return {"API_REQUEST_LOG": given.get("REQUEST_LOG"), "ASSERTION_KEY": key}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The API; settings from ``ZT_API_*`` unless ``test_config`` gives them
    (``ASSERTION_KEY``: bytes, or None for no check; ``API_REQUEST_LOG``; ``CLOCK``)."""
    app = Flask(__name__)
    app.config["CLOCK"] = time.time
    if test_config is None:
        app.config.update(settings_from_env(os.environ))
    else:
        app.config.update({"ASSERTION_KEY": None, "API_REQUEST_LOG": None, **test_config})
    app.register_blueprint(bp)
    app.wsgi_app = APIMetrics().wrap(app.wsgi_app)  # type: ignore[method-assign]
    return app
