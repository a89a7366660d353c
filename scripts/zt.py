"""zt — bring up, inspect and tear down the zero-trust gateway stack.

    python -m scripts.zt up        install tools (cached), start the stack, apply Terraform, demo
    python -m scripts.zt status    health of each service, every issued cert (CA, serial, expiry)
    python -m scripts.zt down      stop every process we started (by pid file); keep state
    python -m scripts.zt clean     down, then delete the state folder
    python -m scripts.zt env       print shell exports to use terraform/bao by hand
    python -m scripts.zt rotate client python-client   new workload cert (its own AppRole)
    python -m scripts.zt rotate server nginx           new serving cert + graceful reload
    python -m scripts.zt revoke <serial>               revoke, rebuild CRL, reload nginx
    python -m scripts.zt renew     rotate what is past 2/3 of its life; refresh the CRL (cron)
    python -m scripts.zt rollover-client-ca begin|finish   replace the client issuing CA
    python -m scripts.zt authz-cache on|off|status     nginx's decision cache (default on)

`make up`, `make status`, `make down` and `make clean` call these.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterable

from cryptography import x509

from scripts import (
    accounts,
    apps,
    certs,
    config,
    crl,
    crlwatch,
    gateway,
    keycloak_server,
    procs,
    tf,
    tools,
    validate,
    vault_server,
)
from scripts.files import read_json, write_atomic, write_secret_json
from scripts.steps import StepFailed, say, step


def client_ca_generations() -> str:
    """JSON list for TF_VAR_client_issuing_generations (see `rollover-client-ca`)."""
    if config.CLIENT_CA_GENERATIONS.exists():
        return config.CLIENT_CA_GENERATIONS.read_text()
    return '["1"]'


def pki_env(token: str | None = None) -> dict[str, str]:
    """Environment for terraform/pki: ``token``, else the operator AppRole's token (the
    root token from init only until the bootstrap apply is done), and OpenBao's CA."""
    return {
        "TF_VAR_client_issuing_generations": client_ca_generations(),
        "TF_VAR_operator_approle": config.VAULT_OPERATOR_APPROLE,
        "VAULT_TOKEN": token or vault_server.terraform_token(),
        "TF_VAR_vault_address": config.VAULT_ADDR,
        "TF_VAR_vault_ca_cert_file": str(config.VAULT_TLS_CA),
        "TF_IN_AUTOMATION": "1",
    }


def export_pki_outputs() -> None:
    """Write CA bundles, non-secret outputs and AppRole credentials to the state folder.

    After the bootstrap apply, hand over: a plan as the operator AppRole (just written)
    must show no changes, then the root token from init is revoked. Until that plan
    passes, the root token stays, so a broken operator policy never locks us out."""
    out = tf.outputs("pki", {"TF_IN_AUTOMATION": "1"})  # reads the state: no token needed
    write_atomic(config.SERVER_CA_BUNDLE, out["server_ca_bundle_pem"])
    write_atomic(config.CLIENT_CA_BUNDLE, out["client_ca_bundle_pem"])
    write_atomic(config.CLIENT_ISSUING_CA, out["client_issuing_ca_pem"])
    keys = ("mounts", "server_role", "client_roles", "ca_serials", "operator_approles")
    public = {k: out[k] for k in keys}
    write_secret_json(config.PKI_OUTPUTS, public)  # not secret, but nobody else needs it
    for name, creds in out["approle_credentials"].items():
        write_secret_json(config.VAULT_APPROLES / f"{name}.json", creds)
    if vault_server.bootstrap_pending():
        changes, plan = tf.plan_has_changes("pki", pki_env(vault_server.operator_token()))
        if changes:
            raise StepFailed(
                "terraform/pki plans changes as the operator AppRole right after the bootstrap "
                f"apply; the root token is kept ({config.VAULT_BOOTSTRAP_ROOT}).\n{plan[-3000:]}"
            )
        vault_server.revoke_bootstrap_root()
        say(
            f"    root token revoked; terraform/pki applies as the "
            f"{config.VAULT_OPERATOR_APPROLE} AppRole from now on"
        )


