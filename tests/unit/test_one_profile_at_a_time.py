"""`zt up` refuses while the other profile's stack runs (both use the same ports)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import bringup, config
from scripts.services import supervisor
from scripts.steps import StepFailed


def _fake_supervisord(state: Path) -> subprocess.Popen[bytes]:
    """A process whose command line is the other profile's supervisord's, its pid file
    written where that supervisord writes it."""
    conf = state / "supervisor" / "supervisord.conf"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "supervisord", "-c", str(conf)]
    )
    # Right after exec, /proc/<pid>/cmdline can read empty for a moment: wait for it.
    deadline = time.monotonic() + 5
    while b"supervisord" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the fake supervisord never showed its argv"
        time.sleep(0.01)
    pid_file = state / "run" / "supervisord.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def test_refuses_while_the_other_profile_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(config, "REPO", tmp_path)
    monkeypatch.setattr(config, "STATE", tmp_path / ".state")
    other = "ha" if config.PROFILE == "single" else "single"
    proc = _fake_supervisord(tmp_path / config.STATE_NAMES[other])
    try:
        with pytest.raises(StepFailed) as e:
            bringup.refuse_if_other_profile_runs()
        assert f"a stack of the {other!r} profile is running from" in str(e.value)
        assert f"(supervisord pid {proc.pid})" in str(e.value)
        assert "make down" in str(e.value)
    finally:
        proc.kill()
        proc.wait()
    # once it has stopped, nothing is refused (a stale pid file is not a running stack)
    bringup.refuse_if_other_profile_runs()


def test_a_pid_file_naming_another_program_is_not_a_stack(tmp_path: Path) -> None:
    state = tmp_path / ".state-ha"
    (state / "run").mkdir(parents=True)
    (state / "run" / "supervisord.pid").write_text("1\n")  # init: not our supervisord
    assert supervisor.pid_in(state) is None
