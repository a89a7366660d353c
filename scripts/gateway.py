"""The request path: verifier and API (gunicorn on unix sockets) and nginx.

nginx's config is a template (nginx/nginx.conf.tmpl) rendered into the state
folder and checked with `nginx -t` before any start or reload, like
ingress-nginx's testTemplate(). The client CA's CRLs are fetched from OpenBao
(unauthenticated endpoints) into one file for `ssl_crl`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
from pathlib import Path

import requests

from scripts import certs, config, procs
from scripts.files import read_json, write_atomic, write_secret, write_secret_json
from scripts.steps import StepFailed, say, wait_until

GUNICORN = Path(sys.prefix) / "bin" / "gunicorn"


def _socket_owner_args() -> list[str]:
    # nginx workers run as www-data when the master runs as root: the socket is
    # chowned to that group (gunicorn does this for unix sockets) and 0660.
    if os.geteuid() == 0:
        return ["--group", config.NGINX_WORKER_USER, "--umask", "0o117"]
    return ["--umask", "0o177"]


def _gunicorn(
    svc: config.Service,
    socket: Path,
    app: str,
    env: dict[str, str],
    *extra: str,
    worker_class: str = "gthread",
):
    socket.unlink(missing_ok=True)
    procs.start(
        svc,
        [
            str(GUNICORN),
            "--bind",
            f"unix:{socket}",
            "--workers",
            str(config.GUNICORN_WORKERS),
            # Keep-alive: nginx's upstream keepalive pools reuse the unix-socket
            # connections (the sync worker answers Connection: close).
            "--worker-class",
            worker_class,
            # Only gthread has a thread pool (KeepAliveWorker: one thread per connection).
            *(["--threads", str(config.GUNICORN_THREADS)] if worker_class == "gthread" else []),
            "--keep-alive",
            "30",
            "--timeout",
            "30",
            "--graceful-timeout",
            "10",
            "--error-logfile",
            "-",
            # gunicorn 27's control socket defaults to ~/.gunicorn/gunicorn.ctl,
            # shared by every gunicorn of this user; we manage ours by pid file.
            "--no-control-socket",
            *_socket_owner_args(),
            *extra,
            app,
        ],
        env=env,
        cwd=config.REPO,
    )


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=5)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self._path)


def _socket_answers(sock_path: Path, path: str) -> bool:
    """True when the gunicorn app behind ``sock_path`` answers 200 on ``path``."""
    if not sock_path.exists():
        return False
    conn = _UnixHTTPConnection(sock_path)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def verifier_env() -> dict[str, str]:
    identity = read_json(config.IDENTITY_OUTPUTS)
    return {
        "ZT_VERIFIER_ISSUER": identity["issuer"],
        "ZT_VERIFIER_AUDIENCE": identity["api_client_id"],
        "ZT_VERIFIER_JWKS_URL": identity["jwks_uri"],
        "ZT_VERIFIER_JWKS_CA_BUNDLE": str(config.SERVER_CA_BUNDLE),
        "ZT_VERIFIER_CLIENT_CA_CERT": str(config.CLIENT_ISSUING_CA),
        "ZT_VERIFIER_AUDIT_LOG": str(config.AUDIT_LOG),
        "ZT_VERIFIER_POLICY_PATH": str(config.VERIFIER_POLICY),
        # How long nginx's decision cache may keep an allow (X-Accel-Expires);
        # whether nginx caches at all is `zt authz-cache on|off`.
        "ZT_VERIFIER_DECISION_CACHE_SECONDS": str(config.AUTHZ_CACHE_MAX_SECONDS),
        "ZT_VERIFIER_MAX_TOKEN_LIFETIME_SECONDS": str(
            max(3600, int(identity["access_token_lifespan_seconds"]))
        ),
    }


def start_verifier() -> None:
    if not procs.running(config.VERIFIER):
        # A token at the verifier's 8 KiB limit plus "Bearer " exceeds gunicorn's
        # default 8190-byte header field limit; raise it so the verifier (not
        # gunicorn) refuses oversized tokens with its own reason code.
        _gunicorn(
            config.VERIFIER,
            config.VERIFIER_SOCKET,
            "verifier.app:create_app()",
            verifier_env(),
            "--limit-request-field_size",
            "16384",
            # A thread per nginx connection, no per-request hand-off (verifier/worker.py).
            "--worker-connections",
            str(config.VERIFIER_MAX_CONNECTIONS),
            worker_class=config.VERIFIER_WORKER_CLASS,
        )
    wait_until(
        "verifier /healthz (JWKS loaded)",
        lambda: (
            procs.alive_or_fail(config.VERIFIER)
            and _socket_answers(config.VERIFIER_SOCKET, "/healthz")
        ),
        60,
        str(config.VERIFIER.log_file),
    )


def start_api() -> None:
    if not procs.running(config.API):
        _gunicorn(
            config.API,
            config.API_SOCKET,
            "api.app:create_app()",
            {"ZT_API_REQUEST_LOG": str(config.API_REQUEST_LOG)},
        )
    wait_until(
        "API /healthz",
        lambda: procs.alive_or_fail(config.API) and _socket_answers(config.API_SOCKET, "/healthz"),
        60,
        str(config.API.log_file),
    )


def reload_verifier() -> None:
    """Graceful gunicorn reload (HUP): new workers with fresh settings (client CA
    generations), old ones finish their requests. Returns once they are replaced."""
    pid = procs.running(config.VERIFIER)
    if pid is None:
        raise StepFailed("the verifier is not running; `make up` starts it")
    old = _children(pid)
    os.kill(pid, signal.SIGHUP)
    wait_until(
        "verifier reload (workers replaced)",
        lambda: (
            not (old & _children(pid))
            and len(_children(pid)) >= config.GUNICORN_WORKERS
            and _socket_answers(config.VERIFIER_SOCKET, "/healthz")
        ),
        30,
        str(config.VERIFIER.log_file),
        interval=0.1,
    )


def refresh_client_crl() -> None:
    """Fetch the CRL of every issuer in the client root and issuing mounts (PEM) into
    the one file nginx's ssl_crl loads. nginx needs a CRL for each CA in a chain, and
    during a client-CA rollover the issuing mount has two issuers with a CRL each.
    Both endpoints are unauthenticated in OpenBao (CRLs are public)."""
    mounts = read_json(config.PKI_OUTPUTS)["mounts"]
    pems = []
    for mount in (mounts["client_issuing"], mounts["client_root"]):
        base = f"{config.VAULT_ADDR}/v1/{mount}"
        verify = str(config.VAULT_TLS_CA)
        r = requests.request("LIST", f"{base}/issuers", verify=verify, timeout=10)
        if r.status_code != 200:
            raise StepFailed(f"could not list the issuers of {mount} in OpenBao ({r.status_code})")
        for issuer in r.json()["data"]["keys"]:
            crl = requests.get(f"{base}/issuer/{issuer}/crl/pem", verify=verify, timeout=10)
            if crl.status_code != 200 or "BEGIN X509 CRL" not in crl.text:
                raise StepFailed(f"could not fetch the CRL of {mount} issuer {issuer}")
            pems.append(crl.text.strip())
    write_atomic(config.CLIENT_CRL, "\n".join(pems) + "\n")


def render_nginx_conf() -> None:
    cert, key = config.server_cert_paths("nginx")
    tmpl = string.Template((config.REPO / "nginx" / "nginx.conf.tmpl").read_text())
    text = tmpl.substitute(
        run_dir=config.RUN,
        log_dir=config.LOGS,
        tmp_dir=config.NGINX_DIR / "tmp",
        nginx_dir=config.REPO / "nginx",
        host=config.HOST,
        port=config.NGINX_PORT,
        server_cert=cert,
        server_key=key,
        client_ca_bundle=config.CLIENT_CA_BUNDLE,
        client_crl=config.CLIENT_CRL,
        verifier_socket=config.VERIFIER_SOCKET,
        api_socket=config.API_SOCKET,
        **authz_cache_values(
            authz_cache_enabled(), config.AUTHZ_CACHE_DIR, config.AUTHZ_CACHE_CONF
        ),
    )
    (config.NGINX_DIR / "tmp").mkdir(parents=True, exist_ok=True)
    install_nginx_conf(text, config.NGINX_CONF)


# --- the decision cache (nginx proxy_cache on /_authz) -----------------------


def authz_cache_enabled() -> bool:
    """The saved `zt authz-cache on|off` choice; on when never set."""
    if not config.AUTHZ_CACHE_SETTING.exists():
        return True
    return bool(read_json(config.AUTHZ_CACHE_SETTING).get("enabled", True))


def set_authz_cache(enabled: bool) -> None:
    """Save the choice; a running nginx is reloaded with it (and drained)."""
    config.AUTHZ_CACHE_SETTING.parent.mkdir(parents=True, exist_ok=True)
    write_secret_json(config.AUTHZ_CACHE_SETTING, {"enabled": enabled})
    if procs.running(config.NGINX):
        reload_nginx()


def authz_cache_values(enabled: bool, cache_dir: Path, snippet: Path) -> dict[str, object]:
    """The nginx.conf.tmpl placeholders of the decision cache (and the modules it needs).

    On: render nginx/snippets/authz-cache.conf.tmpl into ``snippet`` (0600: it
    holds the HMAC key) and include it. Off: include the static `proxy_cache off`.
    ``cache_dir``'s parent is created here; nginx creates the folder itself,
    owned by its workers.
    """
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    include = config.REPO / "nginx" / "snippets" / "authz-cache-off.conf"
    if enabled:
        tmpl = config.REPO / "nginx" / "snippets" / "authz-cache.conf.tmpl"
        text = string.Template(tmpl.read_text()).substitute(
            hmac_key=_authz_cache_hmac_key(), generation=authz_cache_generation()
        )
        write_secret(snippet, text)
        include = snippet
    ndk, set_misc = config.NGINX_DYNAMIC_MODULES
    return {
        "authz_cache_dir": cache_dir,
        "authz_cache_conf": include,
        "ndk_module": ndk,
        "set_misc_module": set_misc,
    }


def _authz_cache_hmac_key() -> str:
    """The cache key's HMAC key: generated at first start, 0600, never logged."""
    path = config.AUTHZ_CACHE_HMAC_KEY
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_secret(path, secrets.token_hex(32))
    return path.read_text().strip()