def identity_env() -> dict[str, str]:
    """Environment for terraform/identity: bootstrap admin + the server CA to trust."""
    admin = keycloak_server.admin_credentials()
    return {
        "TF_VAR_keycloak_url": config.KEYCLOAK_URL,
        "TF_VAR_keycloak_admin_username": admin["username"],
        "TF_VAR_keycloak_admin_password": admin["password"],
        "TF_VAR_server_ca_bundle_file": str(config.SERVER_CA_BUNDLE),
        "TF_VAR_disabled_workloads": json.dumps(disabled_workloads()),
        "TF_IN_AUTOMATION": "1",
    }


def disabled_workloads() -> list[str]:
    """terraform/identity's disabled_workloads, as the state folder keeps it."""
    if config.DISABLED_WORKLOADS.exists():
        return sorted(json.loads(config.DISABLED_WORKLOADS.read_text()))
    return []


def set_workload_enabled(identity: str, enabled: bool) -> None:
    """Enable or disable ``identity``'s Keycloak client through terraform/identity."""
    known = certs.pki_outputs()["client_roles"]
    if identity not in known:
        raise StepFailed(f"unknown workload identity {identity!r}; known: {', '.join(known)}")
    disabled = set(disabled_workloads())
    disabled = disabled - {identity} if enabled else disabled | {identity}
    write_atomic(config.DISABLED_WORKLOADS, json.dumps(sorted(disabled)) + "\n")
    write_env_file()
    tf.apply("identity", identity_env())


def export_identity_outputs() -> None:
    out = tf.outputs("identity", identity_env())
    public = {k: v for k, v in out.items() if k != "client_secrets"}
    write_secret_json(config.IDENTITY_OUTPUTS, public)
    for client_id, secret in out["client_secrets"].items():
        write_secret_json(
            config.KEYCLOAK_CLIENT_SECRETS / f"{client_id}.json",
            {"client_id": client_id, "client_secret": secret},
        )


def hand_env() -> dict[str, str]:
    """What Terraform gets from the bring-up, for running it by hand: the same variables
    (both roots), so a hand-run plan sees exactly what `make up` applied. Holds the
    scoped OpenBao token and the Keycloak admin password: printed only for `eval`."""
    env = {**pki_env(), **identity_env()}
    env.pop("TF_IN_AUTOMATION", None)
    return env


def write_env_file() -> None:
    """``.state/env.sh``: tools and addresses, plus one ``eval`` that asks ``zt env
    --credentials`` for everything that changes or is secret, each time it is sourced
    (so it is never stale after a rollover, and holds no secret itself)."""
    text = (
        "# Source me: `. .state/env.sh` — tools, addresses and credentials to run terraform\n"
        "# and bao by hand as `make up` runs them, e.g.\n"
        "#   terraform -chdir=terraform/pki plan\n"
        "#   terraform -chdir=terraform/identity plan\n"
        "# Secrets (a short-lived scoped OpenBao token, the Keycloak admin password) and\n"
        "# values that change (CA generations, disabled workloads) are read from the state\n"
        "# folder each time this file is sourced; none is written here.\n"
        f'export PATH="{config.BIN}:$PATH"\n'
        f'export TF_CLI_CONFIG_FILE="{tools.TERRAFORM_RC}"\n'
        f'export VAULT_ADDR="{config.VAULT_ADDR}"\n'
        f'export BAO_ADDR="{config.VAULT_ADDR}"\n'
        f'export VAULT_CACERT="{config.VAULT_TLS_CA}"\n'
        f'export BAO_CACERT="{config.VAULT_TLS_CA}"\n'
        f'eval "$(cd {shlex.quote(str(config.REPO))} && .venv/bin/python -m scripts.zt env '
        '--credentials)"\n'
    )
    write_atomic(config.ENV_FILE, text)


def retire_removed_workloads(identities: Iterable[str]) -> None:
    """A workload removed from the identities file loses its certificate and files:
    the certificate is revoked, its folder, AppRole credentials and client secret go."""
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
        (config.KEYCLOAK_CLIENT_SECRETS / f"{folder.name}.json").unlink(missing_ok=True)
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


