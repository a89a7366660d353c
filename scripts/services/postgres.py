"""PostgreSQL for the HA profile: Keycloak's database (docs/scaling.md).

Debian's ``postgresql-15`` binaries, never Debian's own cluster or service: our own data
directory (``config.POSTGRES_DIR``), made once by ``initdb`` and owned by
``config.POSTGRES_USER`` (PostgreSQL refuses to run as root), run by the stack's
supervisord like every service (restarted whenever it exits, SIGKILL included; its crash
recovery replays the WAL). It listens on ``127.0.0.1:config.POSTGRES_PORT`` and on a unix
socket in the state folder, nowhere else.

Who may connect (``pg_hba.conf``, written here, nothing else allowed):

* the superuser (``POSTGRES_USER``, the account the server runs as) over the unix socket
  only, by its operating-system identity (``peer``): the bring-up, ``zt backup`` and
  ``zt restore`` run ``psql``/``pg_dump`` as that account; it has no password at all;
* ``config.POSTGRES_ROLE`` to ``config.POSTGRES_DATABASE`` over TCP on loopback with
  ``scram-sha-256``: Keycloak's nodes. Its password is generated once and kept in
  ``config.KEYCLOAK_DB_PASSWORD`` (0600); the server only ever receives its SCRAM verifier
  (computed here, RFC 7677), so the password is in no SQL text and no server log.

Idempotent: a second ``start`` finds the server running with the same options, the role's
verifier matching the kept password and the database present, and touches nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from scripts import config
from scripts.files import read_json, write_atomic, write_secret_json
from scripts.services import accounts, procs
from scripts.steps import StepFailed, say, wait_until

HBA_FILE = config.POSTGRES_DIR / "pg_hba.conf"
FINGERPRINT = config.RUN / "postgres.fingerprint"
SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)
READY_SECONDS = 60.0


def superuser() -> str:
    """The database superuser: the operating-system account the server runs as, so that
    ``peer`` authentication on the unix socket admits exactly that account."""
    if accounts.privileged():
        return config.POSTGRES_USER
    return pwd.getpwuid(os.geteuid()).pw_name


def _connection(database: str) -> list[str]:
    """psql/pg_dump/pg_restore's flags: the superuser over the unix socket, ``database``."""
    return [
        "-h",
        str(config.POSTGRES_SOCKET_DIR),
        "-p",
        str(config.POSTGRES_PORT),
        "-U",
        superuser(),
        "-d",
        database,
    ]


def _as_owner() -> dict[str, Any]:
    """subprocess keyword arguments running a tool as the server's account."""
    if accounts.privileged():
        return {"user": config.POSTGRES_USER, "group": config.POSTGRES_USER, "extra_groups": []}
    return {}


def _owned_folder(path: Path) -> None:
    """A folder only the server's account may open (0700), created if missing."""
    path.mkdir(parents=True, exist_ok=True)
    if accounts.privileged():
        shutil.chown(path, user=config.POSTGRES_USER, group=config.POSTGRES_USER)
    os.chmod(path, 0o700)


def hba_text() -> str:
    return (
        "# Written by scripts/services/postgres.py; rewritten at every `make up`.\n"
        "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
        f"local   all       {superuser()}  peer\n"
        f"host    {config.POSTGRES_DATABASE}  {config.POSTGRES_ROLE}  {config.HOST}/32  "
        "scram-sha-256\n"
    )


def argv() -> list[str]:
    server = [
        str(config.POSTGRES_BIN / "postgres"),
        "-D",
        str(config.POSTGRES_DIR),
        "-p",
        str(config.POSTGRES_PORT),
        "-c",
        f"listen_addresses={config.HOST}",
        "-c",
        f"unix_socket_directories={config.POSTGRES_SOCKET_DIR}",
        "-c",
        f"hba_file={HBA_FILE}",
        "-c",
        "password_encryption=scram-sha-256",
        "-c",
        "max_connections=100",  # two nodes' pools (Keycloak's default max 100 each, mostly idle)
        "-c",
        "log_line_prefix=%m [%p] %q%u@%d ",
    ]
    if not accounts.privileged():
        return server
    # setpriv execs (no parent left behind): the pid file names the postmaster itself.
    user = config.POSTGRES_USER
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *server]


