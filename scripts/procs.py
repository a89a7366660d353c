"""Start and stop the processes the stack owns, by pid file only.

We never `pkill`/`killall`: a pid file records what we started, and `stop`
checks the pid still belongs to the command we started before signalling it.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from scripts import config
from scripts.steps import StepFailed, say


def port_in_use(port: int, host: str = config.HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def require_free_port(port: int, service: str) -> None:
    """Fail fast, naming the port, when something else already listens on it."""
    if port_in_use(port):
        raise StepFailed(
            f"port {config.HOST}:{port} (needed by {service}) is already in use; "
            f"stop whatever listens there (`ss -ltnp 'sport = :{port}'`) and re-run"
        )


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running(svc: config.Service) -> int | None:
    """The pid of ``svc`` if the pid file names a live process we started."""
    pid = read_pid(svc.pid_file)
    if pid is None:
        return None
    marker = svc.pid_file.with_suffix(".cmd")
    expected = marker.read_text() if marker.exists() else ""
    cmdline = _cmdline(pid)
    if not cmdline or (expected and not cmdline.startswith(expected)):
        return None  # stale pid file: the process is gone or the pid was reused
    return pid


def start(
    svc: config.Service,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached, logging to the service's log file; record its pid."""
    config.RUN.mkdir(parents=True, exist_ok=True)
    config.LOGS.mkdir(parents=True, exist_ok=True)
    if svc.port is not None:
        require_free_port(svc.port, svc.name)
    with open(svc.log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # own process group: ctrl-C on `make` doesn't kill it
        )
    svc.pid_file.write_text(f"{proc.pid}\n")
    # Remember what we started (first argv) so a reused pid is never signalled.
    svc.pid_file.with_suffix(".cmd").write_text(argv[0])
    return proc.pid


def stop(svc: config.Service, timeout: float = 30.0) -> bool:
    """SIGTERM the recorded pid, then SIGKILL after ``timeout``. True if it was running."""
    pid = running(svc)
    if pid is None:
        svc.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        say(f"    {svc.name} (pid {pid}) ignored SIGTERM for {timeout:.0f}s; sending SIGKILL")
        os.kill(pid, signal.SIGKILL)
    svc.pid_file.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and ") Z " not in stat.read_text()
