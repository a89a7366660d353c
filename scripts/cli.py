"""zt — the ops tool's command line: argparse and dispatch, nothing else.

Each command calls one function of a layer below (``bringup``, ``pki.rotation``,
``terraform``, ``services.nginx``, ``validate``); `python -m scripts.zt` and the
`zt` entry point of pyproject.toml both run ``main``.

    python -m scripts.zt up        install tools (cached), start the stack, apply Terraform, demo
    python -m scripts.zt status    health of each service, every issued cert (CA, serial, expiry)
    python -m scripts.zt down      stop every process we started (by pid file); keep state
    python -m scripts.zt clean     down, then delete the state folder
    python -m scripts.zt env       print shell exports to use terraform/bao by hand
    python -m scripts.zt rotate client python-client   new workload cert (its own AppRole)
    python -m scripts.zt rotate server nginx           new serving cert + graceful reload
    python -m scripts.zt revoke <serial>               revoke, rebuild CRL, reload nginx
    python -m scripts.zt renew     rotate what is past 2/3 of its life; refresh the CRL (cron)
    python -m scripts.zt renew --every auto   the same on a schedule (the renewer service)
    python -m scripts.zt lifetimes --client-cert 120 --crl 180   short lifetimes (--default)
    python -m scripts.zt rollover-client-ca begin|finish   replace the client issuing CA
    python -m scripts.zt authz-cache on|off|status     nginx's decision cache (default on)
    python -m scripts.zt lockout [--threshold N --window S --period S|--default|--off|--clear]
    python -m scripts.zt backup    one archive: OpenBao snapshot, Keycloak database, state files
    python -m scripts.zt restore <archive>             a fresh state folder from an archive
    python -m scripts.zt audit rotate  start a new audit file, anchored in the hash chain
    python -m scripts.zt audit verify [FILE...]        walk the chain; name the first broken link
    python -m scripts.zt audit-sink    the second audit sink (`make up` runs it as a service)

`make up`, `make status`, `make down` and `make clean` call these.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from scripts import audit, backup, bringup, config, status, terraform, validate
from scripts.files import read_json
from scripts.pki import certs, lifetimes, rotation, schedule, watcher
from scripts.services import apps, auditsink, lockout, nginx, procs, systemd
from scripts.steps import StepFailed, say, step
from verifier.settings import settings_problems


def _run(fn: Callable[[], object]) -> Callable[[argparse.Namespace], int]:
    """A command without arguments: ``fn()``, exit 0 (a failure raises StepFailed)."""

    def command(_: argparse.Namespace) -> int:
        fn()
        return 0

    return command


def cmd_rotate(args: argparse.Namespace) -> int:
    with rotation.locked(), step(f"rotate {args.kind} {args.name}"):
        if args.kind == "client":
            result = rotation.rotate_client(args.name)
        else:
            result = rotation.rotate_server(args.name)
        say(f"    {result.report()}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
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
            terraform.set_workload_enabled(identity, enabled=False)
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
        terraform.set_workload_enabled(args.identity, enabled=True)
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    if args.every is not None:
        return schedule.run(None if args.every == schedule.AUTO else float(args.every), args.runs)
    with rotation.locked(), step("renew certificates past 2/3 of their lifetime, and the CRL"):
        rotation.report_renew()
    return 0


def cmd_lifetimes(args: argparse.Namespace) -> int:
    current = lifetimes.load()
    given = (args.client_cert, args.server_cert, args.crl)
    if not args.default and all(v is None for v in given):
        say(f"lifetimes: {current.describe()}")
        return 0
    if args.default and any(v is not None for v in given):
        raise StepFailed("--default takes no other option")
    profile = (
        lifetimes.Lifetimes()
        if args.default
        else current.updated(
            client_cert_seconds=args.client_cert,
            server_cert_seconds=args.server_cert,
            crl_seconds=args.crl,
        )
    )
    with rotation.locked(), step(f"lifetimes: {profile.describe()}"):
        for line in rotation.set_lifetimes(profile):
            say(f"    {line}")
    return 0


def cmd_rollover(args: argparse.Namespace) -> int:
    with rotation.locked(), step(f"client-CA rollover: {args.phase}"):
        if args.phase == "begin":
            rotation.rollover_begin()
        else:
            rotation.rollover_finish()
    return 0


def cmd_lockout(args: argparse.Namespace) -> int:
    current = lockout.saved()
    given = {
        name: float(value)
        for name, value in (
            ("threshold", args.threshold),
            ("window", args.window),
            ("period", args.period),
        )
        if value is not None
    }
    chosen = [flag for flag in ("default", "off", "clear") if getattr(args, flag)]
    if len(chosen) + bool(given) > 1:
        raise StepFailed("give numbers, --default, --off or --clear: one of them")
    if not chosen and not given:
        say(f"lockout: {lockout.describe(current)}")
        return 0
    choice = {
        "default": {},
        "off": {"threshold": 0.0},
        "clear": current,
    }.get(chosen[0] if chosen else "", {**current, **given})
    env = {lockout.CHOICES[name]: lockout.setting_value(v) for name, v in choice.items()}
    problems = [p for p in settings_problems(env) if p.startswith("ZT_VERIFIER_LOCKOUT")]
    if problems:
        raise StepFailed("refused:\n  " + "\n  ".join(problems))
    with step(f"lockout: {lockout.describe(choice)}; every count and lockout forgotten"):
        lockout.save(choice)
        lockout.clear()
        if procs.running(config.VERIFIER) is not None:
            did = apps.converge(apps.VERIFIER, nginx.reload_nginx_if_running)
            say(f"    verifier {did}")
            if did == "unchanged":
                nginx.reload_nginx_if_running()  # its lockout cache starts empty
        else:
            say("    saved; applies at the next `make up`")
    return 0


def cmd_authz_cache(args: argparse.Namespace) -> int:
    if args.state != "status":
        with step(f"decision cache {args.state}"):
            nginx.set_authz_cache(args.state == "on")
            running = procs.running(config.NGINX) is not None
            say(f"    saved; {'nginx reloaded' if running else 'applies at the next `make up`'}")
    enabled = nginx.authz_cache_enabled()
    say(
        f"decision cache: {'on' if enabled else 'off'} (allows for GET/HEAD, at most "
        f"{config.AUTHZ_CACHE_MAX_SECONDS} s, never past the token's exp or the cert's notAfter)"
    )
    return 0


def cmd_crl_watch(args: argparse.Namespace) -> int:
    return watcher.run(args.interval, args.rounds)


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
        for name, value in sorted(terraform.hand_env().items()):
            sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
        return 0
    terraform.write_env_file()
    sys.stdout.write(config.ENV_FILE.read_text())
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    backup.backup(args.output)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    backup.restore(args.archive)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    if args.action == "rotate":
        with step(f"rotate {config.AUDIT_LOG}"):
            done = audit.rotate_now(keep=args.keep)
            say(f"    archived as {done.archive.name} ({done.lines_before} chained lines)")
            say(f"    new file starts with: {done.anchor.decode().strip()}")
            for old in done.removed:
                say(f"    removed {old.name} (more than {args.keep} archives)")
        return 0
    return audit.verify_command(args.files, args.sink or None)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.5 and 3600 seconds")
    return value


def cmd_systemd_units(args: argparse.Namespace) -> int:
    with step(f"systemd units -> {args.out}"):
        for path in systemd.write_units(args.out):
            say(f"    {path}")
    return 0


def _interval(text: str) -> str:
    if text != schedule.AUTO:
        _positive_seconds(text)
    return text


def _whole_seconds(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of seconds")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.zt",
        description="zt: bring up, inspect, operate and tear down the zero-trust gateway.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"state folder: {config.STATE}\ntool cache:   {config.CACHE}",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, fn, help_ in (
        ("up", _run(bringup.up), "install tools, start the stack, apply Terraform (idempotent)"),
        ("down", _run(bringup.down), "stop every process we started; keep state"),
        ("clean", _run(bringup.clean), "down, then delete the state folder"),
        (
            "validate",
            cmd_validate,
            "check the policy, the verifier and API settings, nginx's rendered config and "
            "both Terraform roots without applying anything; exit 1 listing every problem",
        ),
    ):
        sub.add_parser(name, help=help_, description=help_).set_defaults(fn=fn)
    stat = sub.add_parser(
        "status",
        help="service health, every issued certificate, the CRL; exit 1 when unhealthy",
        description="Each service's supervisord state, pid and health (asked of the service: "
        "OpenBao unsealed, Keycloak ready, the verifier's and the API's /healthz, nginx's "
        "health listener, the CRL watcher's last round); every certificate and CA with its "
        "expiry and the CRL's next update, flagged when under 1/3 of life is left. Exit 0 "
        "when everything runs and is healthy and nothing expired (warnings allowed), else 1.",
    )
    stat.add_argument("--json", action="store_true", help="one JSON document, for machines")
    stat.set_defaults(fn=lambda args: status.status(args.json))
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
    lock = sub.add_parser(
        "lockout",
        help="show or set the lockout of certificates that present refused tokens",
        description="After THRESHOLD refused tokens from one client certificate within "
        "WINDOW seconds, the verifier refuses that certificate for PERIOD seconds (429 "
        "locked_out) and nginx keeps that answer, so it is refused without a verifier "
        "call. Without options: show the numbers. Saved in the state folder; the verifier "
        "is replaced blue/green and nginx reloaded with them. Every change (and --clear) "
        "forgets every count and lockout. --default: the verifier's (10 in 60 s -> "
        "300 s); --off: no lockout.",
    )
    lock.add_argument("--threshold", type=int, metavar="N")
    lock.add_argument("--window", type=float, metavar="SECONDS")
    lock.add_argument("--period", type=float, metavar="SECONDS")
    lock.add_argument("--default", action="store_true", help="the verifier's defaults")
    lock.add_argument("--off", action="store_true", help="no lockout (threshold 0)")
    lock.add_argument("--clear", action="store_true", help="forget every lockout now")
    lock.set_defaults(fn=cmd_lockout)
    units = sub.add_parser(
        "systemd-units",
        help="write systemd units for a production host (this checkout, this state folder)",
        description="One zt-<service>.service per stack service and zt.target, running the "
        "same launcher, argv and environment as `make up` (the environment in 0600 specs "
        "under the state folder, never in the units). Copy them to /etc/systemd/system, "
        "`systemctl daemon-reload`, `systemctl enable --now zt.target`; run `make down` "
        "first so the two supervisors never run the same services.",
    )
    units.add_argument("--out", type=Path, required=True, help="folder to write the units to")
    units.set_defaults(fn=cmd_systemd_units)
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
    bak = sub.add_parser(
        "backup",
        help="write one archive to restore the stack from (holds every secret: 0600)",
        description="Write one archive (tar.gz, 0600, folder 0700): OpenBao's raft snapshot "
        "(taken with the backup AppRole), Keycloak's database (copied while Keycloak is "
        "stopped: token requests fail for a few seconds, the gateway keeps serving) and the "
        "state files a restore needs (Terraform state, certificates, keys, credentials, the "
        "unseal key). Needs a running stack.",
    )
    bak.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"archive to write (default {config.BACKUP_DIR}/zt-backup-<UTC time>.tar.gz)",
    )
    bak.set_defaults(fn=cmd_backup)
    res = sub.add_parser(
        "restore",
        help="rebuild the state folder from a `zt backup` archive (then `make up`)",
        description="Check the whole archive, rebuild the state folder in a temporary folder "
        "(OpenBao's snapshot installed through a throwaway node), and rename it into place. "
        "Refuses an existing, non-empty state folder (`make clean` first). Then `make up`: "
        "same CAs, realm and clients as at the backup; everything after it is lost.",
    )
    res.add_argument("archive", type=Path, help="a file `zt backup` wrote")
    res.set_defaults(fn=cmd_restore)
    renew = sub.add_parser(
        "renew",
        help="rotate certs past 2/3 of their lifetime, refresh the CRL; cron-safe",
        description="Once (no option): rotate every certificate past 2/3 of its lifetime "
        "(serving certificates are reloaded and served before it returns) and rebuild the "
        "CRLs once a third of their validity has passed; cron-safe, idempotent, exit 1 if "
        "anything failed. --every: the renewer, in the foreground: the same on an interval, "
        "one JSON line per run, its last run in .state/run/renewer.json; a failed run is "
        "retried at the next interval (`make up` runs `renew --every auto` as a service).",
    )
    renew.add_argument(
        "--every",
        type=_interval,
        default=None,
        metavar="SECONDS|auto",
        help="run on this interval; auto: a tenth of the shortest certificate or CRL "
        f"lifetime in play, between {config.RENEW_INTERVAL_MIN_SECONDS:g} and "
        f"{config.RENEW_INTERVAL_MAX_SECONDS:g} s",
    )
    renew.add_argument("--runs", type=int, default=None, help="with --every: stop after N runs")
    renew.set_defaults(fn=cmd_renew)
    life = sub.add_parser(
        "lifetimes",
        help="show or set certificate and CRL lifetimes (kept in the state folder)",
        description="Without options: show them. Otherwise apply terraform/pki with the "
        "given lifetimes (its validations are the bounds: client certs 2 min - 7 days, "
        "serving certs 5 min - 90 days, CRLs >= 3 min in whole minutes), keep them in "
        ".state/pki/lifetimes.json (so .state/env.sh and every later apply pass the same), "
        "then reissue what changed and rebuild the CRLs. --default: back to "
        "terraform/pki's defaults.",
    )
    life.add_argument("--client-cert", type=_whole_seconds, metavar="SECONDS")
    life.add_argument("--server-cert", type=_whole_seconds, metavar="SECONDS")
    life.add_argument("--crl", type=_whole_seconds, metavar="SECONDS")
    life.add_argument("--default", action="store_true", help="terraform/pki's defaults")
    life.set_defaults(fn=cmd_lifetimes)
    aud = sub.add_parser(
        "audit",
        help="the audit trail: rotate the file, verify its hash chain",
        description="rotate: rename the audit file to <name>.<UTC time> and start a new one "
        "whose first line (an anchor) names it and continues its hash chain; keeps the newest "
        "--keep archives. verify [FILE...]: walk the chain (default: every archive, oldest "
        "first, then the live file) and compare it with the second sink's copy when readable "
        "(or with --sink FILE...); exit 0 `intact, N lines`, exit 1 naming the first broken "
        "link (file, line, edited/deleted/inserted/truncated) and every line that differs "
        "from the sink's copy.",
    )
    aud.add_argument("action", choices=["rotate", "verify"])
    aud.add_argument("files", nargs="*", type=Path, help="verify: files, oldest first")
    aud.add_argument("--sink", nargs="+", type=Path, help="verify: the sink's copy, oldest first")
    aud.add_argument("--keep", type=int, default=config.AUDIT_KEEP, help="rotate: archives kept")
    aud.set_defaults(fn=cmd_audit)
    sink = sub.add_parser(
        "audit-sink",
        help="run the second audit sink in the foreground (`make up` runs it as a service)",
        description="Receive every audit line the verifier sends to "
        f"{config.AUDIT_SINK_SOCKET} (only from its user) and append it to "
        f"{config.AUDIT_SINK_LOG}, as {config.AUDIT_USER} in a folder only that user can "
        "open; a rotation anchor rotates the copy too.",
    )
    sink.add_argument("--rounds", type=int, default=None, help="stop after N datagrams")
    sink.set_defaults(fn=lambda args: auditsink.run(args.rounds))
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except StepFailed as e:
        say(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; state is kept, re-run the command to resume")
        return 130
