"""Audit completeness: every request the verifier decided has exactly one audit line.

A bounded mixed load (300 requests, 4 threads: allowed GET and POST, and six
kinds of refusal) goes through nginx; afterwards the logs are joined on
``request_id``:

* every nginx access-log line in the window that reached the verifier (status
  not 400/495/496/497, which nginx answers itself before ``auth_request``, and
  not a decision-cache HIT) has exactly ONE audit line;
* a HIT (nginx reused a cached allow; the verifier was not asked) has none, is
  a 200 naming the workload (``auth_azp``), and that workload's allow for the
  same method and URI is audited in the window (the decision it reused);
* every audit line in the window has exactly ONE nginx line.

So 0 decisions lost and 0 decisions nobody can trace. Our own requests (the
window's marker) are checked strictly, kind by kind; the join itself is checked
for every request in the window, including anyone else's load on the stack.
Edges: audit lines are read from a window opened 1 s before nginx's (a request
in flight across the start is decided before it is logged), and only audit
lines decided before the load ended are joined (nginx logs a request after the
verifier decided it).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import requests

from tests.attacks.conftest import SERVER_CA, LogWindow, bearer, cert_of

TOTAL = 300
THREADS = 4
DEADLINE_SECONDS = 90
NGINX_ONLY = {400, 495, 496, 497}


def _kinds(tokens: dict[str, str]) -> dict[str, tuple[str, str, Any, dict[str, str], int]]:
    """kind -> (method, path, cert, headers, expected status)."""
    py, bw = cert_of("python-client"), cert_of("batch-worker")
    return {
        "allowed-get": ("GET", "/api/resource", py, bearer(tokens["python-client"]), 200),
        "allowed-post": ("POST", "/api/resource", bw, bearer(tokens["batch-worker"]), 201),
        "no-token": ("GET", "/api/resource", py, {}, 401),
        "garbage-token": ("GET", "/api/resource", py, bearer("not.a.jwt"), 401),
        "binding-mismatch": ("GET", "/api/resource", py, bearer(tokens["batch-worker"]), 401),
        "role-missing": ("GET", "/api/admin/stats", py, bearer(tokens["python-client"]), 403),
        "tenant-mismatch": (
            "GET",
            "/api/tenants/globex/resource",
            py,
            bearer(tokens["python-client"]),
            403,
        ),
        "no-cert": ("GET", "/api/resource", None, bearer(tokens["python-client"]), 400),
    }


def _iso(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def test_every_decision_in_a_mixed_load_has_exactly_one_audit_line_and_vice_versa(
    log_since, token_for
):
    tokens = {w: token_for(w) for w in ("python-client", "batch-worker")}
    kinds = _kinds(tokens)
    plan = [name for name in kinds for _ in range(TOTAL // len(kinds))]
    plan += ["allowed-get"] * (TOTAL - len(plan))
    random.shuffle(plan)

    early: LogWindow = log_since()  # audit side
    time.sleep(1.0)
    window: LogWindow = log_since()  # nginx side, and the marker
    deadline = time.monotonic() + DEADLINE_SECONDS
    local = threading.local()

    def send(kind: str) -> tuple[str, int]:
        if time.monotonic() > deadline:
            return kind, -1
        if not hasattr(local, "s"):
            local.s = requests.Session()
        method, path, cert, headers, _ = kinds[kind]
        r = local.s.request(
            method,
            window.url(path) + f"&kind={kind}",
            cert=cert,
            headers=headers,
            json={"n": 1} if method == "POST" else None,
            verify=SERVER_CA,
            timeout=10,
        )
        return kind, r.status_code

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(send, plan))
    load_end = time.time()
    time.sleep(2.0)

    # 1. every request was sent in time and answered as its kind says (no 5xx)
    wrong = [(k, s) for k, s in results if s != kinds[k][4]]
    assert not wrong, Counter(wrong)

    nginx = window.lines("nginx")
    audit = [line for line in early.lines("audit") if _iso(line["time"]) <= load_end]
    audit_ids = Counter(line["request_id"] for line in audit)
    nginx_ids = Counter(line["request_id"] for line in nginx)

    # 2. ours, kind by kind
    mine = [line for line in nginx if window.marker in line["uri"]]
    assert len(mine) == TOTAL
    allowed = {
        (line["method"], line["path"], line["azp"]) for line in audit if line["decision"] == "allow"
    }
    for line in mine:
        expected = 0 if line["status"] in NGINX_ONLY or line["auth_cache"] == "HIT" else 1
        assert audit_ids[line["request_id"]] == expected, line
        if line["auth_cache"] == "HIT":
            assert line["status"] == 200 and line["auth_azp"], line
            assert (line["method"], line["uri"], line["auth_azp"]) in allowed, line

    # 3. the join, for everything in the window
    reached = [
        line
        for line in nginx
        if line["status"] not in NGINX_ONLY and line.get("auth_cache") != "HIT"
    ]
    lost = [line for line in reached if audit_ids[line["request_id"]] != 1]
    window_audit = [line for line in window.lines("audit") if _iso(line["time"]) <= load_end]
    untraced = [line for line in window_audit if nginx_ids[line["request_id"]] != 1]
    print(
        f"\naudit completeness: {len(nginx)} nginx lines ({len(mine)} ours), "
        f"{len(reached)} reached the verifier, {len(window_audit)} audit lines; "
        f"lost {len(lost)}, untraced {len(untraced)}; "
        f"statuses {dict(Counter(s for _, s in results))}"
    )
    assert lost == [], lost[:3]
    assert untraced == [], untraced[:3]