def fingerprint() -> str:
    return hashlib.sha256("\0".join([*argv(), hba_text()]).encode()).hexdigest()


def ready() -> bool:
    """The server accepts connections on its TCP address (``pg_isready``)."""
    proc = subprocess.run(
        [
            str(config.POSTGRES_BIN / "pg_isready"),
            "-q",
            "-h",
            config.HOST,
            "-p",
            str(config.POSTGRES_PORT),
            "-t",
            "2",
        ],
        capture_output=True,
    )
    return proc.returncode == 0


def health() -> tuple[bool, str]:
    """For ``zt status``."""
    where = f"{config.HOST}:{config.POSTGRES_PORT}"
    return (True, f"accepting on {where}") if ready() else (False, f"not accepting on {where}")


def _initdb() -> None:
    proc = subprocess.run(
        [
            str(config.POSTGRES_BIN / "initdb"),
            "-D",
            str(config.POSTGRES_DIR),
            "-U",
            superuser(),
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        **_as_owner(),
    )
    if proc.returncode != 0:
        raise StepFailed(
            f"initdb {config.POSTGRES_DIR} failed (exit {proc.returncode}): "
            f"{(proc.stdout + proc.stderr).strip()[-800:]}"
        )


def _write_hba() -> None:
    if HBA_FILE.exists() and HBA_FILE.read_text() == hba_text():
        return
    write_atomic(HBA_FILE, hba_text(), mode=0o600)
    if accounts.privileged():
        shutil.chown(HBA_FILE, user=config.POSTGRES_USER, group=config.POSTGRES_USER)


def start() -> str:
    """Initialise (first run), start or restart (options changed) the server, wait until it
    accepts connections, converge Keycloak's role and database; returns what was done."""
    done = []
    _owned_folder(config.POSTGRES_DIR)
    _owned_folder(config.POSTGRES_SOCKET_DIR)
    if not (config.POSTGRES_DIR / "PG_VERSION").exists():
        _initdb()
        done.append(f"initdb {config.POSTGRES_DIR}")
    _write_hba()
    wanted = fingerprint()
    recorded = FINGERPRINT.read_text().strip() if FINGERPRINT.exists() else ""
    if procs.running(config.POSTGRES) is not None and recorded != wanted:
        say("    PostgreSQL's options changed: restarting it")
        procs.stop(config.POSTGRES, timeout=30)
        done.append("restarted (options changed)")
    if procs.running(config.POSTGRES) is None:
        procs.start(config.POSTGRES, argv(), cwd=config.POSTGRES_DIR, launch="child")
        write_atomic(FINGERPRINT, wanted + "\n")
        if not done or done[-1] != "restarted (options changed)":
            done.append("started")
    wait_until(
        f"PostgreSQL accepting on {config.HOST}:{config.POSTGRES_PORT}",
        lambda: procs.alive_or_fail(config.POSTGRES) and ready(),
        READY_SECONDS,
        str(config.POSTGRES.log_file),
        interval=0.2,
    )
    done += ensure_keycloak_database()
    return ", ".join(done) or "running, unchanged"


# --- Keycloak's role and database -------------------------------------------------------


def keycloak_password() -> str:
    """Keycloak's database password: generated once, 0600, never logged."""
    if not config.KEYCLOAK_DB_PASSWORD.exists():
        write_secret_json(config.KEYCLOAK_DB_PASSWORD, {"password": secrets.token_urlsafe(32)})
    return read_json(config.KEYCLOAK_DB_PASSWORD)["password"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677):
    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``. Our passwords are
    URL-safe ASCII, which SASLprep leaves unchanged."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def verifier_matches(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM verifier was made from ``password`` (any salt/iterations)."""
    try:
        head, _keys = verifier.split("$", 2)[1:]
        iterations, salt = head.split(":")
        expected = scram_verifier(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, verifier)


def psql(sql: str, database: str = "postgres", **variables: str) -> str:
    """Run ``sql`` (on stdin, never on a command line) as the superuser over the unix
    socket; the unaligned, tuples-only output. ``variables`` become psql variables, which
    ``sql`` quotes itself (``:'name'`` a literal, ``:"name"`` an identifier)."""
    for name, value in variables.items():
        if "'" in value or "\\" in value or "\n" in value:
            raise StepFailed(f"psql variable {name}: quote, backslash or newline refused")
    script = "".join(f"\\set {name} '{value}'\n" for name, value in variables.items()) + sql
    proc = subprocess.run(
        [
            str(config.POSTGRES_BIN / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            *_connection(database),
        ],
        input=script,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
        **_as_owner(),
    )
    if proc.returncode != 0:
        raise StepFailed(f"psql failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def ensure_keycloak_database() -> list[str]:
    """Role ``POSTGRES_ROLE`` (LOGIN, its verifier matching the kept password) and database
    ``POSTGRES_DATABASE`` owned by it; what had to change."""
    done = []
    names = {"role": config.POSTGRES_ROLE, "db": config.POSTGRES_DATABASE}
    password = keycloak_password()
    stored = psql(
        "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = :'role';", **names
    )
    if not stored or not verifier_matches(stored, password):
        verifier = scram_verifier(password, secrets.token_bytes(16))
        exists = psql("SELECT 1 FROM pg_roles WHERE rolname = :'role';", **names)
        verb = "ALTER" if exists else "CREATE"
        psql(f"{verb} ROLE :\"role\" LOGIN PASSWORD :'verifier';", **names, verifier=verifier)
        done.append(f"role {config.POSTGRES_ROLE} {'password set' if exists else 'created'}")
    if not psql("SELECT 1 FROM pg_database WHERE datname = :'db';", **names):
        psql('CREATE DATABASE :"db" OWNER :"role" ENCODING \'UTF8\';', **names)
        psql('REVOKE ALL ON DATABASE :"db" FROM PUBLIC;', **names)
        done.append(f"database {config.POSTGRES_DATABASE} created")
    return done


def jdbc_url() -> str:
    return f"jdbc:postgresql://{config.HOST}:{config.POSTGRES_PORT}/{config.POSTGRES_DATABASE}"


# --- backup and restore (scripts/backup.py) ------------------------------------------------


def dump() -> bytes:
    """``pg_dump --format=custom`` of Keycloak's database: consistent while Keycloak runs
    (one repeatable-read snapshot), so no node stops for a backup."""
    proc = subprocess.run(
        [
            str(config.POSTGRES_BIN / "pg_dump"),
            "--format=custom",
            *_connection(config.POSTGRES_DATABASE),
        ],
        capture_output=True,
        cwd="/",
        timeout=600,
        **_as_owner(),
    )
    if proc.returncode != 0 or not proc.stdout.startswith(b"PGDMP"):
        raise StepFailed(
            f"pg_dump {config.POSTGRES_DATABASE} failed (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()[-500:]}"
        )
    return proc.stdout


def restore(dump_file: Path, database: str = config.POSTGRES_DATABASE) -> None:
    """``pg_restore --clean`` of ``dump_file`` into ``database``, its objects owned by
    Keycloak's role. Into Keycloak's own database only while its nodes are stopped (the
    restore replaces their tables)."""
    running = any(procs.running(node) is not None for node in config.KEYCLOAK_NODES)
    if database == config.POSTGRES_DATABASE and running:
        raise StepFailed("Keycloak's nodes are running; a database restore needs them stopped")
    proc = subprocess.run(
        [
            str(config.POSTGRES_BIN / "pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            f"--role={config.POSTGRES_ROLE}",
            "--single-transaction",
            "--exit-on-error",
            *_connection(database),
        ],
        input=dump_file.read_bytes(),
        capture_output=True,
        cwd="/",
        timeout=600,
        **_as_owner(),
    )
    if proc.returncode != 0:
        raise StepFailed(
            f"pg_restore into {database} failed (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()[-500:]}"
        )


def load_pending_restore() -> str | None:
    """The dump ``zt restore`` left (``config.POSTGRES_PENDING_RESTORE``), loaded before
    Keycloak's nodes start, then removed; None when there is none."""
    pending = config.POSTGRES_PENDING_RESTORE
    if not pending.exists():
        return None
    restore(pending)
    size = pending.stat().st_size
    pending.unlink()
    return f"restored Keycloak's database from the backup ({size} bytes)"
