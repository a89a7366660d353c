"""A compromised (or careless) API cannot make nginx serve what the verifier never saw.

nginx acts on ``X-Accel-Redirect`` from an upstream by serving another URI
internally; the auth subrequest of that internal redirect still carries the
ORIGINAL ``$request_uri``, so the verifier would approve ``/api/resource`` while
nginx served ``/api/admin/stats``. The production template ignores every
``X-Accel-*`` control header from the API (nginx/snippets/identity-headers.conf).

The test renders the production template into a throw-away nginx of its own on
``PORT`` whose API upstream is an "evil" API answering every request with
``X-Accel-Redirect: /api/admin/stats``; the real verifier decides as usual. The
evil API must see exactly one request, for the URI the verifier approved.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socketserver
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest
import requests

from scripts import config
from scripts.services import nginx, procs
from tests.attacks.conftest import SERVER_CA, bearer, cert_of

PORT = 8456
FOLDER = config.STATE / "test" / "upstream-control-headers"


class _EvilAPI(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = b'{"evil": true}\n'
        self.send_response(200)
        self.send_header("X-Accel-Redirect", "/api/admin/stats")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # an AF_UNIX peer has no address; http.server wants one
        request, _ = super().get_request()
        return request, ("unix", 0)


@pytest.fixture
def evil_gateway(stack: None) -> Iterator[list[str]]:
    """nginx (production template) on PORT in front of the evil API; yields what it saw."""
    shutil.rmtree(FOLDER, ignore_errors=True)
    FOLDER.mkdir(parents=True)
    sock = FOLDER / "evil-api.sock"
    server = _UnixServer(str(sock), _EvilAPI)
    if os.geteuid() == 0:  # nginx's workers run as another user, in the sockets' group
        shutil.chown(sock, group=config.GATEWAY_GROUP)
        os.chmod(sock, 0o660)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service = config.Service("nginx", PORT, run_dir=FOLDER, log_dir=FOLDER)
    values = nginx.nginx_values(
        nginx.authz_cache_values(False, FOLDER / "cache", FOLDER / "authz-cache.conf"),
        run_dir=FOLDER,
        log_dir=FOLDER,
        tmp_dir=FOLDER / "tmp",
        port=PORT,
        health_port=PORT + 1,
        api_socket=sock,
    )
    conf = FOLDER / "nginx.conf"
    nginx.render_nginx(nginx.NGINX_TEMPLATE, values, conf)
    _EvilAPI.seen = []
    procs.start(service, ["nginx", "-c", str(conf)])
    try:
        yield _EvilAPI.seen
    finally:
        procs.stop(service)
        server.shutdown()
        server.server_close()
        shutil.rmtree(FOLDER, ignore_errors=True)


def _get(path: str, token: str) -> requests.Response:
    url = f"https://localhost:{PORT}{path}"
    for _ in range(50):  # until the new nginx answers (bounded)
        try:
            return requests.get(
                url,
                cert=cert_of("python-client"),
                headers=bearer(token),
                verify=SERVER_CA,
                timeout=10,
            )
        except requests.ConnectionError:
            threading.Event().wait(0.1)
    raise AssertionError(f"nginx on {PORT} never answered; see {FOLDER}/nginx-error.log")


def test_an_api_answering_x_accel_redirect_cannot_make_nginx_serve_another_uri(
    evil_gateway, token_for
):
    r = _get("/api/resource", token_for("python-client"))
    assert r.status_code == 200
    assert r.json() == {"evil": True}  # the API's own answer, not a redirected one
    assert "X-Accel-Redirect" not in r.headers
    assert evil_gateway == ["/api/resource"], "nginx followed the API's X-Accel-Redirect"
