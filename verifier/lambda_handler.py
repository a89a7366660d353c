"""AWS Lambda REQUEST-authorizer adapter: ``handler(event, context)``.

The Lambda twin of the Flask adapter (``verifier.app``), as thin: on the first
invocation a container builds what it decides with (``Decider.from_settings``:
settings read strictly from ``ZT_VERIFIER_*`` by ``Settings.from_env``, the
policy, the JWKS key source, the CRL file source and the decision caches, all
together), then each invocation re-checks the CRL file (``refresh_if_changed``),
reads the wall clock and returns ``decide(...).asdict()``, the API Gateway
authorizer response, because Lambda must return JSON.

A refused configuration denies every invocation (``internal_error``) and logs
every problem; it is read again on the next invocation, so nothing half-built
is kept.

Why one module-level ``LambdaAuthorizer``: Lambda calls a function and keeps the
module loaded between invocations of a container, so a module attribute is the
only place a container's keys and caches can live (AWS's advice: build clients
outside the handler). It is an object that owns that state, built lazily
from the environment; tests build their own with an injected environment and
clock instead of touching it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from verifier.decision import Decider
from verifier.errors import InternalError
from verifier.event import AuthorizerEvent
from verifier.response import AuthorizerResponse
from verifier.settings import Settings

log = logging.getLogger(__name__)
BOOT_WAIT_SLACK_SECONDS = 1.0


class LambdaAuthorizer:
    """A container's authorizer: its ``Decider`` is built on the first invocation.

    Lambda runs one invocation at a time per container, so no lock here; the key
    source's background refresh has its own (a frozen container resumes it).
    """

    def __init__(self, environ: Mapping[str, str], clock: Callable[[], float] = time.time):
        self.environ = environ
        self.clock = clock
        """The wall clock, read here only; ``decide`` gets ``now``."""
        self.decider: Decider | None = None

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """One invocation: the API Gateway authorizer response for ``event``."""
        decider = self.decider
        if decider is None:
            try:
                decider = self.decider = Decider.from_settings(Settings.from_env(self.environ))
                # A cold container waits for its first keys (the fetch's total deadline
                # + 1 s), as a booting gunicorn worker does; later refreshes run behind.
                wait = decider.settings.jwks_timeout_seconds + BOOT_WAIT_SLACK_SECONDS
                decider.keys.refresh_if_stale(self.clock(), wait=wait)
            except Exception as e:  # misconfiguration denies, it does not crash the caller
                log.exception("verifier misconfigured")
                error = InternalError(type(e).__name__)
                method_arn = AuthorizerEvent(event).method_arn
                return AuthorizerResponse.denied(error, method_arn=method_arn).asdict()
        now = self.clock()
        decider.revocation.refresh_if_changed(now)
        return decider.decide(event, now).asdict()


authorizer = LambdaAuthorizer(os.environ)
"""This container's authorizer (see the module docstring)."""


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda REQUEST-authorizer entry point (``verifier.lambda_handler.handler``)."""
    return authorizer(event, context)
