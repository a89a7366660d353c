"""Protected API: trusts the X-Auth-* identity headers only because nothing but
nginx can reach it (gunicorn listens on a unix socket in the state folder,
mode 0600 folder; nginx sets and clears those headers on every request).

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


def _caller() -> dict[str, Any]:
    h = request.headers
    split = lambda v: [r for r in (v or "").split(",") if r]  # noqa: E731
    return {
        "token_azp": h.get("X-Auth-Azp"),
        "token_sub": h.get("X-Auth-Sub"),
        "tls_client_cn": h.get("X-Auth-Cert-CN"),
        "tls_client_serial": h.get("X-Auth-Cert-Serial"),
        "realm_roles": split(h.get("X-Auth-Roles")),
        "client_roles": split(h.get("X-Auth-Client-Roles")),
        "org": h.get("X-Auth-Org"),
        "department": h.get("X-Auth-Department"),
        "request_id": h.get("X-Request-ID"),
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
