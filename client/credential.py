"""The workload's certificate, loaded once per version into one TLS context.

RFC 8705 binds an access token to the certificate the workload presented to
Keycloak (``cnf.x5t#S256``), and the gateway refuses that token over a connection
made with any other certificate. So the token fetch and the gateway connections
must use the *same* certificate, even while a rotation replaces the file: a
``Credential`` loads the certificate and key into an ``ssl.SSLContext`` once per
version of the file (a *generation*) and hands out sessions bound to that
context. Callers take one ``Snapshot`` per request and use it for both the token
and the connection, so a rotation between the two can never pair a token with
the other certificate.

A new generation is noticed on the next snapshot after the file changed (one
``os.stat`` per request: a rotation replaces ``bundle.pem`` by one rename, which
changes its inode). The previous generation's sessions are kept until the next
change, so requests already under way finish on their connections.
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


@dataclass(frozen=True)
class Identity:
    """Files that make up a workload identity on disk."""

    cert_file: str  # leaf + chain, PEM; may also hold the key (bundle.pem)
    key_file: str | None
    server_ca_file: str  # the only CA trusted for the gateway and Keycloak


class CredentialError(RuntimeError):
    """The certificate or key cannot be loaded; the message names the file."""


def reload_safe_retry() -> Retry:
    """Retry idempotent requests on a *new* connection when the old one was closed.

    A graceful nginx reload closes idle keep-alive connections; a request racing that
    close fails on a connection nginx already gave up. Retrying idempotent methods
    on a new connection is what makes reloads and certificate rotations invisible to
    callers. Never retried: POST etc., and any HTTP answer (a 401/403/5xx is
    returned as is).
    """
    return Retry(
        total=2,
        connect=2,
        read=2,
        status=0,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
        backoff_factor=0.05,
        raise_on_status=False,
    )


def reload_safe_adapter() -> HTTPAdapter:
    """An adapter with ``reload_safe_retry`` (for callers that pass ``cert=`` per request)."""
    return HTTPAdapter(max_retries=reload_safe_retry())


class _ContextAdapter(HTTPAdapter):
    """Every connection of this adapter uses one ``ssl.SSLContext`` (the certificate in
    it), directly or through an HTTPS proxy."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(max_retries=reload_safe_retry())

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        proxy_kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **proxy_kwargs)


@dataclass(frozen=True)
class Snapshot:
    """One generation of the certificate: a session whose every connection presents it."""

    generation: int
    session: requests.Session
    server_ca_file: str


def _version(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _file_version(path: str) -> tuple[int, int, int, int]:
    return _version(os.stat(path))


def _fd_version(fd: int) -> tuple[int, int, int, int]:
    return _version(os.fstat(fd))


class Credential:
    """Thread-safe: concurrent callers share one context per generation."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._generation = 0
        self._current: Snapshot | None = None
        self._previous: Snapshot | None = None

    def _versions(self) -> tuple:
        files = [self.identity.cert_file]
        if self.identity.key_file:
            files.append(self.identity.key_file)
        try:
            return tuple(_file_version(f) for f in files)
        except OSError as e:
            raise CredentialError(f"cannot read the workload certificate: {e}") from e

    def _read(self) -> tuple[tuple, bytes]:
        """The bytes (key and chain) and the version of exactly the files read.

        One file (``bundle.pem``, replaced by one rename) is consistent by itself: the
        version is taken from the open file, so a rename right after it is seen as a
        change by the next snapshot. A separate certificate and key are a pair only if
        neither path moved while both were read: otherwise read again (bounded)."""
        paths = [self.identity.cert_file]
        if self.identity.key_file:
            paths.insert(0, self.identity.key_file)
        for _ in range(3):
            try:
                handles = [open(path, "rb") for path in paths]  # noqa: SIM115 - closed below
            except OSError as e:
                raise CredentialError(f"cannot read the workload certificate: {e}") from e
            try:
                version = tuple(_fd_version(h.fileno()) for h in handles)
                data = b"\n".join(h.read() for h in handles)
            finally:
                for h in handles:
                    h.close()
            if len(paths) == 1 or self._versions() == version[::-1]:
                return version[::-1], data
        raise CredentialError(
            f"{self.identity.cert_file} and {self.identity.key_file} keep changing "
            "while they are read; try again"
        )

    def _load(self, pem: bytes) -> ssl.SSLContext:
        """A client TLS context from ``pem`` (key + chain), read once: OpenSSL opens a
        path twice (chain, then key), so it is given an in-memory file that no
        rotation can replace in between."""
        try:
            ctx = ssl.create_default_context(cafile=self.identity.server_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise CredentialError(
                f"cannot load server CA {self.identity.server_ca_file}: {e}"
            ) from e
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        fd = os.memfd_create("zt-client-credential", os.MFD_CLOEXEC)
        try:
            os.write(fd, pem)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        except (OSError, ssl.SSLError) as e:
            raise CredentialError(
                f"cannot load certificate {self.identity.cert_file}"
                + (f" with key {self.identity.key_file}" if self.identity.key_file else "")
                + f": {e}"
            ) from e
        finally:
            os.close(fd)
        return ctx

    def snapshot(self) -> Snapshot:
        """The current generation, loading the files again if they changed."""
        with self._lock:
            version = self._versions()
            if self._current is None or version != self._version:
                version, pem = self._read()
                context = self._load(pem)
                session = requests.Session()
                session.mount("https://", _ContextAdapter(context))
                if self._previous is not None:
                    self._previous.session.close()
                self._previous = self._current
                self._generation += 1
                self._version = version
                self._current = Snapshot(self._generation, session, self.identity.server_ca_file)
            return self._current

    def close(self) -> None:
        with self._lock:
            for snap in (self._current, self._previous):
                if snap is not None:
                    snap.session.close()
            self._current = self._previous = None
            self._version = None
