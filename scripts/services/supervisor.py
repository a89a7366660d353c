"""supervisord (PyPI ``supervisor``) runs the stack's services and restarts any that exits.

``make up`` starts one supervisord per state folder (its socket, pid file and config in
``config.SUPERVISOR_DIR`` and ``config.RUN``, 0700, root only) and adds each service to it
as a *program*: ``python -m scripts.services.launch <spec>``, where the spec (0600 JSON)
holds the service's argv, environment, working folder and pid file — so no secret is in
supervisord's config or on a command line. Every program has ``autorestart=true``: a
service that exits for any reason, SIGKILL included, is started again at once (a crash
during start-up is retried with supervisord's back-off: 1 s, 2 s, 3 s …,
``START_RETRIES`` times). ``make down`` stops each program and then supervisord: nothing
is left running.

Programs are added and removed one at a time (``reloadConfig`` + ``addProcessGroup`` /
``removeProcessGroup``), which is what lets the verifier and the API be replaced
blue/green: the new master is a new program, the old one is removed once nginx has
drained it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from scripts import config
from scripts.files import write_atomic, write_secret
from scripts.steps import StepFailed, wait_until

SUPERVISORD = Path(sys.prefix) / "bin" / "supervisord"
CONF = config.SUPERVISOR_DIR / "supervisord.conf"
PROGRAMS = config.SUPERVISOR_DIR / "programs"
SPECS = config.SUPERVISOR_DIR / "specs"
SOCKET = config.RUN / "supervisor.sock"
PID_FILE = config.RUN / "supervisord.pid"
# The same two files in any state folder (the other profile's: ``pid_in``).
_PID_FILE_IN_STATE = PID_FILE.relative_to(config.STATE)
_CONF_IN_STATE = CONF.relative_to(config.STATE)
LOG = config.LOGS / "supervisord.log"
START_RETRIES = 100  # failed starts in a row before supervisord gives up (FATAL)
LOG_MAX_BYTES = "50MB"  # per service log file, then rotated
LOG_BACKUPS = 5
# supervisord's states of a program that mean "not coming up by itself right now".
DOWN_STATES = frozenset({"BACKOFF", "FATAL", "EXITED", "STOPPED", "UNKNOWN"})


def _conf_text() -> str:
    return f"""; Written by scripts/services/supervisor.py; `make down` stops it.
[unix_http_server]
file={SOCKET}
chmod=0700

[supervisord]
logfile={LOG}
logfile_maxbytes=10MB
logfile_backups=3
pidfile={PID_FILE}
childlogdir={config.LOGS}
directory={config.REPO}
umask=022

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{SOCKET}