# What nginx forwards from a (cached) allow to the API: when the answer's headers
# change (a new identity format), an older cached answer must not be reused.
IDENTITY_SNIPPET = config.REPO / "nginx" / "snippets" / "identity-headers.conf"


def authz_cache_generation() -> str:
    """Part of every cache key: changes when the policy, the client CAs or the identity
    headers nginx forwards from an allow change."""
    digest = hashlib.sha256()
    for path in (config.VERIFIER_POLICY, config.CLIENT_ISSUING_CA, IDENTITY_SNIPPET):
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def install_nginx_conf(text: str, conf: Path) -> None:
    """Write a rendered config next to ``conf``, have ``nginx -t`` accept it, then
    rename it into place (a refused config never replaces a working one).

    When the master runs as root, its workers run as Debian's www-data, the
    group our unix sockets are shared with."""
    user = f"user {config.NGINX_WORKER_USER};\n" if os.geteuid() == 0 else ""
    candidate = conf.with_name(conf.name + ".new")
    write_atomic(candidate, user + text)
    test = subprocess.run(
        ["nginx", "-t", "-q", "-c", str(candidate)], capture_output=True, text=True
    )
    if test.returncode != 0:
        raise StepFailed(f"nginx -t refused the rendered config ({candidate}):\n{test.stderr}")
    os.replace(candidate, conf)


