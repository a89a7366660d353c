"""Micro-benchmark of the verifier's pure core, against the RSA verify under it.

``decide()`` is timed in-process on one core with real inputs: a token from
Keycloak, the python-client certificate as nginx forwards it (escaped PEM in
``X-Client-Cert``, turned into an event by ``verifier.subrequest``), the
production settings (``scripts.services.apps.verifier_env``), a pre-warmed
``JWKSKeySource`` (fetched once, then served from memory, as in the verifier),
the ``DecisionCaches`` built next to it (as ``create_app`` does)
and the stack's CRL file loaded once into a ``CRLFileSource`` (the adapter's
per-request ``refresh_if_changed`` is timed in the WSGI layer, not in
``decide``). The clock is injected as a fixed ``now``, so no call touches the
network or the disk.

The reference is ``openssl speed rsa2048`` verify/s: the C cost of the one
public-key operation an RS256 token needs, on the same machine and core count
(one). ``decide`` is timed as it runs in steady state: a client reuses its
token, so after the first request the verified-token cache answers and no RSA
verify is done; the layer "token cache off" is a token's first request (every
call verifies the signature). The layers show where the time goes:

    openssl (C) < cryptography RSA verify < PyJWT decode < decide, token cache off
    verify_token (cached) < decide < the Flask adapter's /_authz (WSGI, audit line)

and, alone, the revocation step inside ``decide`` (``check_not_revoked``: a
dict lookup and two set lookups), to show what checking the CRLs costs.

``decide`` and openssl are timed in alternating rounds (``CORE_ROUNDS``), and
each side's best round counts: on a shared machine the load changes from one
second to the next, and alternating keeps a busy second from landing on one
side of the ratio only.

The last layer is not the core: it is there to split the verifier's CPU per
request under load (``make bench``'s table) into core, adapter and, by
difference, gunicorn + the kernel.

Run alone with ``python -m bench.core`` (``--profile`` adds cProfile's top costs).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import dataclasses
import logging
import pstats
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.test import EnvironBuilder

from bench import config as bench_config
from bench.sinkdrain import SinkDrain
from bench.stack import WaitBudget
from bench.tokens import token_source
from client.token import TokenError
from scripts import config
from scripts.steps import StepFailed, say
from verifier.app import create_app
from verifier.caches import DecisionCaches
from verifier.claims import verify_token
from verifier.decision import decide
from verifier.event import AuthorizerEvent
from verifier.jwks import JWKSKeySource
from verifier.policy import Policy, load_policy
from verifier.revocation import CRLFileSource, check_not_revoked
from verifier.settings import ENV_PREFIX, Settings
from verifier.subrequest import event_from_subrequest
from verifier.transport import check_client_cert, parse_client_cert

DECIDE = "verifier.decision.decide"


@dataclass(frozen=True)
class CoreInputs:
    """Everything one ``decide`` call needs, built once from the running stack."""

    event: dict[str, Any]
    headers: list[tuple[str, str]]
    token: str
    keys: JWKSKeySource
    revocation: CRLFileSource
    caches: DecisionCaches
    """Built next to ``keys``, as ``create_app`` does; warmed by the first call."""
    policy: Policy
    settings: Settings
    now: float


@dataclass(frozen=True)
class Rate:
    """Calls per second of one function, measured in a time- and count-bounded loop."""

    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds

    @property
    def microseconds(self) -> float:
        return self.seconds / self.calls * 1e6


def build_inputs() -> CoreInputs:
    """A real token, the real client cert, production settings, keys fetched once."""
    settings = Settings.from_env(
        bench_config.verifier_env(
            bench_config.BENCH_WORK / "core-audit.log", bench_config.BENCH_WORK / "core-sink.sock"
        )
    )
    now = time.time()
    keys = JWKSKeySource.from_settings(settings)
    keys.refresh_if_stale(now, wait=settings.jwks_timeout_seconds + 1)  # fetched in the background
    if keys.key_count == 0:
        raise StepFailed(f"could not load Keycloak's JWKS ({keys.last_error}); is Keycloak up?")
    revocation = CRLFileSource.from_settings(settings)
    revocation.refresh_if_changed(now)
    if revocation.last_error is not None:
        raise StepFailed(f"could not load the client CRL file ({revocation.last_error})")
    token = token_source().get()
    cert_file, _ = config.client_cert_paths(bench_config.CLIENT_IDENTITY)
    leaf = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    pem = leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
    headers = [  # what nginx's authz-subrequest.conf sends
        ("X-Client-Verify", "SUCCESS"),
        ("X-Client-Cert", quote(pem, safe="")),
        ("X-Client-Subject-DN", leaf.subject.rfc4514_string()),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", bench_config.TARGET_PATH),
        ("X-Request-ID", uuid.uuid4().hex),
        ("X-Client-Addr", config.HOST),
        ("Authorization", f"Bearer {token}"),
    ]
    return CoreInputs(
        event=event_from_subrequest(headers),
        headers=headers,
        token=token,
        keys=keys,
        revocation=revocation,
        caches=DecisionCaches.from_settings(settings),
        policy=load_policy(settings.policy_path),
        settings=settings,
        now=now,
    )


def measure(fn: Callable[[], object], seconds: float, max_calls: int) -> Rate:
    """The best of ``CORE_ROUNDS`` timed loops of ``fn`` sharing ``seconds`` and ``max_calls``.

    Best, not mean (as ``timeit`` advises): on a shared 2-core machine other
    processes only ever make a round slower, never faster.
    """
    fn()  # warm caches (parsed certificate, issuer verdict) before timing
    rounds = bench_config.CORE_ROUNDS
    best: Rate | None = None
    for _ in range(rounds):
        best = _best(best, _timed_loop(fn, seconds / rounds, max_calls // rounds))
    assert best is not None  # rounds >= 1
    return best


def measure_against_openssl(
    fn: Callable[[], object], seconds: float, max_calls: int
) -> tuple[Rate, float]:
    """``fn``'s best round and openssl's best verify/s, timed in alternating rounds."""
    fn()
    rounds = bench_config.CORE_ROUNDS
    best: Rate | None = None
    openssl = 0.0
    for _ in range(rounds):
        best = _best(best, _timed_loop(fn, seconds / rounds, max_calls // rounds))
        round_seconds = bench_config.OPENSSL_ROUND_SECONDS
        openssl = max(openssl, openssl_rsa2048_verify_per_second(round_seconds))
    assert best is not None  # rounds >= 1
    return best, openssl


def _best(best: Rate | None, rate: Rate) -> Rate:
    return rate if best is None or rate.per_second > best.per_second else best


def _timed_loop(fn: Callable[[], object], seconds: float, max_calls: int) -> Rate:
    """Call ``fn`` in batches until ``seconds`` have passed or ``max_calls`` were made."""
    calls, batch = 0, 50
    start = time.perf_counter()
    deadline = start + seconds
    while calls < max_calls:
        for _ in range(batch):
            fn()
        calls += batch
        if time.perf_counter() >= deadline:
            break
    return Rate(calls, time.perf_counter() - start)


def openssl_rsa2048_verify_per_second(seconds: int) -> float:
    """``openssl speed -seconds N rsa2048`` verify/s (one process, one core)."""
    proc = subprocess.run(
        ["openssl", "speed", "-mr", "-seconds", str(seconds), "rsa2048"],
        capture_output=True,
        text=True,
        timeout=seconds * 6 + 30,
        check=False,
    )
    # Machine-readable summary: +F2:<index>:<bits>:<sign/s>:<verify/s>
    for line in proc.stdout.splitlines():
        if line.startswith("+F2:"):
            return float(line.split(":")[4])
    raise StepFailed(f"openssl speed printed no +F2 line (exit {proc.returncode}): {proc.stderr}")


def _layers(inputs: CoreInputs) -> dict[str, Callable[[], object]]:
    """The same work at each layer, from the bare RSA verify up to the Flask adapter."""
    token, settings, now, headers = inputs.token, inputs.settings, inputs.now, inputs.headers
    header = jwt.get_unverified_header(token)
    jwk = inputs.keys.get_key(header["kid"], now)
    public_key = jwk.key
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise StepFailed(f"Keycloak's signing key {header['kid']} is not RSA")
    signing_input, _, signature_b64 = token.rpartition(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))

    def rsa_verify() -> None:
        public_key.verify(signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    def pyjwt_decode() -> object:
        return jwt.decode(
            token,
            jwk,
            algorithms=list(settings.algorithms),
            audience=settings.audience,
            issuer=settings.issuer,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )

    def decide_with(settings: Settings, caches: DecisionCaches) -> Callable[[], object]:
        return lambda: decide(
            inputs.event,
            keys=inputs.keys,
            policy=inputs.policy,
            settings=settings,
            revocation=inputs.revocation,
            caches=caches,
            now=now,
        )

    caches = inputs.caches
    presented = parse_client_cert(AuthorizerEvent(inputs.event), cache=caches.certs)
    issuing_ca = check_client_cert(presented, settings.client_cas, now, cache=caches.issuers)
    no_token_cache = dataclasses.replace(settings, token_cache_size=0)

    return {
        "cryptography RSA verify": rsa_verify,
        "PyJWT jwt.decode": pyjwt_decode,
        "verifier.decision.decide, token cache off": decide_with(
            no_token_cache, DecisionCaches.from_settings(no_token_cache)
        ),
        "verifier.claims.verify_token": lambda: verify_token(
            token, inputs.keys, settings, now, cache=caches.tokens
        ),
        DECIDE: decide_with(settings, caches),
        "verifier.revocation.check_not_revoked": lambda: check_not_revoked(
            presented.serial_number, issuing_ca, inputs.revocation, now
        ),
        "verifier.app /_authz (WSGI + audit)": _wsgi_authz(inputs, headers),
    }


def _wsgi_authz(inputs: CoreInputs, headers: list[tuple[str, str]]) -> Callable[[], object]:
    """The Flask adapter around ``decide``, called as gunicorn calls it (WSGI), minus gunicorn.

    Same settings, the same pre-warmed keys and clock; the audit line goes to a
    file in ``.state/bench/work`` (never the stack's audit log). What this adds
    over ``decide`` is the adapter's cost: Flask/werkzeug request handling,
    building the event from headers, the CRL file's ``refresh_if_changed``
    (the clock is fixed, so after the first call it never stats), the audit
    record and its write.
    """
    audit = bench_config.BENCH_WORK / "core-audit.log"
    audit.parent.mkdir(parents=True, exist_ok=True)
    audit.unlink(missing_ok=True)
    drain = SinkDrain(bench_config.BENCH_WORK / "core-sink.sock")  # never the stack's sink
    app_config: dict[str, Any] = {
        name.removeprefix(ENV_PREFIX): value
        for name, value in bench_config.verifier_env(audit, drain.path).items()
    }
    app_config |= {"KEY_SOURCE": inputs.keys, "CLOCK": lambda: inputs.now}
    app = create_app(app_config)
    environ = EnvironBuilder(path="/_authz", method="GET", headers=headers).get_environ()

    return wsgi_call(app, environ, keep=drain)  # the drain lives as long as the call


def wsgi_call(app: Any, environ: Mapping[str, Any], keep: object = None) -> Callable[[], str]:
    """One WSGI request of ``app`` per call, its body consumed; a status other than 204
    is a StepFailed. ``keep``: an object the call must keep alive (a sink drain)."""

    def call(keep: object = keep) -> str:
        status: list[str] = []
        body = app.wsgi_app(dict(environ), lambda s, h, e=None: status.append(s))
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()
        if not status[0].startswith("204"):
            raise StepFailed(f"verifier app answered {status[0]} to the benchmark's request")
        return status[0]

    return call


def _inputs_when_ready(budget: WaitBudget) -> CoreInputs:
    """``build_inputs`` once Keycloak answers (concurrent fault tests restart it)."""
    built: list[CoreInputs] = []

    def ready() -> bool:
        try:
            built.append(build_inputs())
        except (StepFailed, TokenError):
            return False
        return True

    # A refused JWKS fetch is expected while Keycloak restarts; don't log each one.
    jwks_log = logging.getLogger("verifier.jwks")
    level = jwks_log.level
    jwks_log.setLevel(logging.ERROR)
    try:
        budget.wait("Keycloak (token + JWKS) for the core benchmark", ready, "`make status`")
    finally:
        jwks_log.setLevel(level)
    return built[-1]


def run_core(budget: WaitBudget | None = None, profile: bool = True) -> dict[str, Any]:
    """decide()/s, each layer's cost, openssl's verify/s and their ratio."""
    inputs = _inputs_when_ready(budget or WaitBudget())
    first = decide(
        inputs.event,
        keys=inputs.keys,
        policy=inputs.policy,
        settings=inputs.settings,
        revocation=inputs.revocation,
        caches=inputs.caches,
        now=inputs.now,
    )
    if not first.allowed:
        raise StepFailed(f"decide() denied the benchmark's request: {first.reason}")
    layers = _layers(inputs)
    say(
        f"    timing decide() and openssl speed rsa2048 in {bench_config.CORE_ROUNDS} "
        "alternating rounds, then the layers around it (one core)"
    )
    rates: dict[str, Rate] = {}
    rates[DECIDE], openssl = measure_against_openssl(
        layers[DECIDE], bench_config.CORE_SECONDS, bench_config.CORE_MAX_CALLS
    )
    for name, fn in layers.items():
        if name != DECIDE:
            rates[name] = measure(fn, bench_config.CORE_LAYER_SECONDS, bench_config.CORE_MAX_CALLS)
    decisions = rates[DECIDE].per_second
    result: dict[str, Any] = {
        "decisions_per_second": round(decisions, 1),
        "openssl_rsa2048_verify_per_second": round(openssl, 1),
        "core_vs_openssl_ratio": round(decisions / openssl, 4),
        "token_alg": jwt.get_unverified_header(inputs.token).get("alg"),
        "layers": {
            name: {
                "calls": rate.calls,
                "per_second": round(rate.per_second, 1),
                "microseconds": round(rate.microseconds, 2),
            }
            for name, rate in rates.items()
        },
    }
    result["layers"]["openssl speed rsa2048 verify"] = {
        "per_second": round(openssl, 1),
        "microseconds": round(1e6 / openssl, 2),
    }
    if profile:
        result["profile"] = profile_decide(layers[DECIDE])
    return result


def profile_decide(decide_once: Callable[[], object]) -> list[dict[str, Any]]:
    """cProfile's top functions by own time over ``PROFILE_CALLS`` decisions."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(bench_config.PROFILE_CALLS):
        decide_once()
    profiler.disable()
    stats: Mapping[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values()) or 1.0
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)
    return [
        {
            "function": _where(key),
            "calls_per_decision": round(entry[1] / bench_config.PROFILE_CALLS, 1),
            "own_time_share": round(entry[2] / total, 3),
            "cumulative_share": round(entry[3] / total, 3),
        }
        for key, entry in ranked[: bench_config.PROFILE_TOP]
    ]


def _where(key: tuple[str, int, str]) -> str:
    """``package/module.py:line(function)``, without the venv or repo prefix."""
    filename, line, function = key
    for marker in ("site-packages/", f"{config.REPO}/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{filename}:{line}({function})" if line else function


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.core [--profile]``: the core benchmark alone, printed."""
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__)
    parser.add_argument("--profile", action="store_true", help="add cProfile's top costs")
    args = parser.parse_args(argv)
    result = run_core(profile=args.profile)
    say(
        f"decide(): {result['decisions_per_second']:.0f}/s; openssl rsa2048 verify: "
        f"{result['openssl_rsa2048_verify_per_second']:.0f}/s; "
        f"ratio {result['core_vs_openssl_ratio']:.3f}"
    )
    for name, layer in result["layers"].items():
        say(f"  {name:36} {layer['microseconds']:9.1f} us  {layer['per_second']:10.0f}/s")
    for row in result.get("profile", []):
        say(
            f"  {row['own_time_share']:6.1%} own {row['cumulative_share']:6.1%} cum "
            f"{row['calls_per_decision']:5.1f}x  {row['function']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
