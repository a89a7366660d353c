"""The granian lever's audit copies go to a drain of the benchmark's own, never to the
stack's sink (whose file the stack's primary audit log must match line for line)."""

from __future__ import annotations

import socket
import time

from bench import levers
from bench.sinkdrain import SinkDrain
from scripts import config


def test_the_drain_takes_copies_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "sink.sock"
    drain = SinkDrain(path)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    deadline = time.monotonic() + 20
    sent = 0
    try:
        while sent < 2000 and time.monotonic() < deadline:  # more than the queue holds
            try:
                sender.sendto(b'{"seq":%d}\n' % sent, str(path))
                sent += 1
            except BlockingIOError:
                time.sleep(0.001)  # the drain is behind: let it catch up
    finally:
        sender.close()
        drain.close()
    assert sent == 2000, f"the drain took only {sent} datagrams in 20 s"
    assert not path.exists()


def test_the_lever_never_copies_to_the_stacks_sink():
    assert levers.GRANIAN_SINK_SOCKET != config.AUDIT_SINK_SOCKET
    assert levers.GRANIAN_SINK_SOCKET.parent == levers.GRANIAN_DIR
