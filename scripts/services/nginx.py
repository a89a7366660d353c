"""The request path: verifier and API (gunicorn on unix sockets) and nginx.

nginx's config is a template (nginx/nginx.conf.tmpl) rendered into the state
folder and checked with `nginx -t` before any start or reload, like
ingress-nginx's testTemplate(). The client CA's CRLs are fetched from OpenBao
(unauthenticated endpoints) into one file for `ssl_crl`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import requests

from scripts import config
from scripts.files import read_json, write_atomic, write_secret, write_secret_json
from scripts.pki import certs, crl
from scripts.services import accounts, apps, lockout, procs
from scripts.steps import StepFailed, wait_until

NGINX_TEMPLATE = config.REPO / "nginx" / "nginx.conf.tmpl"


def nginx_values(authz_cache: Mapping[str, object], **overrides: object) -> dict[str, object]:
    """Every placeholder of nginx/nginx.conf.tmpl, for the stack's nginx.

    Another instance of the production template (the benchmark's, a test's) passes
    its own folders, port or upstream sockets as ``overrides`` and its own
    ``authz_cache_values``.
    """
    cert, key = config.server_cert_paths("nginx")
    values: dict[str, object] = {
        "run_dir": config.RUN,
        "log_dir": config.LOGS,
        "tmp_dir": config.NGINX_DIR / "tmp",
        "nginx_dir": config.REPO / "nginx",
        "host": config.HOST,
        "port": config.NGINX_PORT,
        "health_port": config.NGINX_HEALTH_PORT,
        "server_cert": cert,
        "server_key": key,
        "client_ca_bundle": config.CLIENT_CA_BUNDLE,
        "client_crl": config.CLIENT_CRL,
        "verifier_socket": config.VERIFIER_SOCKET,
        "api_socket": config.API_SOCKET,
        "pki_metrics": config.PKI_METRICS,
        **authz_cache,
    }
    values.update(overrides)
    hop = lockout.hop_values(Path(str(values["run_dir"])), Path(str(values["tmp_dir"])))
    return {**hop, **values}


def render_nginx(template: Path, values: Mapping[str, object], conf: Path) -> None:
    """Render ``template`` with ``values`` into ``conf``, checked by ``nginx -t`` first."""
    try:
        text = string.Template(template.read_text()).substitute(values)
    except KeyError as e:
        raise StepFailed(f"{template} uses a placeholder nobody fills: {e}") from e
    Path(str(values["tmp_dir"])).mkdir(parents=True, exist_ok=True)
    install_nginx_conf(text, conf)


def render_nginx_conf() -> None:
    """The stack's nginx.conf, from the template and the saved decision-cache choice."""
    cache = authz_cache_values(
        authz_cache_enabled(), config.AUTHZ_CACHE_DIR, config.AUTHZ_CACHE_CONF
    )
    render_nginx(NGINX_TEMPLATE, nginx_values(cache), config.NGINX_CONF)


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
    owned by its workers. A folder another worker user left behind (the cache's
    level folders are its own, 0700) is dropped: it is only a cache.
    """
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    if cache_dir.exists() and not accounts.owned_by_nginx_workers(cache_dir):
        shutil.rmtree(cache_dir)
    include = config.REPO / "nginx" / "snippets" / "authz-cache-off.conf"
    if enabled:
        tmpl = config.REPO / "nginx" / "snippets" / "authz-cache.conf.tmpl"
        text = string.Template(tmpl.read_text()).substitute(
            hmac_key=_authz_cache_hmac_key(),
            generation=authz_cache_generation(*generation_inputs()),
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


# What nginx forwards from a (cached) allow: when the answer's headers change (a new
# identity format), an older cached answer must not be reused.
IDENTITY_SNIPPET = config.REPO / "nginx" / "snippets" / "identity-headers.conf"


def generation_inputs() -> tuple[list[Path], dict[str, str]]:
    """What a cached allow rests on: the policy, the client issuing CAs and their CRLs
    (a revocation starts an empty cache), the identity headers nginx forwards from an
    allow, the verifier's code, and the verifier's settings."""
    files = [config.INSTALLED_POLICY, config.CLIENT_ISSUING_CA, config.CLIENT_CRL]
    files += [IDENTITY_SNIPPET, *sorted((config.REPO / "verifier").glob("*.py"))]
    return files, apps.verifier_env()


def authz_cache_generation(files: Iterable[Path], settings: Mapping[str, str]) -> str:
    """Part of every cache key: a digest of ``files`` (name and bytes) and ``settings``.

    Rendered into nginx's config, so any change to an input takes effect with the
    reload that installs it, and no allow cached before it is reused after.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"")
    digest.update(json.dumps(dict(settings), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def install_nginx_conf(text: str, conf: Path) -> None:
    """Write a rendered config next to ``conf``, have ``nginx -t`` accept it, then
    rename it into place (a refused config never replaces a working one).

    When the master runs as root, its workers run as ``config.NGINX_USER`` in
    ``config.GATEWAY_GROUP``, the one group our unix sockets admit."""
    user = accounts.nginx_user_directive()
    # Named per process: the CRL watcher and a `zt` command may render at once.
    candidate = conf.with_name(f"{conf.name}.{os.getpid()}.new")
    write_atomic(candidate, user + text)
    test = subprocess.run(
        ["nginx", "-t", "-q", "-c", str(candidate)], capture_output=True, text=True
    )
    if test.returncode != 0:
        refused = conf.with_name(conf.name + ".refused")
        os.replace(candidate, refused)
        raise StepFailed(f"nginx -t refused the rendered config ({refused}):\n{test.stderr}")
    os.replace(candidate, conf)


def _gateway_answers() -> bool:
    # Without a client certificate nginx must answer 400: proves TLS + mTLS are up.
    try:
        r = requests.get(config.GATEWAY_URL + "/", verify=str(config.SERVER_CA_BUNDLE), timeout=2)
    except requests.RequestException:
        return False
    return r.status_code == 400


def nginx_fingerprint() -> str:
    """A digest of what the running nginx rests on: its rendered config, every file it
    includes or loads (snippets, decision-cache include, certificate, key, client CA
    bundle, CRLs)."""
    cert, key = config.server_cert_paths("nginx")
    files = [config.NGINX_CONF, *sorted((config.REPO / "nginx" / "snippets").glob("*.conf"))]
    files += [config.AUTHZ_CACHE_CONF, cert, key, config.CLIENT_CA_BUNDLE, config.CLIENT_CRL]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()


NGINX_FINGERPRINT = config.RUN / "nginx.fingerprint"


def start_nginx() -> str:
    """Start nginx, or reload it when what it rests on changed; returns what it did."""
    cert, _ = config.server_cert_paths("nginx")
    if not cert.exists():
        certs.issue_server_cert("nginx")
    crl.fetch_and_install()
    render_nginx_conf()
    did = "started"
    if procs.running(config.NGINX):
        recorded = NGINX_FINGERPRINT.read_text().strip() if NGINX_FINGERPRINT.exists() else ""
        if recorded == nginx_fingerprint():
            did = "unchanged"
        else:
            reload_nginx()
            did = "reloaded"
    else:
        # "child": a master killed outright takes its workers with it (launch.py).
        procs.start(
            config.NGINX,
            ["nginx", "-c", str(config.NGINX_CONF)],
            launch="child",
            stale_sockets=(config.LOCKOUT_HOP_SOCKET,),
        )
        write_atomic(NGINX_FINGERPRINT, nginx_fingerprint() + "\n")
    wait_until(
        f"nginx on {config.GATEWAY_URL}",
        lambda: procs.alive_or_fail(config.NGINX) and _gateway_answers(),
        30,
        str(config.LOGS / "nginx-error.log"),
    )
    return did


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
    graceful_reload(pid, "nginx", config.LOGS / "nginx-error.log")
    write_atomic(NGINX_FINGERPRINT, nginx_fingerprint() + "\n")


def graceful_reload(pid: int, what: str, log: Path) -> None:
    """SIGHUP the nginx master ``pid``; return once its old workers are gone (the
    gateway's nginx and the HA profile's edge)."""
    old = procs.children(pid)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as e:
        raise StepFailed(f"{what} exited while being reloaded; `make up` starts it") from e
    wait_until(
        f"{what} reload (old workers drained)",
        lambda: not (old & procs.children(pid)) and len(procs.children(pid)) >= 1,
        30,
        str(log),
        interval=0.05,
    )


def reload_nginx_if_running() -> None:
    """What a replaced verifier or API needs of nginx: drain connections to the old one."""
    if procs.running(config.NGINX):
        reload_nginx()