def cmd_up(_: argparse.Namespace) -> int:
    t0 = time.monotonic()
    tools.install_all()
    with step("Accounts: unprivileged users for nginx's workers, the verifier and the API"):
        accounts.ensure()
    with step("OpenBao: start (TLS on loopback, raft storage, not dev mode)"):
        vault_server.start()
    with step("OpenBao: initialise (first run) and unseal"):
        vault_server.init_and_unseal()
    with step("terraform/pki: init (providers from the local mirror only)"):
        tf.init("pki", pki_env())
    with step("terraform/pki: apply (server CA, client CA, roles, policies, AppRoles)"):
        tf.apply("pki", pki_env())
        export_pki_outputs()
    with step("OpenBao: serve a certificate from the server CA"):
        vault_server.switch_to_server_ca()
    with step("Workload certificates (client CA, one AppRole per identity)"):
        ensure_client_certs()
    with step(f"Keycloak: start in production mode on {config.KEYCLOAK_URL}"):
        keycloak_server.start()
    with step("terraform/identity: init"):
        tf.init("identity", identity_env())
    with step("terraform/identity: apply (realm, clients, mappers, roles)"):
        tf.apply("identity", identity_env())
        export_identity_outputs()
    for app in apps.APPS:
        with step(f"{app.svc.name} (gunicorn, unix socket)"):
            say(f"    {app.svc.name}: {apps.converge(app, gateway.reload_nginx_if_running)}")
    with step(f"nginx: mTLS + auth_request on {config.GATEWAY_URL}"):
        say(f"    nginx: {gateway.start_nginx()}")
    with step(f"CRL watcher: client CRLs from OpenBao every {config.CRL_WATCH_SECONDS:g}s"):
        crlwatch.start()
    with step("Demo: python-client token + mTLS call to /api/resource"):
        gateway.demo_call()
    write_env_file()
    say(f"==> stack is up in {time.monotonic() - t0:.1f}s; `make status` shows it")
    return 0


def _serial(cert: x509.Certificate) -> str:
    return certs.serial_hex(cert)


def _time_left(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC)


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def cmd_status(_: argparse.Namespace) -> int:
    say("services:")
    health = {
        config.VAULT.name: vault_server.seal_status_line,
        config.KEYCLOAK.name: lambda: "ready" if keycloak_server.ready() else "NOT ready",
        config.CRL_WATCHER.name: _crl_watch_line,
    }
    for svc in config.SERVICES:
        pid = procs.running(svc)
        state = f"running (pid {pid})" if pid else "stopped"
        detail = f"; {health[svc.name]()}" if pid and svc.name in health else ""
        say(f"  {svc.name:<10} {state}{detail}")
    say(f"  {'audit':<10} {vault_server.audit_status_line()}")
    say("certificates:")
    found = sorted(config.PKI_DIR.glob("*/*/cert.pem")) if config.PKI_DIR.exists() else []
    if not found:
        say("  none issued yet (run `make up`)")
    for path in found:
        cert = certs.load(path)
        left = _time_left(cert)
        flag = "  EXPIRED" if left.total_seconds() <= 0 else ""
        say(
            f"  {path.parent.parent.name}/{path.parent.name:<14} CN={_cn(cert.subject):<14} "
            f"CA={_cn(cert.issuer):<34} serial={_serial(cert)} "
            f"not_after={cert.not_valid_after_utc:%F %T}Z left={str(left).split('.')[0]}{flag}"
        )
    crls = crl.load()
    if crls:
        when = crl.next_update(crls)
        say(
            f"  client CRL           {len(crl.revoked_serials(crls))} revoked serial(s) in "
            f"{len(crls)} CRL(s), next update {when:%F %T}Z ({config.CLIENT_CRL})"
        )
    for label, bundle in (
        ("server CA", config.SERVER_CA_BUNDLE),
        ("client CA", config.CLIENT_CA_BUNDLE),
    ):
        if bundle.exists():
            for cert in x509.load_pem_x509_certificates(bundle.read_bytes()):
                say(
                    f"  {label:<20} CN={_cn(cert.subject):<34} serial={_serial(cert)} "
                    f"not_after={cert.not_valid_after_utc:%F}"
                )
    return 0


def _crl_watch_line() -> str:
    last = crlwatch.last_check()
    if last is None:
        return "no check yet"
    ago = time.time() - float(last["checked_at"])
    state = "ok" if last["ok"] else "FAILING"
    return f"last check {ago:.0f}s ago, {state}: {last['outcome']}"


