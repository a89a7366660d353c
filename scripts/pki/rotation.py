"""Rotate, revoke and renew certificates through OpenBao, with zero failed requests.

* client identities: a new cert from the identity's own role with its own
  AppRole; the client re-reads ``bundle.pem`` on every new TLS connection, so
  nothing restarts. The old cert stays valid until it expires (revoke it if it
  leaked).
* serving certs: a new cert from the server role (``server-certs`` AppRole),
  then a graceful reload: nginx ``nginx -t`` + SIGHUP (old workers finish their
  connections), OpenBao SIGHUP, Keycloak's periodic certificate reload.
* revocation: the ``revoker`` AppRole revokes by serial, rebuilds the CRL, and
  nginx reloads the fresh CRL file; the revoked cert is refused from then on.
* renew: everything past 2/3 of its lifetime is rotated, and the CRL nginx
  uses is refreshed once a third of its validity has passed (nginx refuses
  every client once its CRL expires). Safe to run from cron; idempotent. The
  renewer (``schedule.py``, ``zt renew --every``) runs it on an interval.
* lifetimes: ``set_lifetimes`` applies a lifetimes profile (``lifetimes.py``)
  and reissues what it shortens.

All of it runs under one lock file so a cron `renew` and a manual `rotate`
never interleave. OpenBao sealed or unreachable: a clear error, exit 1, and
the current files untouched (nothing is written before OpenBao answered).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from scripts import config, terraform
from scripts.files import write_atomic
from scripts.pki import certs, crl, lifetimes
from scripts.services import apps, keycloak, nginx, openbao, procs
from scripts.steps import StepFailed, say, wait_until

LOCK = config.RUN / "rotation.lock"
RENEW_AT = 2 / 3  # fraction of a certificate's lifetime after which `renew` rotates it


@dataclass(frozen=True)
class Rotation:
    name: str
    old_serial: str | None
    old_not_after: dt.datetime | None
    new_serial: str
    new_not_after: dt.datetime

    def report(self) -> str:
        old = (
            f"{self.old_serial} (until {self.old_not_after:%F %T}Z)" if self.old_serial else "none"
        )
        return f"{self.name}: {old} -> {self.new_serial} (until {self.new_not_after:%F %T}Z)"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    config.RUN.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _current(cert_file: Path) -> x509.Certificate | None:
    return certs.load(cert_file) if cert_file.exists() else None


def _rotation(name: str, old: x509.Certificate | None, new: x509.Certificate) -> Rotation:
    return Rotation(
        name,
        certs.serial_hex(old) if old else None,
        old.not_valid_after_utc if old else None,
        certs.serial_hex(new),
        new.not_valid_after_utc,
    )


def rotate_client(identity: str) -> Rotation:
    cert_file, _ = config.client_cert_paths(identity)
    old = _current(cert_file)
    new = certs.issue_client_cert(identity)
    return _rotation(f"client/{identity}", old, new)


def served_serial(port: int) -> int | None:
    """Serial of the certificate a loopback TLS server presents (verified against
    the server CA), or None if the handshake fails."""
    ctx = ssl.create_default_context(cafile=str(config.SERVER_CA_BUNDLE))
    try:
        with (
            socket.create_connection((config.HOST, port), timeout=3) as sock,
            ctx.wrap_socket(sock, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return x509.load_der_x509_certificate(der).serial_number if der else None


RELOADERS = {
    "nginx": (nginx.reload_nginx, config.NGINX_PORT),
    "vault": (openbao.reload_listener, config.VAULT_PORT),
    "keycloak": (keycloak.reload_certificate, config.KEYCLOAK_PORT),
}


def rotate_server(name: str) -> Rotation:
    if name not in RELOADERS:
        raise StepFailed(f"unknown server {name!r}; choose one of {', '.join(RELOADERS)}")
    cert_file, _ = config.server_cert_paths(name)
    old = _current(cert_file)
    new = certs.issue_server_cert(name)
    reload, port = RELOADERS[name]
    reload()
    for each in serving_ports(name, port):
        wait_until(
            f"{name} serving serial {certs.serial_hex(new)} on :{each}",
            lambda p=each: served_serial(p) == new.serial_number,
            90,
            f"{config.LOGS}/{name}.log",
        )
    return _rotation(f"server/{name}", old, new)


def serving_ports(name: str, port: int) -> tuple[int, ...]:
    """Where ``name``'s certificate is served: ``port``, and behind the HA profile's edge
    (which reaches one node per connection) every Keycloak node's own port as well."""
    if name == "keycloak" and config.HA_KEYCLOAK:
        return (port, *(https for https, _, _ in config.KEYCLOAK_NODE_PORTS))
    return (port,)


