"""The bring-up and teardown of the whole stack, in order (``zt up|status|down|clean``).

Order (DESIGN.md): tools -> accounts -> OpenBao (start, init, unseal) -> terraform/pki ->
OpenBao on a server-CA certificate -> workload certificates -> Keycloak ->
terraform/identity -> audit sink -> verifier and API (gunicorn) -> nginx -> CRL watcher ->
renewer -> demo call (Prometheus just before it).
Every step prints what it does and how long it took; every step is idempotent, and a
running service is only touched when what it runs changed (``services.apps.converge``,
``services.nginx.start_nginx``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Iterable

from cryptography import x509

from client.api import GatewayClient, Identity
from client.token import TokenError, TokenSource
from scripts import audit, config, terraform, tools
from scripts.files import read_json, write_secret_json
from scripts.pki import certs, crl, rotation, schedule, watcher
from scripts.services import (
    accounts,
    apps,
    auditsink,
    edge,
    keycloak,
    keycloak_cluster,
    nginx,
    openbao,
    postgres,
    procs,
    prometheus,
    supervisor,
)
from scripts.steps import StepFailed, say, step


def retire_removed_workloads(identities: Iterable[str]) -> None:
    """A workload removed from the identities file loses its certificate and files:
    the certificate is revoked, its folder, AppRole credentials and profile go."""
    for folder in sorted(config.PKI_DIR.glob("client/*")):
        if folder.name in identities or not folder.is_dir():
            continue
        cert_file = folder / "cert.pem"
        what = "no certificate"
        if cert_file.exists():
            serial = certs.serial_hex(certs.load(cert_file))
            try:
                certs.revoke(serial)
                what = f"certificate {serial} revoked"
            except StepFailed as e:  # already revoked, or expired long ago
                what = f"certificate {serial} not revoked ({e})"
        shutil.rmtree(folder)
        (config.VAULT_APPROLES / f"client-{folder.name}.json").unlink(missing_ok=True)
        (config.WORKLOAD_PROFILES / f"{folder.name}.json").unlink(missing_ok=True)
        say(f"    {folder.name}: no longer a workload identity; {what}, its files removed")


def ensure_client_certs() -> None:
    identities = certs.pki_outputs()["client_roles"]
    retire_removed_workloads(identities)
    for identity in sorted(identities):
        cert_file, _ = config.client_cert_paths(identity)
        fresh = cert_file.exists() and _time_left(certs.load(cert_file)) > dt.timedelta(hours=1)
        if fresh and certs.bundle_path(cert_file).exists():
            say(f"    {identity}: current cert still valid")
            continue
        cert = certs.issue_client_cert(identity)
        say(
            f"    {identity}: issued serial {_serial(cert)} until {cert.not_valid_after_utc:%F %T}Z"
        )


def up() -> None:
    """Fresh machine or running stack: install, start or converge everything, demo."""
    t0 = time.monotonic()
    refuse_if_other_profile_runs()
    say(f"profile {config.PROFILE!r}, state folder {config.STATE}")
    tools.install_all()
    with step("Accounts: unprivileged users for nginx's workers, the verifier and the API"):
        accounts.ensure()
    with step("Supervisor: supervisord runs every service and restarts any that exits"):
        supervise()
    if config.HA_KEYCLOAK:
        with step(f"PostgreSQL: Keycloak's database ({config.HOST}:{config.POSTGRES_PORT})"):
            say(f"    postgres: {postgres.start()}")
    with step("OpenBao: start (TLS on loopback, raft storage, not dev mode)"):
        openbao.start()
    if config.HA:
        with step(f"Edge: one address per clustered part ({', '.join(config.HA_PARTS)})"):
            say(f"    edge: {edge.start()}")
    with step("OpenBao: initialise (first run) and unseal"):
        openbao.init_and_unseal()
    with step("terraform/pki: init (providers from the local mirror only)"):
        terraform.init("pki", terraform.pki_env())
    with step("terraform/pki: apply (server CA, client CA, roles, policies, AppRoles)"):
        terraform.apply("pki", terraform.pki_env())
        terraform.export_pki_outputs()
    with step("OpenBao: serve a certificate from the server CA"):
        openbao.switch_to_server_ca()
    with step("Serving certificates and CRLs: renew what is due (a stack that was down)"):
        for line in rotation.renew_for_bringup() or ["nothing due"]:
            say(f"    {line}")
    with step("Workload certificates (client CA, one AppRole per identity)"):
        ensure_client_certs()
    with step(f"Keycloak: start in production mode on {config.KEYCLOAK_URL}"):
        say(f"    keycloak: {keycloak_cluster.start() if config.HA_KEYCLOAK else keycloak.start()}")
    with step("terraform/identity: init"):
        terraform.init("identity", terraform.identity_env())
    with step("terraform/identity: apply (realm, clients, mappers, roles)"):
        terraform.apply("identity", terraform.identity_env())
        terraform.export_identity_outputs()
        write_workload_profiles()
    # Before the verifier: it refuses every request, and its /healthz (which its start
    # waits for) is 503, without a usable client CRL.
    with step("Client CRLs: install OpenBao's current ones (nginx and the verifier read them)"):
        say(f"    {config.CLIENT_CRL}: {'installed' if crl.fetch_and_install() else 'unchanged'}")
    with step(f"Audit sink: a copy of every audit line, kept by {config.AUDIT_USER}"):
        auditsink.start()
    for app in apps.APPS:
        with step(f"{app.svc.name} (gunicorn, unix socket)"):
            say(f"    {app.svc.name}: {apps.converge(app, nginx.reload_nginx_if_running)}")
    with step("Audit log: a file from before the hash chain is rotated (once)"):
        say(f"    {audit.rotate_if_unchained()}")
    with step(f"nginx: mTLS + auth_request on {config.GATEWAY_URL}"):
        say(f"    nginx: {nginx.start_nginx()}")
    with step(f"CRL watcher: client CRLs from OpenBao every {config.CRL_WATCH_SECONDS:g}s"):
        watcher.start()
    with step("Renewer: `zt renew` every tenth of the shortest lifetime in play"):
        schedule.start()
    with step(
        f"Prometheus: scrape every target, evaluate prometheus/rules ({config.PROMETHEUS_URL})"
    ):
        say(f"    prometheus: {prometheus.start()}")
    with step("Demo: python-client token + mTLS call to /api/resource"):
        demo_call()
    terraform.write_env_file()
    say(f"==> stack is up in {time.monotonic() - t0:.1f}s; `make status` shows it")


def refuse_if_other_profile_runs() -> None:
    """Every stack listens on the same addresses: one runs at a time. Refused before
    anything starts, naming the stack that runs and the command that stops it."""
    for other in config.PROFILES:  # each profile's default folder (ZT_STATE may name a third)
        folder = (config.REPO / config.STATE_NAMES[other]).resolve()
        if folder == config.STATE:
            continue
        pid = supervisor.pid_in(folder)
        if pid is not None:
            down = "make down" if other == "single" else "make down-ha"
            raise StepFailed(
                f"a stack of the {other!r} profile is running from {folder} (supervisord pid "
                f"{pid}); stacks use the same ports, one runs at a time. Stop it first: `{down}`"
            )


def write_workload_profiles() -> None:
    """``config.WORKLOAD_PROFILES/<identity>.json``: everything client/ needs (0600)."""
    outputs = read_json(config.IDENTITY_OUTPUTS)
    for identity in sorted(certs.pki_outputs()["client_roles"]):
        cert, _ = config.client_cert_paths(identity)
        profile = {
            "identity": identity,
            "token_endpoint": outputs["token_endpoint"],
            "gateway_url": config.GATEWAY_URL,
            "server_ca": str(config.SERVER_CA_BUNDLE),
            "bundle": str(certs.bundle_path(cert)),
        }
        write_secret_json(config.WORKLOAD_PROFILES / f"{identity}.json", profile)


def demo_call() -> dict:
    """The README's demo: token from Keycloak, mTLS call, print the API's answer."""
    outputs = read_json(config.IDENTITY_OUTPUTS)
    cert, _ = config.client_cert_paths("python-client")
    identity = Identity(str(certs.bundle_path(cert)), None, str(config.SERVER_CA_BUNDLE))
    tokens = TokenSource(outputs["token_endpoint"], "python-client", identity)
    client = GatewayClient(config.GATEWAY_URL, tokens)
    try:
        r = client.request("GET", "/api/resource")
    except TokenError as e:
        raise StepFailed(
            f"demo call: no token for python-client: {e}; see {keycloak.log_files()}"
        ) from e
    if r.status_code != 200:
        raise StepFailed(
            f"demo call answered {r.status_code}: {r.text[:200]}; "
            f"see {config.AUDIT_LOG} and {config.NGINX_ACCESS_LOG}"
        )
    body = r.json()
    say("    " + json.dumps(body, sort_keys=True))
    return body


def _serial(cert: x509.Certificate) -> str:
    return certs.serial_hex(cert)


def _time_left(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC)


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def down() -> None:
    """Stop every process the stack started (each program, then supervisord); keep
    the state folder."""
    for svc in reversed(config.SERVICES):
        with step(f"stop {svc.name}"):
            say(f"    {'stopped' if procs.stop(svc) else 'was not running'}")
    for app in apps.APPS:  # an old master a replacement left behind (a crash mid-way)
        if procs.stop(app.retired):
            say(f"    stopped a retired {app.svc.name} master")
    with step("stop supervisord"):
        say(f"    {'stopped' if supervisor.shutdown() else 'was not running'}")


def supervise() -> None:
    """supervisord runs (started if not); a service still running from before it (an
    older bring-up, or a supervisord that was killed) is stopped by its pid file so it
    restarts under supervision."""
    say(f"    supervisord: {supervisor.ensure_running()} ({supervisor.CONF})")
    managed = supervisor.names()
    for svc in config.SERVICES:
        if procs.running(svc) is not None and procs.program(svc) not in managed:
            procs.stop(svc)
            say(f"    {svc.name}: was running unsupervised; stopped, it starts under supervisord")


def clean() -> None:
    """``down``, then delete the state folder (new CAs, new realm at the next ``up``)."""
    down()
    with step(f"remove {config.STATE}"):
        shutil.rmtree(config.STATE, ignore_errors=True)
