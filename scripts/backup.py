"""Backup and restore of the whole stack: ``zt backup`` and ``zt restore <archive>``.

One archive (a gzipped tar, 0600 in a 0700 folder) holds everything a state folder
needs to run again with the same CAs and the same realm:

* ``openbao/raft.snap``: OpenBao's raft snapshot (``sys/storage/raft/snapshot``),
  taken with the ``backup`` AppRole, whose policy reads that one path
  (terraform/pki backup.tf). It is encrypted by OpenBao's barrier; the unseal key
  that opens it is in the archive too, so the archive is a secret as a whole.
* ``state/keycloak/db/...``: Keycloak's H2 database, copied while Keycloak is stopped.
  ``kc.sh export`` cannot run beside the server on the dev-file database (the server
  holds H2's file lock: "Database may be already in use"), and a copy of a live H2
  file is not consistent. So Keycloak stops for the copy and starts again: token
  requests fail for that window (measured and printed; docs/operations.md), while
  the gateway keeps verifying tokens with its cached keys. The copy restores the
  realm, the clients with their internal ids, service accounts, role mappings,
  signing keys and the master realm's admin matching ``keycloak/admin.json``.
* HA profile (``config.HA_KEYCLOAK``): instead of the H2 copy, ``pg_dump`` (custom
  format) of Keycloak's PostgreSQL database, taken while both nodes keep serving, stored
  as ``state/keycloak/restore.pgdump``; the first ``make up`` on the restored folder loads
  it with ``pg_restore`` into the fresh database before the nodes start
  (scripts/services/postgres.py).
* ``state/...``: the state folder's other files (Terraform state, certificates and
  keys, AppRole credentials, the unseal key, Keycloak's admin and trust-store
  password, the gateway's keys ...), minus what ``make up`` rebuilds or what only a
  running stack has (``config.BACKUP_EXCLUDED``).
* ``manifest.json``: format, time, versions, CA serials, and the SHA-256, mode and
  owner of every member, so a restore checks the whole archive before it writes.

Consistency: the backup holds the rotation lock (rotate, revoke, renew, rollover and
the CRL watcher wait), so no certificate is issued between the snapshot and the state
files. It does not stop a concurrent ``make up``: do not run both at once.

Restore writes into a temporary folder next to the state folder and renames it into
place only when everything worked (a failure leaves nothing). OpenBao's snapshot is
installed through a fresh, throwaway node on that folder: initialise it, unseal it,
``snapshot-force`` with its root token; the node then holds the old data, sealed by
the old unseal key from the archive, and the throwaway root token is gone with the
data it lived in. The restored node is unsealed once to check it (CA serials, an
AppRole login), then stopped; ``make up`` starts the stack on the restored folder.
OpenBao's data records the declared audit device with its file path and OpenBao will
not unseal with a config naming another, so the throwaway node logs to the final path
(``config.VAULT_AUDIT_LOG``, inside the absent state folder) and that file is moved
into the temporary folder when the node stops; for the same reason an archive restores
only to the state path it was taken from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import hvac
import hvac.exceptions
import requests
from cryptography import x509

from scripts import config, tools
from scripts.files import read_json
from scripts.pki import certs, rotation
from scripts.services import baonodes, keycloak, openbao, postgres, procs
from scripts.steps import StepFailed, say, step, wait_until

MANIFEST = "manifest.json"
SNAPSHOT = "openbao/raft.snap"
STATE_PREFIX = "state/"
KEYCLOAK_DB = config.KEYCLOAK_DIR / "db"


@dataclass(frozen=True)
class Member:
    """One file of the archive: its bytes, and the mode and owner to restore."""

    data: bytes
    mode: int
    uid: int
    gid: int

    def entry(self) -> dict[str, Any]:
        return {
            "sha256": hashlib.sha256(self.data).hexdigest(),
            "size": len(self.data),
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
        }


# --- backup ---------------------------------------------------------------------------


def default_archive() -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return config.BACKUP_DIR / f"zt-backup-{stamp}.tar.gz"


def backup(output: Path | None = None) -> Path:
    """Write one archive of the running stack (see the module docstring); returns its path."""
    t0 = time.monotonic()
    dest = (output or default_archive()).resolve()
    if dest.exists():
        raise StepFailed(f"{dest} exists; name another file (--output) or move it away")
    if dest.is_relative_to(config.STATE):
        raise StepFailed(f"{dest} is inside the state folder, which `make clean` deletes")
    _require_running_openbao()
    members: dict[str, Member] = {}
    with rotation.locked():
        with step("backup: OpenBao raft snapshot (backup AppRole: sys/storage/raft/snapshot)"):
            members[SNAPSHOT] = _own_file(take_snapshot())
            say(f"    {len(members[SNAPSHOT].data)} bytes")
        if config.HA_KEYCLOAK:
            with step("backup: Keycloak's PostgreSQL database (pg_dump; Keycloak keeps serving)"):
                members.update(dump_keycloak_database())
        else:
            with step("backup: Keycloak database (stopped for a consistent copy, then started)"):
                db, down_for = copy_keycloak_db()
                members.update(db)
                if down_for is None:
                    say(f"    Keycloak was not running: {len(db)} file(s) copied")
                else:
                    say(
                        f"    {len(db)} file(s) copied; Keycloak was down for {down_for:.1f}s "
                        "(token requests failed meanwhile; the gateway kept verifying)"
                    )
        with step("backup: state files (Terraform state, certificates, keys, credentials)"):
            files = state_files()
            members.update(files)
            say(f"    {len(files)} file(s)")
    with step(f"backup: write {dest} (0600, folder 0700)"):
        write_archive(dest, members)
        say(f"    {dest.stat().st_size} bytes")
    say(
        f"==> backup written in {time.monotonic() - t0:.1f}s: {dest}\n"
        "    it holds every secret of the stack (unseal key, keys, credentials): keep it so"
    )
    return dest


def _require_running_openbao() -> None:
    if not config.STATE.exists():
        raise StepFailed(f"{config.STATE} does not exist: nothing to back up")
    h = openbao.health()
    if h is None or h.get("sealed") or not h.get("initialized"):
        raise StepFailed(
            "OpenBao is not running and unsealed, and a raft snapshot needs it: `make up` first"
        )


def take_snapshot() -> bytes:
    """OpenBao's raft snapshot, read with the backup AppRole's token."""
    name = certs.pki_outputs()["operator_approles"].get("backup")
    if name is None:
        raise StepFailed("terraform/pki has no backup AppRole yet; `make up` creates it")
    client = certs.approle_client(name)
    try:
        response = client.sys.take_raft_snapshot()
        data = response.content
    except (hvac.exceptions.VaultError, requests.RequestException) as e:
        raise certs.vault_failure(e, "taking OpenBao's raft snapshot") from e
    if response.status_code != 200 or not data.startswith(b"\x1f\x8b"):
        raise StepFailed(f"OpenBao's raft snapshot answered {response.status_code}, not a snapshot")
    return data


def copy_keycloak_db() -> tuple[dict[str, Member], float | None]:
    """Keycloak's H2 files, copied while it is stopped; (files, seconds it was down)."""
    running = procs.running(config.KEYCLOAK) is not None
    t0 = time.monotonic()
    if running:
        procs.stop(config.KEYCLOAK, timeout=60)
    try:
        found = {
            _state_name(path): _member(path)
            for path in sorted(KEYCLOAK_DB.rglob("*"))
            if path.is_file() and not path.is_symlink()
        }
    finally:
        if running:
            try:
                keycloak.start()
            except StepFailed as e:
                raise StepFailed(
                    f"{e}\nKeycloak was stopped for the backup and did not start again; "
                    "`make up` starts it"
                ) from e
    if not found:
        raise StepFailed(f"{KEYCLOAK_DB} holds no database; `make up` first")
    return found, (time.monotonic() - t0) if running else None