def cmd_down(_: argparse.Namespace) -> int:
    for svc in reversed(config.SERVICES):
        with step(f"stop {svc.name}"):
            say(f"    {'stopped' if procs.stop(svc) else 'was not running'}")
    for app in apps.APPS:  # an old master a replacement left behind (a crash mid-way)
        if procs.stop(app.retired):
            say(f"    stopped a retired {app.svc.name} master")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    cmd_down(args)
    with step(f"remove {config.STATE}"):
        shutil.rmtree(config.STATE, ignore_errors=True)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from scripts import rotation

    with rotation.locked(), step(f"rotate {args.kind} {args.name}"):
        if args.kind == "client":
            result = rotation.rotate_client(args.name)
        else:
            result = rotation.rotate_server(args.name)
        say(f"    {result.report()}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from scripts import rotation

    with rotation.locked(), step(f"revoke {args.serial}"):
        mount = rotation.revoke(args.serial)
        say(f"    revoked in {mount}; CRL rebuilt, nginx reloaded")
    if args.disable_client:
        cert = certs.issued(mount, rotation.normalize_serial(args.serial))
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME) if cert else []
        if not cn or mount != certs.pki_outputs()["mounts"]["client_issuing"]:
            raise StepFailed(f"{args.serial} is not a workload certificate; no client to disable")
        identity = str(cn[0].value)
        with step(f"disable the Keycloak client {identity} (no new tokens)"):
            set_workload_enabled(identity, enabled=False)
            say(
                f"    tokens issued before stay valid until they expire (at most "
                f"{_token_lifetime()}); undo with `zt enable-client {identity}`"
            )
    return 0


def _token_lifetime() -> str:
    outputs = read_json(config.IDENTITY_OUTPUTS)
    return f"{outputs['access_token_lifespan_seconds']} s + the verifier's leeway"


def cmd_enable_client(args: argparse.Namespace) -> int:
    with step(f"enable the Keycloak client {args.identity}"):
        set_workload_enabled(args.identity, enabled=True)
    return 0


def cmd_renew(_: argparse.Namespace) -> int:
    from scripts import rotation

    with rotation.locked(), step("renew certificates past 2/3 of their lifetime, and the CRL"):
        rotation.renew()
    return 0


def cmd_rollover(args: argparse.Namespace) -> int:
    from scripts import rotation

    with rotation.locked(), step(f"client-CA rollover: {args.phase}"):
        if args.phase == "begin":
            rotation.rollover_begin()
        else:
            rotation.rollover_finish()
    return 0


def cmd_authz_cache(args: argparse.Namespace) -> int:
    if args.state != "status":
        with step(f"decision cache {args.state}"):
            gateway.set_authz_cache(args.state == "on")
            running = procs.running(config.NGINX) is not None
            say(f"    saved; {'nginx reloaded' if running else 'applies at the next `make up`'}")
    enabled = gateway.authz_cache_enabled()
    say(
        f"decision cache: {'on' if enabled else 'off'} (allows for GET/HEAD, at most "
        f"{config.AUTHZ_CACHE_MAX_SECONDS} s, never past the token's exp or the cert's notAfter)"
    )
    return 0


def cmd_crl_watch(args: argparse.Namespace) -> int:
    return crlwatch.run(args.interval, args.rounds)


