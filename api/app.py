"""Protected API: trusts the X-Auth-* identity headers only because nothing but
nginx can reach it (gunicorn listens on a unix socket in the state folder,
mode 0600 folder; nginx sets and clears those headers on every request).
``X-Auth-Identity`` is the verifier's JSON object of the caller's identity
(``azp``, ``sub``, ``cert_cn``, ``cert_serial``, ``realm_roles``, ``client_roles``,
``org``, ``department``, ...); ``X-Auth-Subject`` names the workload.

Routes
  GET  /api/resource                 the caller's identity as the gateway proved it
  POST /api/resource                 an operator-only write (echoes the JSON body)
  GET  /api/admin/stats              admin-only
  GET  /api/tenants/<org>/resource   tenant-scoped read (the verifier checks org)
  GET  /healthz                      liveness (reachable only through the socket)

Every request the API receives is appended as one JSON line to ``API_REQUEST_LOG``
(request id, method, path, caller) so tests can prove a refused request never
reached it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request

bp = Blueprint("api", __name__)
_log_lock = threading.Lock()


def _identity() -> dict[str, Any]:
    """The verifier's ``X-Auth-Identity`` JSON object; ``{}`` when nginx sent none.

    Only nginx can reach this API and it always overwrites the header with the
    verifier's answer, so it is trusted as is; anything but a JSON object (which
    nginx never sends) counts as no identity rather than a crash.
    """
    try:
        identity = json.loads(request.headers.get("X-Auth-Identity") or "{}")
    except ValueError:
        return {}
    return identity if isinstance(identity, dict) else {}


def _caller() -> dict[str, Any]:
    identity = _identity()
    return {
        "token_azp": identity.get("azp"),
        "token_sub": identity.get("sub"),
        "tls_client_cn": identity.get("cert_cn"),
        "tls_client_serial": identity.get("cert_serial"),
        "realm_roles": identity.get("realm_roles", []),
        "client_roles": identity.get("client_roles", []),
        "org": identity.get("org"),
        "department": identity.get("department"),
        "request_id": request.headers.get("X-Request-ID"),
    }


@bp.before_app_request
def _record() -> None:
    g.caller = _caller()
    path = current_app.config.get("API_REQUEST_LOG")
    if not path:
        return
    line = json.dumps(
        {"time": time.time(), "method": request.method, "path": request.path, **g.caller}
    )
    with _log_lock, open(path, "a") as fh:
        fh.write(line + "\n")


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
    return jsonify({"status": "ok"})


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config["API_REQUEST_LOG"] = os.environ.get("ZT_API_REQUEST_LOG")
    if test_config:
        app.config.update(test_config)
    app.register_blueprint(bp)
    return app