def dump_keycloak_database() -> dict[str, Member]:
    """The HA profile: ``pg_dump --format=custom`` of Keycloak's database, taken while both
    nodes serve (one consistent snapshot). It is archived as the state file
    ``config.POSTGRES_PENDING_RESTORE``, so a restored folder carries it and the next
    ``make up`` loads it into the fresh database before Keycloak's nodes start."""
    data = postgres.dump()
    say(f"    {len(data)} bytes (custom format); no Keycloak node stopped")
    return {_state_name(config.POSTGRES_PENDING_RESTORE): _own_file(data)}


def _excluded(rel: PurePosixPath) -> bool:
    text = rel.as_posix()
    if any(part.startswith(".") for part in rel.parts):  # temp files of atomic writes
        return True
    return any(
        text == e or text.startswith(e + "/") for e in (*config.BACKUP_EXCLUDED, "keycloak/db")
    )


def state_files() -> dict[str, Member]:
    """Every regular file of the state folder that a restore needs (see BACKUP_EXCLUDED)."""
    found = {}
    for folder, dirs, files in os.walk(config.STATE):
        base = PurePosixPath(Path(folder).relative_to(config.STATE).as_posix())
        dirs[:] = sorted(d for d in dirs if not _excluded(base / d))
        for name in sorted(files):
            path = Path(folder) / name
            if _excluded(base / name) or path.is_symlink() or not path.is_file():
                continue
            found[_state_name(path)] = _member(path)
    return found


