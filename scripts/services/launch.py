"""What supervisord runs for each stack service: ``python -m scripts.services.launch SPEC``.

The supervisor (``scripts/services/supervisor.py``) restarts a service that exits; this
shim only makes each service safe to restart. It reads the service's spec (argv,
environment, working folder, pid file; a 0600 JSON file in the state folder, so no
secret is ever on a command line or in supervisord's config) and then either

* ``exec``: records its own pid and ``exec``s the service (gunicorn, Keycloak's
  ``kc.sh`` -> java, the CRL watcher): the supervised process *is* the service; or
* ``child``: runs the service as its child, for services that need one of:

  - **their whole process group gone when their main process dies**: an nginx master
    killed outright leaves its workers running (reparented to init, still accepting on
    the listening socket), and Keycloak's ``kc.sh`` runs java as its child, so the next
    start cannot bind. The child gets its own process group; when it exits, whatever is
    left in that group is SIGKILLed, and the same sweep runs at start for a group a
    killed launcher left;
  - **a step after every start**: OpenBao starts sealed; the launcher unseals it with
    the key in the state folder (``unseal.json``), so a restarted OpenBao serves again
    with no operator action.

  - **no stale unix socket**: a master killed outright cannot unlink the unix sockets it
    listens on (nginx's lockout hop), and its next start cannot bind an existing path;
    the spec's ``stale_sockets`` are removed (sockets only) before every start.

  The child dies with the launcher (``PR_SET_PDEATHSIG``), signals sent to the launcher
  (TERM, HUP, QUIT, INT, USR1, USR2, WINCH) are forwarded to it, and the launcher exits
  with its status.

Standard library only: it runs once per (re)start, before anything else of ours.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

FORWARDED = (
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGINT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
UNSEAL_SECONDS = 60.0  # how long after a start the launcher tries to unseal OpenBao
PR_SET_PDEATHSIG = 1


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat, None if gone or a zombie: with the pid, it identifies
    a process for good (a recycled pid has another; an ``exec``, kc.sh -> java, keeps
    it). ``procs`` uses this one too."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def record(pid_file: Path, pid: int) -> None:
    """The pid file and its start-time marker (``scripts/services/procs.py`` reads both)."""
    marker = pid_file.with_suffix(".start")
    marker.write_text(f"{start_time(pid)}\n")
    tmp = pid_file.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, pid_file)


def group_members(pgid: int, since: str) -> list[int]:
    """Live processes in group ``pgid`` started no earlier than its leader (``since``,
    the leader's start time): ours, even after the leader is gone (Linux never reuses
    an id while a group of that id exists). A group id reused by a new leader (alive,
    another start time) is left alone."""
    leader = start_time(pgid)
    if leader is not None and leader != since:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            started = start_time(pid)
            if os.getpgid(pid) == pgid and started is not None and int(started) >= int(since):
                found.append(pid)
        except (OSError, ValueError):
            continue
    return found


def sweep_group(group_file: Path) -> int:
    """SIGKILL what is left of the group recorded in ``group_file``; how many."""
    try:
        pgid_text, since = group_file.read_text().split()
    except (OSError, ValueError):
        return 0
    killed = 0
    for pid in group_members(int(pgid_text), since):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    group_file.unlink(missing_ok=True)
    return killed


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the launcher dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _unseal(spec: dict, proc: subprocess.Popen) -> None:
    """Unseal OpenBao once its API answers, with the key the bring-up stored."""
    if not spec["addr"].startswith("https://"):
        print(f"launch: refusing to unseal over {spec['addr']!r} (https only)", flush=True)
        return
    context = ssl.create_default_context(cafile=spec["ca"])
    deadline = time.monotonic() + UNSEAL_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(  # noqa: S310 (https checked above)
                spec["addr"] + "/v1/sys/seal-status", context=context, timeout=2
            ) as r:
                status = json.load(r)
        except (OSError, ValueError, urllib.error.URLError):
            time.sleep(0.2)
            continue
        if not status.get("initialized") or not status.get("sealed"):
            return  # first start (the bring-up initialises) or already unsealed
        try:
            keys = json.loads(Path(spec["key_file"]).read_text())["unseal_keys_b64"]
        except (OSError, ValueError, KeyError):
            print(f"launch: OpenBao is sealed and {spec['key_file']} is unreadable", flush=True)
            return
        for key in keys:
            request = urllib.request.Request(  # noqa: S310 (https checked above)
                spec["addr"] + "/v1/sys/unseal",
                data=json.dumps({"key": key}).encode(),
                method="PUT",
                headers={"Content-Type": "application/json"},
            )
            with contextlib.suppress(OSError, urllib.error.URLError):
                urllib.request.urlopen(request, context=context, timeout=5).close()  # noqa: S310
        print("launch: OpenBao unsealed after its start", flush=True)
        return


def remove_stale_sockets(paths: list[str]) -> None:
    """Unlink each path that is a unix socket (a dead master's); nothing else is touched."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)


def run_child(spec: dict) -> int:
    """Run the service as a child in its own process group; see the module docstring."""
    pid_file = Path(spec["pid_file"])
    group_file = pid_file.with_suffix(".group")
    leftovers = sweep_group(group_file)
    if leftovers:
        print(f"launch: killed {leftovers} process(es) a dead {spec['name']} left", flush=True)
    remove_stale_sockets(spec.get("stale_sockets") or [])
    proc = subprocess.Popen(
        spec["argv"],
        env=spec["env"],
        cwd=spec["cwd"],
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    group_file.write_text(f"{proc.pid} {start_time(proc.pid)}\n")
    record(pid_file, proc.pid)
    for sig in FORWARDED:
        signal.signal(sig, lambda s, _f: proc.poll() is None and proc.send_signal(s))
    if spec.get("unseal"):
        threading.Thread(target=_unseal, args=(spec["unseal"], proc), daemon=True).start()
    # Wait for the child's exit without reaping it: while it is a zombie its id (the
    # group's) cannot be reused, so killing the group reaches only what it left.
    while True:
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            break
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    code = proc.wait()
    group_file.unlink(missing_ok=True)
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m scripts.services.launch SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    if spec["mode"] == "child":
        return run_child(spec)
    record(Path(spec["pid_file"]), os.getpid())
    os.chdir(spec["cwd"])
    os.execvpe(spec["argv"][0], spec["argv"], spec["env"])  # noqa: S606 (the service itself)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
