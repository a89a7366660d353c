"""Start and stop the processes the stack owns, by pid file only.

We never `pkill`/`killall`: a pid file records what we started, and `stop`
checks the pid still belongs to the command we started before signalling it.

A ``supervised`` service (the stack's own) is a program of the stack's supervisord
(``supervisor.py``), which restarts it whenever it exits; its launcher
(``launch.py``) writes the pid file at every start, so ``running`` always names the
live process. Stopping one goes through supervisord (a signal would only make it
restart). A service may run as a program of another name (a blue/green master:
``verifier-1a2b3c4d``); ``<service>.program`` then names it. Benchmark and test
processes are not supervised: started here, detached, stopped by signal.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from scripts import config
from scripts.files import write_atomic
from scripts.services import launch, supervisor
from scripts.steps import StepFailed, say, wait_until

START_RECORDED_SECONDS = 15.0  # until a supervised service's launcher wrote its pid


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


# Kernel start time of a pid (None if gone or a zombie): pid + start time identify a
# process for good (a recycled pid has another; an exec keeps it). The launcher's.
_start_time = launch.start_time
_remove_stale_sockets = launch.remove_stale_sockets


def program(svc: config.Service) -> str:
    """The supervisord program (and pid-file name) ``svc`` runs as now."""
    try:
        return _program_file(svc).read_text().strip() or svc.name
    except OSError:
        return svc.name


def _program_file(svc: config.Service) -> Path:
    return svc.run_dir / f"{svc.name}.program"


def _pid_file(svc: config.Service) -> Path:
    return svc.run_dir / f"{program(svc)}.pid"


def running(svc: config.Service) -> int | None:
    """The pid of ``svc`` if its pid file names a live process that we started."""
    pid_file = _pid_file(svc)
    pid = read_pid(pid_file)
    if pid is None:
        return None
    marker = pid_file.with_suffix(".start")
    started = _start_time(pid)
    if started is None or not marker.exists() or marker.read_text().strip() != started:
        return None  # stale pid file: the process is gone or the pid was reused
    return pid


def start(
    svc: config.Service,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    not_inherited: tuple[str, ...] = (),
    as_program: str | None = None,
    launch: str = "exec",
    unseal: Mapping[str, str] | None = None,
    stop_seconds: float = 30.0,
    stale_sockets: Sequence[Path] = (),
) -> int:
    """Start ``argv`` detached, logging to the service's log file; record its pid.

    It inherits our environment plus ``env``, except the variables whose names start
    with one of ``not_inherited`` (a service's own settings come from ``env`` only,
    never from whatever the operator's shell happens to export).

    A supervised ``svc`` becomes supervisord program ``as_program`` (default: its
    name), run by the launcher in ``launch`` mode ("exec" or "child"; ``unseal``: the
    launcher unseals OpenBao after every start; ``stale_sockets``: unix sockets a killed
    master left, removed before every start; see launch.py)."""
    svc.run_dir.mkdir(parents=True, exist_ok=True)
    svc.log_dir.mkdir(parents=True, exist_ok=True)
    if svc.port is not None:
        require_free_port(svc.port, svc.name)
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(not_inherited)},
        **(env or {}),
    }
    if svc.supervised:
        return _start_supervised(
            svc,
            list(argv),
            full_env,
            cwd,
            as_program or svc.name,
            launch,
            unseal,
            stop_seconds,
            [str(p) for p in stale_sockets],
        )
    _remove_stale_sockets([str(p) for p in stale_sockets])
    with open(svc.log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,  # own process group: ctrl-C on `make` doesn't kill it
        )
    svc.pid_file.write_text(f"{proc.pid}\n")
    # Remember which process this pid is, so a reused pid is never signalled.
    svc.pid_file.with_suffix(".start").write_text(f"{_start_time(proc.pid)}\n")
    return proc.pid


def _start_supervised(
    svc: config.Service,
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None,
    name: str,
    launch: str,
    unseal: Mapping[str, str] | None,
    stop_seconds: float,
    stale_sockets: list[str],
) -> int:
    pid_file = svc.run_dir / f"{name}.pid"
    pid_file.unlink(missing_ok=True)
    spec = {
        "name": name,
        "argv": argv,
        "env": env,
        "cwd": str(cwd or config.REPO),
        "pid_file": str(pid_file),
        "mode": launch,
        "unseal": dict(unseal) if unseal else None,
        "stale_sockets": stale_sockets,
    }
    supervisor.add(name, spec, svc.log_file, stop_seconds)
    if name == svc.name:
        _program_file(svc).unlink(missing_ok=True)
    else:
        _program_file(svc).write_text(f"{name}\n")
    wait_until(
        f"{svc.name}: started by supervisord",
        lambda: alive_or_fail(svc) and running(svc) is not None,
        START_RECORDED_SECONDS,
        str(svc.log_file),
        interval=0.05,
    )
    return running(svc) or 0


# The packages our own loop services run (`zt crl-watch`, `zt renew --every`, `zt
# audit-sink`): a change to any of them is a change to what those processes execute.
CODE_PACKAGES = ("scripts", "verifier", "client")


def code_fingerprint() -> str:
    """A digest of our Python code: what a running loop service of ours executes."""
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((config.REPO / package).rglob("*.py")):
            digest.update(str(path.relative_to(config.REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def code_marker(svc: config.Service) -> Path:
    """The code fingerprint ``svc`` was started with."""
    return svc.run_dir / f"{svc.name}.code"


def start_loop(
    svc: config.Service, argv: Sequence[str], status_file: Path, what: str, timeout: float
) -> None:
    """Start a loop service of ours (the CRL watcher, the renewer, the audit sink) unless
    it runs, and wait until it recorded its first round in ``status_file``.

    One started from other code (a checkout updated under a running stack, or one from
    before this marker existed) is replaced: it would keep doing what the old code did
    until something killed it."""
    wanted = code_fingerprint()
    try:
        recorded = code_marker(svc).read_text().strip()
    except OSError:
        recorded = None
    if recorded != wanted and running(svc) is not None:
        say(f"    {svc.name}: started from other code; restarting it")
        stop(svc)
    if running(svc) is None:
        status_file.unlink(missing_ok=True)
        start(svc, argv, cwd=config.REPO)
        write_atomic(code_marker(svc), wanted + "\n")
    wait_until(
        f"{svc.name} ({what})",
        lambda: alive_or_fail(svc) and status_file.exists(),
        timeout,
        str(svc.log_file),
        interval=0.2,
    )


def alive_or_fail(svc: config.Service) -> bool:
    """For readiness polls: fail at once, with the log's tail, if ``svc`` exited
    (supervised: if supervisord reports it down, e.g. crashing at start)."""
    gone = (
        supervisor.state(program(svc)) in supervisor.DOWN_STATES
        if svc.supervised
        else running(svc) is None
    )
    if gone:
        tail = "\n".join(svc.log_file.read_text(errors="replace").splitlines()[-8:])
        raise StepFailed(f"{svc.name} exited during start-up:\n{tail}\nsee {svc.log_file}")
    return True


def stop(svc: config.Service, timeout: float = 30.0, sig: int = signal.SIGTERM) -> bool:
    """``sig`` to the recorded process group, SIGKILL after ``timeout``. True if it was running.

    We started it with its own session, so its pid is its process group id:
    signalling the group also reaches children (kc.sh -> java).

    A supervised ``svc`` is stopped by supervisord (same signals and timeout) and
    removed from it, so it is not restarted.
    """
    name = program(svc)
    if svc.supervised and name in supervisor.names():
        was_running = supervisor.remove(name)
        for suffix in (".pid", ".start", ".group"):
            (svc.run_dir / f"{name}{suffix}").unlink(missing_ok=True)
        _program_file(svc).unlink(missing_ok=True)
        return was_running
    pid = running(svc)
    if pid is None:
        svc.pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        name = signal.Signals(sig).name
        say(f"    {svc.name} (pid {pid}) ignored {name} for {timeout:.0f}s; sending SIGKILL")
        os.killpg(pid, signal.SIGKILL)
    svc.pid_file.unlink(missing_ok=True)
    svc.pid_file.with_suffix(".start").unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    return _start_time(pid) is not None


def retire(svc: config.Service, to: config.Service) -> config.Service:
    """Record ``svc``'s process under ``to`` instead (its program, or its pid and
    start-time files, move), so a replacement can be started as ``svc``; returns ``to``."""
    name = program(svc)
    if name != svc.name:
        _program_file(to).write_text(f"{name}\n")
        _program_file(svc).unlink(missing_ok=True)
        return to
    for suffix in (".pid", ".start"):
        src = svc.pid_file.with_suffix(suffix)
        if src.exists():
            os.replace(src, to.pid_file.with_suffix(suffix))
    return to


def children(pid: int) -> set[int]:
    """Direct children of ``pid`` (a gunicorn or nginx master's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(c) for c in text.split()}
