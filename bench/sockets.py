"""Unix sockets of the benchmark's own auth services, opened to nginx's workers.

nginx's workers run as ``zt-nginx`` (group ``zt-gateway``) when the stack runs as
root; the stack's gunicorns make their sockets ``srw-rw---- service:zt-gateway``
with ``--umask``. oauth2-proxy and granian have no such flag, so once one answers
(its socket exists) the socket is given the same group and mode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts import config
from scripts.services import accounts


def open_to_nginx(socket: Path) -> None:
    """``socket`` readable and writable by nginx's workers' group, by nobody else."""
    if accounts.privileged():
        shutil.chown(socket, group=config.GATEWAY_GROUP)
    socket.chmod(0o660)