def normalize_serial(serial: str) -> str:
    h = serial.lower().replace(":", "").replace("-", "")
    if not h or any(c not in "0123456789abcdef" for c in h):
        raise StepFailed(f"{serial!r} is not a certificate serial (hex, optionally with colons)")
    return certs.format_serial(int(h, 16))


def refresh_crl() -> dt.datetime:
    """Rebuild the client CRLs in OpenBao, install them, reload nginx (always: a CA
    rollover also needs it for the new CA bundle). Returns the next update."""
    crl.rebuild()
    crl.fetch_and_install()
    if procs.running(config.NGINX):
        nginx.reload_nginx()
    return _installed_next_update()


def sync_crl(now: dt.datetime | None = None) -> str | None:
    """One round of the CRL watcher: bring nginx's and the verifier's CRL up to date.

    Rebuilds the CRLs in OpenBao when a third of their validity has passed (so they
    never lapse), installs what OpenBao publishes when it differs from the file, and
    then reloads nginx (new ``ssl_crl``, a new decision-cache generation, and old
    workers close their keep-alive connections). Returns what changed, or None.
    """
    now = now or dt.datetime.now(dt.UTC)
    before = crl.load()
    rebuilt = crl.due(before, now)
    if rebuilt:
        crl.rebuild()
    if not crl.fetch_and_install(now):
        return None
    after = crl.load()
    added = crl.revoked_serials(after) - crl.revoked_serials(before)
    removed = crl.revoked_serials(before) - crl.revoked_serials(after)
    reloaded = procs.running(config.NGINX) is not None
    if reloaded:
        nginx.reload_nginx()
    parts = [f"CRL installed ({len(crl.revoked_serials(after))} revoked serials"]
    if added:
        parts.append(f"newly revoked: {', '.join(certs.format_serial(s) for s in sorted(added))}")
    if removed:
        parts.append(f"no longer listed (expired): {len(removed)}")
    parts.append("rebuilt in OpenBao first" if rebuilt else "published by OpenBao")
    parts.append("nginx reloaded)" if reloaded else "nginx not running)")
    return "; ".join(parts)


def _installed_next_update() -> dt.datetime:
    when = crl.next_update(crl.load())
    if when is None:
        raise StepFailed(f"{config.CLIENT_CRL} holds no CRL with a next update")
    return when


def revoke(serial: str) -> str:
    """Revoke ``serial`` (client or server CA), install the new CRL, reload nginx;
    returns the mount it belonged to."""
    mount = certs.revoke(normalize_serial(serial))
    refresh_crl()
    return mount