def cmd_validate(_: argparse.Namespace) -> int:
    failed = 0
    for name, problems in validate.everything().items():
        say(f"{name}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            say(f"  - {problem}")
        failed += len(problems)
    say("all valid" if not failed else f"{failed} problem(s); fix them, then `make up`")
    return 1 if failed else 0


def cmd_env(args: argparse.Namespace) -> int:
    if args.credentials:
        for name, value in sorted(hand_env().items()):
            sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
        return 0
    write_env_file()
    sys.stdout.write(config.ENV_FILE.read_text())
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.5 and 3600 seconds")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.zt",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"state folder: {config.STATE}\ntool cache:   {config.CACHE}",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, fn, help_ in (
        ("up", cmd_up, "install tools, start the stack, apply Terraform (idempotent)"),
        ("status", cmd_status, "service health, every issued certificate, the CRL"),
        ("down", cmd_down, "stop every process we started; keep state"),
        ("clean", cmd_clean, "down, then delete the state folder"),
        ("renew", cmd_renew, "rotate certs past 2/3 of their lifetime, refresh the CRL; cron-safe"),
        (
            "validate",
            cmd_validate,
            "check the policy, the verifier and API settings, nginx's rendered config and "
            "both Terraform roots without applying anything; exit 1 listing every problem",
        ),
    ):
        sub.add_parser(name, help=help_, description=help_).set_defaults(fn=fn)
    env = sub.add_parser(
        "env",
        help="print .state/env.sh, the shell exports for running terraform/bao by hand",
        description="Without options: (re)write and print .state/env.sh. --credentials: print "
        "the variables it evaluates when sourced (a scoped OpenBao token, the Keycloak admin "
        "credentials, every TF_VAR_ the bring-up passes): meant for `eval`, not a terminal.",
    )
    env.add_argument("--credentials", action="store_true", help="print the secret exports")
    env.set_defaults(fn=cmd_env)
    rot = sub.add_parser(
        "rotate",
        help="issue a new certificate from OpenBao and switch to it without downtime",
        description="Issue a new certificate through the least-privilege AppRole, write it "
        "atomically (bundle, key 0600, cert), and reload the service gracefully. "
        "OpenBao sealed/unreachable: exit 1, current files untouched.",
    )
    rot.add_argument("kind", choices=["client", "server"], help="workload or serving certificate")
    rot.add_argument("name", help="workload identity (client) or nginx|keycloak|vault (server)")
    rot.set_defaults(fn=cmd_rotate)
    rev = sub.add_parser(
        "revoke",
        help="revoke a certificate by serial; nginx refuses it from then on",
        description="Revoke by serial (hex, colons optional) with the revoker AppRole, "
        "rebuild the CRL and reload nginx with it.",
    )
    rev.add_argument("serial", help="certificate serial, e.g. 70:af:97:... (see `make status`)")
    rev.add_argument(
        "--disable-client",
        action="store_true",
        help="also disable the workload's Keycloak client (incident: its key leaked), so it "
        "gets no new token until `zt enable-client <identity>`",
    )
    rev.set_defaults(fn=cmd_revoke)
    enable = sub.add_parser(
        "enable-client",
        help="re-enable a workload's Keycloak client disabled by `revoke --disable-client`",
        description="Remove the identity from terraform/identity's disabled_workloads and "
        "apply; it gets tokens again (issue it a new certificate first: `rotate client`).",
    )
    enable.add_argument("identity", help="workload identity, e.g. python-client")
    enable.set_defaults(fn=cmd_enable_client)
    roll = sub.add_parser(
        "rollover-client-ca",
        help="introduce a new client issuing CA (begin) / retire the old one (finish)",
        description="begin: add a client issuing-CA generation with Terraform, trust old+new "
        "(nginx, verifier), reissue every workload cert from the new one. finish: drop the "
        "old generation (Terraform revokes it at the root), reload nginx and the verifier; "
        "certs from the old CA are refused from then on.",
    )
    roll.add_argument("phase", choices=["begin", "finish"])
    roll.set_defaults(fn=cmd_rollover)
    cache = sub.add_parser(
        "authz-cache",
        help="turn nginx's decision cache on or off, or show it",
        description="nginx may reuse the verifier's ALLOW for a GET/HEAD with the same token, "
        "client certificate, method and URI, for at most "
        f"{config.AUTHZ_CACHE_MAX_SECONDS} s and never past the token's exp or the "
        "certificate's notAfter. Denies are never cached. The choice is saved in the state "
        "folder and a running nginx is reloaded with it.",
    )
    cache.add_argument("state", choices=["on", "off", "status"])
    cache.set_defaults(fn=cmd_authz_cache)
    watch = sub.add_parser(
        "crl-watch",
        help="run the CRL watcher in the foreground (`make up` runs it as a service)",
        description="Poll OpenBao's client CRLs; when they change, install them for nginx and "
        "the verifier and reload nginx. This bounds how long a certificate revoked in OpenBao "
        "by any means keeps working. Rebuilds the CRLs before a third of their validity "
        "passes. A failed round keeps the installed CRL and is retried.",
    )
    watch.add_argument(
        "--interval",
        type=_positive_seconds,
        default=config.CRL_WATCH_SECONDS,
        help=f"seconds between checks (default {config.CRL_WATCH_SECONDS:g})",
    )
    watch.add_argument("--rounds", type=int, default=None, help="stop after N checks")
    watch.set_defaults(fn=cmd_crl_watch)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except StepFailed as e:
        say(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; state is kept, re-run the command to resume")
        return 130


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly (CLI only)
    sys.exit(main())