[include]
files = {PROGRAMS}/*.conf
"""


def _program_text(name: str, spec_file: Path, log_file: Path, stop_seconds: float) -> str:
    return f"""[program:{name}]
command={sys.executable} -m scripts.services.launch {spec_file}
directory={config.REPO}
autostart=true
autorestart=true
startsecs=1
startretries={START_RETRIES}
stopsignal=TERM
stopwaitsecs={max(1, int(stop_seconds))}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={log_file}
stdout_logfile_maxbytes={LOG_MAX_BYTES}
stdout_logfile_backups={LOG_BACKUPS}
"""


def rpc() -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC interface over its unix socket."""
    transport = SupervisorTransport(serverurl=f"unix://{SOCKET}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def _is_ours(value: int) -> bool:
    """``value`` is a live supervisord of this state folder (a zombie has no cmdline)."""
    try:
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except OSError:
        return False
    return b"supervisord" in cmdline and str(CONF).encode() in cmdline


def pid() -> int | None:
    """supervisord's pid, if it runs (its pid file names a live supervisord)."""
    return pid_in(config.STATE)


def pid_in(state: Path) -> int | None:
    """The pid of the supervisord of the state folder ``state``, if one runs there (the
    other profile's, for ``zt up``'s one-profile-at-a-time check)."""
    pid_file = state / _PID_FILE_IN_STATE
    conf = state / _CONF_IN_STATE
    try:
        value = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return value if b"supervisord" in cmdline and str(conf).encode() in cmdline else None


def answers() -> bool:
    try:
        return rpc().supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error):
        return False


def ensure_running() -> str:
    """Start supervisord for this state folder unless it runs; returns what it did."""
    for folder in (config.SUPERVISOR_DIR, PROGRAMS, SPECS):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    config.RUN.mkdir(parents=True, exist_ok=True)
    config.LOGS.mkdir(parents=True, exist_ok=True)
    if not CONF.exists() or CONF.read_text() != _conf_text():
        write_atomic(CONF, _conf_text())
    if pid() is not None and answers():
        return "running"
    # Programs belong to the supervisord that added them: a new one starts empty (the
    # bring-up adds each service, after stopping any a killed supervisord left).
    for stale in [*PROGRAMS.glob("*.conf"), *SPECS.glob("*.json")]:
        stale.unlink()
    SOCKET.unlink(missing_ok=True)
    out = subprocess.run(
        [str(SUPERVISORD), "-c", str(CONF)], capture_output=True, text=True, cwd=config.REPO
    )
    if out.returncode != 0:
        raise StepFailed(f"supervisord did not start: {out.stderr.strip()}; see {LOG}")
    wait_until("supervisord answering on its socket", answers, 20, str(LOG), interval=0.1)
    return "started"


def spec_file(name: str) -> Path:
    return SPECS / f"{name}.json"


def program_file(name: str) -> Path:
    return PROGRAMS / f"{name}.conf"


def add(name: str, spec: dict, log_file: Path, stop_seconds: float) -> None:
    """Add program ``name`` running ``spec`` and start it (replacing a stopped one)."""
    ensure_running()
    write_secret(spec_file(name), json.dumps(spec, indent=1) + "\n")
    write_atomic(program_file(name), _program_text(name, spec_file(name), log_file, stop_seconds))
    server = rpc().supervisor
    if name in names():
        remove(name, keep_files=True)
    server.reloadConfig()
    try:
        server.addProcessGroup(name)
    except xmlrpc.client.Fault as e:
        raise StepFailed(f"supervisord refused program {name}: {e.faultString}; see {LOG}") from e


def remove(name: str, keep_files: bool = False) -> bool:
    """Stop program ``name`` (TERM, then KILL after its stop time) and forget it.
    True if it was running."""
    was_running = state(name) in {"RUNNING", "STARTING", "BACKOFF"}
    server = rpc().supervisor
    with contextlib.suppress(xmlrpc.client.Fault):  # NOT_RUNNING: already stopped
        server.stopProcess(name, True)
    with contextlib.suppress(xmlrpc.client.Fault):  # BAD_NAME: never added
        server.removeProcessGroup(name)
    if not keep_files:
        program_file(name).unlink(missing_ok=True)
        spec_file(name).unlink(missing_ok=True)
    return was_running


def names() -> set[str]:
    if pid() is None:
        return set()
    try:
        return {info["name"] for info in rpc().supervisor.getAllProcessInfo()}
    except (OSError, xmlrpc.client.Error):
        return set()


def state(name: str) -> str | None:
    """supervisord's state of program ``name`` (RUNNING, STARTING, BACKOFF, …), or None."""
    if pid() is None:
        return None
    try:
        return rpc().supervisor.getProcessInfo(name)["statename"]
    except (OSError, xmlrpc.client.Error):
        return None


def info(name: str) -> dict | None:
    """supervisord's record of program ``name`` (state, pid, start time, exit status)."""
    if pid() is None:
        return None
    try:
        return rpc().supervisor.getProcessInfo(name)
    except (OSError, xmlrpc.client.Error):
        return None


def shutdown(timeout: float = 30.0) -> bool:
    """Stop supervisord itself (after its programs). True if it was running."""
    value = pid()
    if value is None:
        return False
    with contextlib.suppress(OSError, xmlrpc.client.Error):
        rpc().supervisor.shutdown()
    # Its pid file goes before the process does: wait for the process.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_ours(value):
        time.sleep(0.1)
    if _is_ours(value):
        os.kill(value, 9)
    for leftover in PROGRAMS.glob("*.conf"):
        leftover.unlink()
    for leftover in SPECS.glob("*.json"):
        leftover.unlink()
    return True