def due(cert: x509.Certificate, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(dt.UTC)
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    return now >= cert.not_valid_before_utc + life * RENEW_AT


def renew(done: list[str] | None = None) -> list[str]:
    """Rotate what is past 2/3 of its lifetime; refresh the CRL when due.

    Order: workload certificates, then the CRL (nginx refuses every client once it
    lapses), then serving certificates (waiting for Keycloak's reload can take its
    whole reload period), then workload certificates again if serving ones were
    rotated (one may have become due during that wait). Each item is tried even when
    an earlier one failed (OpenBao down fails them all; a slow Keycloak must not hold
    back the CRL): the failures are raised together at the end, as one StepFailed,
    after what succeeded was done. ``done`` receives each action as it happens, so a
    caller that catches the failure still knows what was renewed.
    """
    actions = done if done is not None else []
    errors: list[str] = []

    def attempt(what: str, action: Callable[[], str]) -> None:
        try:
            actions.append(action())
        except StepFailed as e:
            errors.append(f"{what}: {str(e).splitlines()[0]}")

    def workloads() -> None:
        for cert_file in sorted(config.PKI_DIR.glob("client/*/cert.pem")):
            identity = cert_file.parent.name
            if due(certs.load(cert_file)) and not any(
                e.startswith(f"client/{identity}:") for e in errors
            ):
                attempt(f"client/{identity}", lambda i=identity: rotate_client(i).report())

    workloads()
    if crl.due(crl.load(), dt.datetime.now(dt.UTC)):
        attempt(
            "client CRL",
            lambda: f"client CRL refreshed, next update {refresh_crl():%F %T}Z",
        )
    servers = [
        name
        for name in RELOADERS
        if config.server_cert_paths(name)[0].exists()
        and due(certs.load(config.server_cert_paths(name)[0]))
    ]
    for name in servers:
        attempt(f"server/{name}", lambda n=name: rotate_server(n).report())
    if servers:
        workloads()
    if errors:
        raise StepFailed("; ".join(errors))
    return actions


# What runs each serving certificate (a stopped one loads its new files when it starts).
SERVING = {"nginx": config.NGINX, "vault": config.VAULT, "keycloak": config.KEYCLOAK}


def renew_for_bringup() -> list[str]:
    """``make up`` on a stack that was down (or whose renewer was): serving certificates
    past 2/3 of their life are renewed before anything needs them — a running service
    reloads and serves the new one, a stopped one just gets the files — and CRLs past a
    third of their validity are rebuilt in OpenBao (the nginx step installs them; an
    expired one would be refused). Workload certificates are the bring-up's own step."""
    actions = []
    with locked():
        for name, svc in SERVING.items():
            cert_file, _ = config.server_cert_paths(name)
            if not cert_file.exists() or not due(certs.load(cert_file)):
                continue
            if procs.running(svc):
                actions.append(rotate_server(name).report())
            else:
                old = certs.load(cert_file)
                actions.append(
                    _rotation(f"server/{name}", old, certs.issue_server_cert(name)).report()
                )
        if crl.due(crl.load(), dt.datetime.now(dt.UTC)):
            crl.rebuild()
            actions.append("client CRLs rebuilt in OpenBao (installed by the nginx step)")
    return actions


def report_renew() -> list[str]:
    """``renew`` for a person or cron: one line per action (or "nothing due")."""
    actions: list[str] = []
    try:
        renew(actions)
    finally:
        for line in actions or ["nothing due"]:
            say(f"    {line}")
    return actions


def set_lifetimes(profile: lifetimes.Lifetimes) -> list[str]:
    """Switch to ``profile`` (``zt lifetimes``): apply terraform/pki with it, keep it in
    the state folder only once Terraform accepted it (its validations are the bounds),
    then reissue what the change affects so no certificate outlives its new maximum:
    every workload certificate when the client lifetime changed, every serving one
    when the server lifetime changed, and the CRLs always (rebuilt with the new
    expiry, installed, nginx reloaded). Call it under ``locked()``."""
    before = lifetimes.load()
    terraform.apply("pki", terraform.pki_env(profile=profile))
    lifetimes.save(profile)
    terraform.export_pki_outputs()
    actions = []
    if profile.client_cert_seconds != before.client_cert_seconds:
        for identity in sorted(certs.pki_outputs()["client_roles"]):
            actions.append(rotate_client(identity).report())
    if profile.server_cert_seconds != before.server_cert_seconds:
        for name in RELOADERS:
            if config.server_cert_paths(name)[0].exists():
                actions.append(rotate_server(name).report())
    actions.append(f"client CRL refreshed, next update {refresh_crl():%F %T}Z")
    return actions


# --- client-CA rollover ------------------------------------------------------


def _generations() -> list[str]:
    if config.CLIENT_CA_GENERATIONS.exists():
        return json.loads(config.CLIENT_CA_GENERATIONS.read_text())
    return ["1"]


def _apply_generations(gens: list[str]) -> None:
    write_atomic(config.CLIENT_CA_GENERATIONS, json.dumps(gens))
    terraform.apply("pki", terraform.pki_env())
    terraform.export_pki_outputs()


def _trust_current_generations() -> None:
    """nginx and the verifier load the client CA bundle / issuing CAs anew."""
    refresh_crl()  # also renders nginx's config and reloads it with the new bundle
    apps.reload(apps.VERIFIER, nginx.reload_nginx_if_running)


def rollover_begin() -> None:
    """Add a client issuing CA; trust old + new; reissue every workload cert from the new one."""
    gens = _generations()
    if len(gens) > 1:
        raise StepFailed(
            f"a rollover is already in progress (generations {gens}); "
            "run `rollover-client-ca finish` first"
        )
    new = str(int(gens[-1]) + 1)
    say(f"    terraform/pki: client issuing CA generation {new} (old: {gens[-1]})")
    _apply_generations([*gens, new])
    _trust_current_generations()
    for identity in sorted(certs.pki_outputs()["client_roles"]):
        say(f"    {rotate_client(identity).report()}")


def rollover_finish() -> None:
    """Drop the old generation(s): Terraform revokes them at the root; reload trust."""
    gens = _generations()
    if len(gens) == 1:
        raise StepFailed("no rollover in progress; run `rollover-client-ca begin` first")
    latest = certs.pki_outputs()["ca_serials"]["client_issuing"]
    for cert_file in sorted(config.PKI_DIR.glob("client/*/cert.pem")):
        chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
        if len(chain) < 2 or certs.serial_hex(chain[1]) != latest:
            raise StepFailed(
                f"{cert_file} was not issued by the new client CA; "
                f"`rotate client {cert_file.parent.name}` first"
            )
    say(f"    terraform/pki: retiring client issuing CA generation(s) {gens[:-1]}")
    _apply_generations(gens[-1:])
    _trust_current_generations()
