"""What refusing TLS session resumption costs a client that reconnects: full vs resumed.

The mTLS listener resumes no session (nginx/nginx.conf.tmpl: a resumed session
restores the old verify result without consulting the CRL, so a revoked
certificate would keep working). A client that keeps its connections alive pays
one full handshake per connection; one that reconnects per request pays it every
time. This measures that price with ``openssl s_time`` (OpenSSL's own handshake
timer) and python-client's certificate, TLS 1.3, against two servers of the
benchmark's compare instance that differ only in resumption:

* ``ceiling`` (:8450): the production TLS settings, no resumption; ``-new`` and
  ``-reuse`` (the reuse attempt must find nothing to resume);
* ``resumable`` (:8454): the same with nginx's shared session cache, as the
  listener was before; ``-new`` and ``-reuse``.

Each mode runs ``HANDSHAKE_SECONDS`` per round, modes alternate, the median of
``HANDSHAKE_ROUNDS`` rounds counts. ``s_time`` prints one character per connection
(``r`` = resumed), which tells how many were really resumed.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from typing import Any

from bench import config as bench_config
from scripts import config
from scripts.steps import StepFailed, say

MODES = (
    ("ceiling", bench_config.CEILING_PORT, "-new"),
    ("ceiling", bench_config.CEILING_PORT, "-reuse"),
    ("resumable", bench_config.RESUMABLE_PORT, "-new"),
    ("resumable", bench_config.RESUMABLE_PORT, "-reuse"),
)
_COUNT = re.compile(r"^(\d+) connections in [\d.]+s;", re.MULTILINE)


def s_time(port: int, mode: str, seconds: int) -> dict[str, float]:
    """One ``openssl s_time`` run: connections per wall second and the share resumed."""
    cert, key = config.client_cert_paths(bench_config.CLIENT_IDENTITY)
    argv = ["openssl", "s_time", "-connect", f"{config.HOST}:{port}", mode, "-tls1_3"]
    argv += ["-time", str(seconds), "-cert", str(cert), "-key", str(key)]
    argv += ["-CAfile", str(config.SERVER_CA_BUNDLE), "-www", bench_config.TARGET_PATH]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    wall = time.monotonic() - started
    counts = _COUNT.findall(proc.stdout)
    if proc.returncode != 0 or not counts:
        raise StepFailed(f"openssl s_time {mode} on :{port} failed: {proc.stderr[-300:]}")
    # One mark per connection, printed as it completes: "r" resumed, "*" full.
    marks = max(re.findall(r"[r*]+", proc.stdout), key=len, default="")
    return {
        "connections_per_second": round(int(counts[-1]) / wall, 1),
        "resumed_share": round(marks.count("r") / len(marks), 3) if marks else 0.0,
    }


def run(rounds: int = bench_config.HANDSHAKE_ROUNDS) -> dict[str, Any]:
    """Every mode in alternating rounds; medians and the full/resumed ratio."""
    samples: dict[str, list[dict[str, float]]] = {}
    for _ in range(rounds):
        for server, port, mode in MODES:
            key = f"{server} {mode}"
            samples.setdefault(key, []).append(s_time(port, mode, bench_config.HANDSHAKE_SECONDS))
    medians = {
        key: {
            "connections_per_second": statistics.median(s["connections_per_second"] for s in runs),
            "resumed_share": statistics.median(s["resumed_share"] for s in runs),
            "rounds": [s["connections_per_second"] for s in runs],
        }
        for key, runs in samples.items()
    }
    full = medians["resumable -new"]["connections_per_second"]
    resumed = medians["resumable -reuse"]["connections_per_second"]
    result = {
        "tls": "TLSv1.3",
        "seconds_per_run": bench_config.HANDSHAKE_SECONDS,
        "modes": medians,
        "full_over_resumed": round(full / resumed, 3) if resumed else None,
    }
    say(
        f"    full handshakes {full:.0f}/s, resumed {resumed:.0f}/s on the resumable server; "
        f"our listener with -reuse: {medians['ceiling -reuse']['connections_per_second']:.0f}/s, "
        f"resumed share {medians['ceiling -reuse']['resumed_share']:.0%}"
    )
    return result
