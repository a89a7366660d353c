"""gunicorn hooks for Prometheus multiprocess mode (``--config python:verifier.gunicorn_conf``).

Used by the verifier and the API alike (``scripts/services/apps.py``). The bring-up
gives each gunicorn master its own ``PROMETHEUS_MULTIPROC_DIR`` (blue/green runs two
masters at once; sharing a folder would mix their workers' values), and:

* ``on_starting`` (the master, before any worker): the folder is emptied, so a
  master restarted by supervisord never sums the files of a previous life (its
  counters start again from zero: Prometheus' ``rate()`` handles the reset); it is
  made the workers' (they run as the service user and create the files);
* ``child_exit`` (the master, when a worker ended): that worker's *live* gauges are
  dropped (``mark_process_dead``), so ``livemin`` gauges describe the workers that
  serve now. Its counters and histograms stay and keep counting in the sum.

Without the variable (a benchmark's or a test's gunicorn) both hooks do nothing.
The variable must be in the master's environment before ``prometheus_client`` is
first imported (it picks its value class at import), which is why the bring-up,
not this file, sets it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

from verifier.promexport import multiprocess_dir


def prepare_folder(folder: Path, uid: int | None = None, gid: int | None = None) -> None:
    """Empty ``folder`` (created if missing, 0700) and hand it to ``uid``/``gid``."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        folder.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)
    if uid is not None and os.geteuid() == 0:
        os.chown(folder, uid, gid if gid is not None else -1)


def on_starting(server: Any) -> None:
    """The master starts: a clean folder for this life of it."""
    folder = multiprocess_dir()
    if folder is not None:
        prepare_folder(Path(folder), server.cfg.uid, server.cfg.gid)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: forget its live gauges (its counters keep counting)."""
    folder = multiprocess_dir()
    if folder is not None:
        mark_process_dead(worker.pid, folder)
