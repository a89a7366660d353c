"""What nginx's lockout hop adds to an uncached decision: ``python -m bench.lockout_hop``.

The decision cache's miss goes through one more local proxy pass: nginx's lockout hop
(nginx/snippets/lockout-hop.conf), a server on a unix socket whose cache keeps only the
verifier's ``locked_out`` answers by certificate serial, then on to the verifier. This
sends the same allowed auth subrequest (python-client's certificate and a real token,
as nginx's ``/_authz`` sends it) straight to the verifier's socket and to the hop's, in
alternating blocks over one keep-alive connection each, and prints the latency of both
and the difference. Speed is printed, never asserted. Needs the running stack, run as
root (only nginx's workers and root may enter the hop's folder).
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import time
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.tokens import token_source
from scripts import config

BLOCK = 40
"""Requests to one target before switching to the other."""


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 keep-alive over a unix socket."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self.unix_path))
        self.sock = sock


def subrequest_headers(workload: str) -> dict[str, str]:
    """What /_authz sends for ``GET /api/resource`` with ``workload``'s certificate."""
    cert_file, _ = config.client_cert_paths(workload)
    leaf = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())[0]
    pem = leaf.public_bytes(Encoding.PEM).decode()
    return {
        "Host": "localhost",
        "X-Client-Verify": "SUCCESS",
        "X-Client-Cert": quote(pem, safe=""),
        "X-Client-Subject-DN": f"CN={workload}",
        "X-Original-Method": "GET",
        "X-Original-URI": "/api/resource?bench=lockout-hop",
        "X-Request-ID": "bench-lockout-hop",
        "X-Client-Addr": "127.0.0.1",
        "Authorization": f"Bearer {token_source().get()}",
        "X-Lockout-Serial": f"{leaf.serial_number:X}",
    }


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[int(q * (len(ordered) - 1))]


def measure(rounds: int) -> dict[str, list[float]]:
    """Milliseconds per request, by target, ``rounds`` x ``BLOCK`` each, interleaved."""
    headers = subrequest_headers("python-client")
    targets = {
        "verifier": UnixConnection(config.VERIFIER_SOCKET.resolve()),
        "hop": UnixConnection(config.LOCKOUT_HOP_SOCKET),
    }
    times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, connection in targets.items():
            for _ in range(BLOCK):
                started = time.perf_counter()
                connection.request("GET", "/_authz", headers=headers)
                answer = connection.getresponse()
                answer.read()
                if answer.status != 204:
                    raise SystemExit(f"{name} answered {answer.status}, not an allow (204)")
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lockout_hop", description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help=f"blocks of {BLOCK} per target")
    args = parser.parse_args()
    times = measure(max(1, min(args.rounds, 500)))  # bounded: at most 20 000 requests each
    for name, values in times.items():
        ordered = sorted(values)
        print(
            f"{name:9s} n={len(ordered)}  mean {statistics.mean(ordered):.3f} ms  "
            f"p50 {_quantile(ordered, 0.5):.3f}  p90 {_quantile(ordered, 0.9):.3f}  "
            f"p99 {_quantile(ordered, 0.99):.3f}"
        )
    hop, direct = sorted(times["hop"]), sorted(times["verifier"])
    print(
        f"the hop adds: p50 {_quantile(hop, 0.5) - _quantile(direct, 0.5):+.3f} ms, "
        f"mean {statistics.mean(hop) - statistics.mean(direct):+.3f} ms"
    )


if __name__ == "__main__":
    main()