def _gateway_answers() -> bool:
    # Without a client certificate nginx must answer 400: proves TLS + mTLS are up.
    try:
        r = requests.get(config.GATEWAY_URL + "/", verify=str(config.SERVER_CA_BUNDLE), timeout=2)
    except requests.RequestException:
        return False
    return r.status_code == 400


def start_nginx() -> None:
    cert, _ = config.server_cert_paths("nginx")
    if not cert.exists():
        certs.issue_server_cert("nginx")
    refresh_client_crl()
    render_nginx_conf()
    if procs.running(config.NGINX):
        reload_nginx()
    else:
        procs.start(config.NGINX, ["nginx", "-c", str(config.NGINX_CONF)])
    wait_until(
        f"nginx on {config.GATEWAY_URL}",
        lambda: procs.alive_or_fail(config.NGINX) and _gateway_answers(),
        30,
        str(config.LOGS / "nginx-error.log"),
    )


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(c) for c in text.split()}


def reload_nginx() -> None:
    """Graceful reload: new workers take new connections, old ones finish theirs.

    Returns once the old workers are gone, so a caller that reloaded for a new
    certificate or CRL knows every later connection sees it (an old worker
    may still accept a connection for a moment after SIGHUP).
    """
    pid = procs.running(config.NGINX)
    if pid is None:
        raise StepFailed("nginx is not running; `make up` starts it")
    render_nginx_conf()
    old = _children(pid)
    os.kill(pid, signal.SIGHUP)
    wait_until(
        "nginx reload (old workers drained)",
        lambda: not (old & _children(pid)) and len(_children(pid)) >= 1,
        30,
        str(config.LOGS / "nginx-error.log"),
        interval=0.05,
    )


def demo_call() -> dict:
    """The README's demo: token from Keycloak, mTLS call, print the API's answer."""
    from client.api import GatewayClient, Identity
    from client.token import TokenSource

    outputs = read_json(config.IDENTITY_OUTPUTS)
    secret = read_json(config.KEYCLOAK_CLIENT_SECRETS / "python-client.json")["client_secret"]
    tokens = TokenSource(
        outputs["token_endpoint"], "python-client", secret, str(config.SERVER_CA_BUNDLE)
    )
    cert, _ = config.client_cert_paths("python-client")
    identity = Identity(str(certs.bundle_path(cert)), None, str(config.SERVER_CA_BUNDLE))
    client = GatewayClient(config.GATEWAY_URL, identity, tokens)
    r = client.request("GET", "/api/resource")
    if r.status_code != 200:
        raise StepFailed(
            f"demo call answered {r.status_code}: {r.text[:200]}; "
            f"see {config.AUDIT_LOG} and {config.NGINX_ACCESS_LOG}"
        )
    body = r.json()
    say("    " + json.dumps(body, sort_keys=True))
    return body