def _state_name(path: Path) -> str:
    return STATE_PREFIX + path.relative_to(config.STATE).as_posix()


def _member(path: Path) -> Member:
    st = path.stat()
    return Member(path.read_bytes(), st.st_mode & 0o7777, st.st_uid, st.st_gid)


def _own_file(data: bytes) -> Member:
    return Member(data, 0o600, os.geteuid(), os.getegid())


def _state_dirs() -> dict[str, int]:
    """Mode of every folder of the state folder the archive has files in (0700 ones stay so)."""
    return {
        path.relative_to(config.STATE).as_posix(): path.stat().st_mode & 0o7777
        for path in [config.STATE, *config.STATE.rglob("*")]
        if path.is_dir() and not path.is_symlink()
    }


def manifest(members: dict[str, Member]) -> dict[str, Any]:
    outputs = certs.pki_outputs()
    return {
        "format": config.BACKUP_FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "state": str(config.STATE),
        "openbao_version": config.OPENBAO_VERSION,
        "keycloak_version": config.KEYCLOAK_VERSION,
        "ca_serials": outputs["ca_serials"],
        "dirs": _state_dirs(),
        "files": {name: m.entry() for name, m in sorted(members.items())},
    }


def write_archive(dest: Path, members: dict[str, Member]) -> None:
    """The tar.gz at ``dest``: created 0600 in a 0700 folder, fsynced, renamed into place."""
    if not dest.parent.exists():
        dest.parent.mkdir(parents=True, mode=0o700)
    if dest.parent == config.BACKUP_DIR:
        os.chmod(dest.parent, 0o700)
    text = json.dumps(manifest(members), indent=2, sort_keys=True).encode()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w:gz") as tar:
                for name, data in [(MANIFEST, text), *((n, m.data) for n, m in members.items())]:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mode = 0o600
                    info.mtime = int(time.time())
                    tar.addfile(info, io.BytesIO(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- restore --------------------------------------------------------------------------


def restore(archive: Path) -> None:
    """Rebuild the state folder from ``archive``; refuses an existing, non-empty one."""
    t0 = time.monotonic()
    refuse_live_state(archive)
    with step(f"restore: read and check {archive}"):
        info, members = read_archive(archive)
        say(f"    {len(members)} file(s), taken {info['created_at']} from {info['state']}")
        if info["state"] != str(config.STATE):
            raise StepFailed(
                f"{archive} is a backup of {info['state']}, not of {config.STATE}: OpenBao's "
                "data names its audit log by path and refuses another, so restore it in "
                f"the same place (ZT_STATE={info['state']})"
            )
    tmp = Path(tempfile.mkdtemp(dir=config.STATE.parent, prefix=f".{config.STATE.name}.restore-"))
    try:
        with step(f"restore: state files into {tmp.name}"):
            write_state(tmp, info, members)
        with step("restore: OpenBao raft snapshot through a throwaway node"):
            restore_openbao(tmp, members[SNAPSHOT].data, info)
        with step(f"restore: move into place as {config.STATE}"):
            refuse_live_state(archive)
            if config.STATE.exists():
                config.STATE.rmdir()  # empty (checked just above)
            os.rename(tmp, config.STATE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(
        f"==> restored in {time.monotonic() - t0:.1f}s; `make up` starts the stack on it "
        "(same CAs, realm and clients; everything after the backup is lost)"
    )


def refuse_live_state(archive: Path) -> None:
    if config.STATE.exists() and any(config.STATE.iterdir()):
        raise StepFailed(
            f"{config.STATE} exists and is not empty: restore never overwrites a state "
            f"folder. `make clean` first (it deletes the current CAs and realm), then "
            f"`zt restore {archive}`"
        )


def read_archive(path: Path) -> tuple[dict[str, Any], dict[str, Member]]:
    """The manifest and every member, each checked against its SHA-256; StepFailed naming
    the problem for anything else (corrupt, truncated, foreign, tampered)."""
    raw: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for entry in tar:
                name = _safe_name(entry.name)
                if not entry.isfile() or name in raw:
                    raise StepFailed(
                        f"{path} is corrupt or not a zt backup (unexpected member "
                        f"{entry.name!r}); nothing was written"
                    )
                fh = tar.extractfile(entry)
                raw[name] = fh.read() if fh else b""
    except FileNotFoundError as e:
        raise StepFailed(f"{path}: no such archive") from e
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise StepFailed(
            f"{path} is corrupt or truncated ({e}); nothing was written. Use another backup"
        ) from e
    try:
        info = json.loads(raw.pop(MANIFEST))
        files = info["files"]
        if info.get("format") != config.BACKUP_FORMAT:
            raise StepFailed(f"{path}: backup format {info.get('format')!r} is not supported")
    except (KeyError, ValueError, TypeError) as e:
        raise StepFailed(f"{path} is not a zt backup (no readable {MANIFEST}: {e})") from e
    if set(files) != set(raw) or SNAPSHOT not in raw:
        missing = sorted(set(files) - set(raw)) + ([SNAPSHOT] if SNAPSHOT not in raw else [])
        raise StepFailed(f"{path}: members do not match its manifest (missing {missing[:5]})")
    members = {}
    for name, data in raw.items():
        entry = files[name]
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise StepFailed(f"{path}: {name} does not match its SHA-256; the archive is corrupt")
        members[name] = Member(data, int(entry["mode"]), int(entry["uid"]), int(entry["gid"]))
    return info, members


def _safe_name(name: str) -> str:
    rel = PurePosixPath(name)
    if (
        rel.is_absolute()
        or ".." in rel.parts
        or not (name in (MANIFEST, SNAPSHOT) or name.startswith(STATE_PREFIX))
    ):
        raise StepFailed(
            f"the archive is corrupt or not a zt backup: member {name!r} is not one a zt "
            "backup writes; nothing was written"
        )
    return name


def write_state(root: Path, info: dict[str, Any], members: dict[str, Member]) -> None:
    """Every ``state/`` member under ``root`` with its mode (and owner, as root)."""
    os.chmod(root, 0o700)
    count = 0
    for name, member in members.items():
        if not name.startswith(STATE_PREFIX):
            continue
        path = root / name.removeprefix(STATE_PREFIX)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(member.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(path, member.mode)
        if os.geteuid() == 0:
            os.chown(path, member.uid, member.gid)
        count += 1
    # Every folder as it was, the state folder itself included (the services' accounts
    # must traverse it: a 0700 state folder locks the verifier out of its CA files).
    for rel, mode in sorted({".": 0o755, **info.get("dirs", {})}.items()):
        folder = root / rel
        if folder.is_dir():
            os.chmod(folder, int(mode))
    say(f"    {count} file(s) written")


def _throwaway() -> tuple[config.Service, Path, baonodes.Node | None]:
    """The node a restore installs the snapshot through: the single node, or in the HA
    profile the raft cluster's first node (its name, ports and data folder, so the restored
    raft configuration names it; the others join it afresh at `make up-ha`)."""
    if config.HA_OPENBAO:
        first = baonodes.FIRST
        return first.svc, first.data_dir, first
    return config.VAULT, config.VAULT_DATA, None


def _restore_addr() -> str:
    node = _throwaway()[2]
    return config.VAULT_ADDR if node is None else node.addr


def _render_vault_config(root: Path) -> Path:
    """vault/config.hcl.tmpl rendered for ``root`` (the throwaway node); `make up`
    renders the real one after the rename."""
    cert, key = (root / p.relative_to(config.STATE) for p in openbao.cert_paths())
    _, data, node = _throwaway()
    text = openbao.config_text(root / data.relative_to(config.STATE), cert, key, node, joins=False)
    path = root / "vault" / "restore.hcl"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def _health(ca: Path) -> dict[str, Any] | None:
    try:
        r = requests.get(
            f"{_restore_addr()}/v1/sys/health",
            params={"standbyok": "true", "sealedcode": "200", "uninitcode": "200"},
            verify=str(ca),
            timeout=2,
        )
        return r.json()
    except (requests.RequestException, ValueError):
        return None


def restore_openbao(root: Path, snapshot: bytes, info: dict[str, Any]) -> None:
    """Install ``snapshot`` into ``root/vault/data`` through a throwaway node, check it."""
    node, data, _ = _throwaway()
    svc = config.Service(node.name, node.port, root / "run", root / "logs")
    ca = root / config.VAULT_TLS_CA.relative_to(config.STATE)
    (root / data.relative_to(config.STATE)).mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = _render_vault_config(root)
    try:
        _prepare_audit_log()
        procs.start(svc, [str(tools.BAO), "server", f"-config={conf}"])
        log = str(svc.log_file)
        wait_until(
            "throwaway OpenBao",
            lambda: procs.alive_or_fail(svc) and _health(ca) is not None,
            60,
            log,
        )
        client = hvac.Client(url=_restore_addr(), verify=str(ca), timeout=60)
        fresh = client.sys.initialize(secret_shares=1, secret_threshold=1)
        client.sys.submit_unseal_keys(fresh["keys_base64"])
        _wait_unsealed(ca, log)
        client.token = fresh["root_token"]
        try:
            client.sys.force_restore_raft_snapshot(snapshot)
        except (hvac.exceptions.VaultError, requests.RequestException) as e:
            raise StepFailed(f"OpenBao refused the snapshot: {e}; see {log}") from e
        old_keys = read_json(root / config.VAULT_UNSEAL.relative_to(config.STATE))
        wait_until(
            "restored data unsealed with the archived key",
            lambda: _unsealed_with(client, ca, old_keys["unseal_keys_b64"]),
            90,
            log,
        )
        check_restored_openbao(root, ca, client, info)
        say(f"    snapshot of {len(snapshot)} bytes installed; unsealed with the archived key")
    except StepFailed as e:  # the log goes with the temporary folder: quote it
        lines = (
            svc.log_file.read_text(errors="replace").splitlines() if svc.log_file.exists() else []
        )
        tail = "\n".join(lines[-6:])
        raise StepFailed(f"{e}\nthe throwaway OpenBao's log ends:\n{tail}") from e
    finally:
        procs.stop(svc)
        conf.unlink(missing_ok=True)
        shutil.rmtree(root / "run", ignore_errors=True)
        _take_back_audit_log(root)


def _prepare_audit_log() -> None:
    """The throwaway node writes its audit log where the restored data says it lives,
    inside the (absent or empty) state folder; ``_take_back_audit_log`` moves it out."""
    config.STATE.mkdir(mode=0o700, exist_ok=True)
    config.VAULT_AUDIT_LOG.parent.mkdir(mode=0o700, exist_ok=True)


def _take_back_audit_log(root: Path) -> None:
    """Move the throwaway node's audit log into ``root`` and leave the state folder as it
    was (absent or empty): only empty folders are removed."""
    if config.VAULT_AUDIT_LOG.exists():
        (root / "logs").mkdir(mode=0o700, exist_ok=True)
        os.replace(config.VAULT_AUDIT_LOG, root / "logs" / config.VAULT_AUDIT_LOG.name)
    for folder in (config.VAULT_AUDIT_LOG.parent, config.STATE):
        with contextlib.suppress(OSError):  # not empty, or already gone
            folder.rmdir()


def _unsealed_with(client: hvac.Client, ca: Path, keys: list[str]) -> bool:
    """One poll after ``snapshot-force``: OpenBao seals itself once the snapshot's keyring
    is in place (not at once: it may still answer unsealed for a moment). Sealed: unseal
    with the archived key. Unsealed and active: done once the restored data answers (the
    archived operator AppRole's role exists; in the throwaway data it does not)."""
    h = _health(ca)
    if h is None:
        return False
    try:
        if h.get("sealed"):
            client.sys.submit_unseal_keys(keys)
            return False
        if h.get("standby"):
            return False
        return _restored_data_answers(client)
    except (hvac.exceptions.VaultError, requests.RequestException):
        return False


def _restored_data_answers(client: hvac.Client) -> bool:
    try:
        client.auth.token.lookup_self()  # the throwaway root token: gone with its data
    except hvac.exceptions.Forbidden:
        return True
    return False


def _wait_unsealed(ca: Path, log: str) -> None:
    wait_until(
        "OpenBao unsealed and active",
        lambda: (h := _health(ca)) is not None and not h.get("sealed") and not h.get("standby"),
        60,
        log,
    )


def check_restored_openbao(root: Path, ca: Path, client: hvac.Client, info: dict[str, Any]) -> None:
    """The restored node serves the archived CAs, and the archived operator AppRole logs in
    (the throwaway node's root token went with its data: ``_restored_data_answers``)."""
    outputs = read_json(root / config.PKI_OUTPUTS.relative_to(config.STATE))
    for key, mount in outputs["mounts"].items():
        r = requests.get(f"{_restore_addr()}/v1/{mount}/ca/pem", verify=str(ca), timeout=10)
        served = certs.format_serial(x509.load_pem_x509_certificate(r.content).serial_number)
        if served != info["ca_serials"][key].lower():
            raise StepFailed(
                f"restored {mount} serves CA {served}, the archive says {info['ca_serials'][key]}"
            )
    name = config.VAULT_OPERATOR_APPROLE
    creds = read_json(root / config.VAULT_APPROLES.relative_to(config.STATE) / f"{name}.json")
    try:
        client.auth.approle.login(role_id=creds["role_id"], secret_id=creds["secret_id"])
    except hvac.exceptions.VaultError as e:
        raise StepFailed(f"the archived {name} AppRole cannot log in: {e}") from e
    say(f"    CA serials as archived ({len(outputs['mounts'])} mounts); AppRole login works")
