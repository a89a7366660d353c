"""Check 1, last step: neither the client certificate nor its issuing CA is revoked.

nginx already refuses a revoked certificate at the handshake (``ssl_crl``); this
is defence in depth against a mis-edited nginx config (``ssl_crl`` dropped, the
wrong file) and it makes the verifier safe wherever its events come from. It
reads the same PEM file nginx loads: one ``-----BEGIN X509 CRL-----`` block for
the client root CA and one per client issuing CA.

The rule (``check_not_revoked``), after ``transport.check_client_cert`` has
proven which configured issuing CA signed the certificate:

* the leaf's serial is looked up in the CRL whose issuer is the leaf's issuer,
  and the issuing CA's serial in the CRL whose issuer is the CA's issuer (the
  root's CRL: a retired intermediate at the end of a CA rollover). Listed on
  either -> ``cert_revoked`` (401), even if the other CRL is missing;
* FAIL CLOSED: no usable file, no CRL for either issuer, or that CRL's
  ``nextUpdate`` in the past (nginx refuses an expired CRL too) ->
  ``crl_unavailable`` (503: a server-side fault, not the caller's);
* an allow is valid only until the earliest ``nextUpdate`` consulted, so a
  cached decision never outlives the CRL it was checked against.

Sources share one small interface (``RevocationSource``), as key sources do:

* ``StaticCRLSource``: fixed CRLs from PEM text, for tests and the fuzzer;
* ``CRLFileSource``: the file, parsed into an immutable ``CRLSnapshot``. The
  ADAPTER calls ``refresh_if_changed(now)`` before ``decide`` (the Flask app per
  request, the Lambda per invocation); it stats the file at most once per
  ``check_interval`` seconds of the injected clock and re-reads it only when
  (inode, size, mtime) changed. ``decide`` itself only reads the current
  snapshot: no I/O on the request path. The ops tooling replaces the file by
  rename, so a read sees the old file or the new one, never half of each.

A re-read that fails (file gone, unreadable, not CRLs, a CRL without
``nextUpdate``) drops the previous snapshot: serving an old CRL after the file
changed could let a certificate revoked in the new one through, so every
request is refused until a good file is back. The failure is logged once per
change of the file, with its reason and path and nothing from its contents.

Per request the check is O(1) and well under a microsecond: the two CRLs that
matter depend only on the issuing CA (its own CRL, found by its subject, which
``check_client_cert`` proved equal to the leaf's issuer, and its issuer's CRL),
so the snapshot looks them up by ``x509.Name`` once per CA object and then
answers from a dict keyed by that object; then two ``frozenset`` membership
tests.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple, Protocol

from cryptography import x509

from verifier.errors import ClientCertRevoked, CrlUnavailable
from verifier.settings import Settings
from verifier.transport import serial_hex

log = logging.getLogger(__name__)

DEFAULT_CHECK_INTERVAL = 1.0
MAX_MEMO_CAS = 64  # configured issuing CAs are a handful; this only bounds a misuse
MAX_CRL_FILE_BYTES = 32 * 1024 * 1024
_BEGIN = b"-----BEGIN X509 CRL-----"
_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)

FileId = tuple[int, int, int]
"""(inode, size, mtime_ns): what changes when the file is replaced or rewritten."""


@dataclass(frozen=True)
class IssuerCRL:
    """What one issuer's CRL says: the serials it revoked, and until when it is current."""

    issuer_dn: str
    next_update: float
    revoked: frozenset[int]


class CAChainCRLs(NamedTuple):
    """The two CRLs a certificate issued by ``ca`` is checked against."""

    ca: x509.Certificate
    ca_serial: int
    own: IssuerCRL | None
    """The CRL ``ca`` publishes: the leaves it revoked."""
    parent: IssuerCRL | None
    """The CRL of ``ca``'s issuer (the root): ``ca`` itself, if revoked."""


@dataclass(frozen=True, eq=False)
class CRLSnapshot:
    """Every CRL of one version of the file, by issuer name; never changes once built."""

    by_issuer: Mapping[x509.Name, IssuerCRL]
    _by_ca: dict[int, CAChainCRLs] = field(default_factory=dict, init=False, repr=False)
    """Memo of ``for_ca``: derived from ``by_issuer`` only, so the content never changes."""

    @classmethod
    def from_crls(cls, crls: Iterable[x509.CertificateRevocationList]) -> CRLSnapshot:
        """Index CRLs by issuer; two CRLs of one issuer (a delta next to its base) merge.

        Merged conservatively: a serial either lists is revoked, and the earlier
        ``nextUpdate`` counts. A CRL without ``nextUpdate`` is refused: it
        could never be found stale, and an allow could not be bounded by it.
        """
        merged: dict[x509.Name, IssuerCRL] = {}
        for crl in crls:
            issuer = crl.issuer
            issuer_dn = issuer.rfc4514_string()
            next_update = crl.next_update_utc
            if next_update is None:
                raise CrlUnavailable(f"the CRL of {issuer_dn!r} has no nextUpdate")
            revoked = frozenset(entry.serial_number for entry in crl)
            earlier = merged.get(issuer)
            if earlier is not None:
                revoked |= earlier.revoked
            until = next_update.timestamp()
            merged[issuer] = IssuerCRL(
                issuer_dn=issuer_dn,
                next_update=min(until, earlier.next_update) if earlier else until,
                revoked=revoked,
            )
        if not merged:
            raise CrlUnavailable("the CRL file holds no CRL")
        return cls(MappingProxyType(merged))

    @classmethod
    def from_pem(cls, pem: bytes | str) -> CRLSnapshot:
        """Parse every ``X509 CRL`` PEM block; anything unparsable refuses the whole text.

        A ``BEGIN`` without its ``END`` (a truncated file) is refused too rather
        than skipped: the CRL it held would silently be missing.
        """
        raw = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
        blocks = _BLOCK.findall(raw)
        if raw.count(_BEGIN) != len(blocks):
            raise CrlUnavailable("the CRL file has an unterminated PEM block")
        try:
            return cls.from_crls(x509.load_pem_x509_crl(block) for block in blocks)
        except ValueError as e:  # cryptography's parse errors, raised lazily too
            raise CrlUnavailable(f"the CRL file does not parse: {e}") from e

    @property
    def next_update(self) -> float:
        """The earliest ``nextUpdate`` in the file (for logs and health reports)."""
        return min(crl.next_update for crl in self.by_issuer.values())

    def for_ca(self, ca: x509.Certificate) -> CAChainCRLs:
        """``ca``'s own CRL and its issuer's, looked up by name once per CA object.

        Why a memo: ``x509.Name`` equality walks every attribute (about a
        microsecond per lookup) and reading a serial out of a certificate costs
        as much, while the configured CAs are the same few objects on every
        request. Keyed by ``id(ca)`` with the CA kept in the entry, so the id
        cannot be reused while cached (as in ``transport``'s issuer cache).
        """
        hit = self._by_ca.get(id(ca))
        if hit is not None and hit.ca is ca:
            return hit
        crls = CAChainCRLs(
            ca=ca,
            ca_serial=ca.serial_number,
            own=self.by_issuer.get(ca.subject),
            parent=self.by_issuer.get(ca.issuer),
        )
        if len(self._by_ca) >= MAX_MEMO_CAS:
            self._by_ca.clear()
        self._by_ca[id(ca)] = crls
        return crls


class RevocationSource(Protocol):
    """Anything that hands ``decide`` the current CRLs without doing I/O in it."""

    def snapshot(self) -> CRLSnapshot:
        """The current CRLs; raises ``CrlUnavailable`` when there are none to trust."""
        ...

    def refresh_if_changed(self, now: float) -> None:
        """Called by the adapter before ``decide``; never raises."""
        ...


def check_not_revoked(
    serial: int,
    issuing_ca: x509.Certificate,
    revocation: RevocationSource,
    now: float,
) -> float:
    """Neither the certificate ``serial`` of ``issuing_ca`` nor ``issuing_ca`` is revoked.

    ``issuing_ca`` is the configured CA ``check_client_cert`` proved signed the
    certificate (its subject is the certificate's issuer name), so the pair
    (issuer, serial) names the certificate as a CRL does. A listing is final:
    ``cert_revoked`` wins over a missing or expired CRL for the other one (a
    retired CA's own CRL may be gone once the root has revoked it). Returns the
    earlier ``nextUpdate`` of the two CRLs: the allow built on this check is
    valid no longer than that.
    """
    crls = revocation.snapshot().for_ca(issuing_ca)
    if crls.parent is not None and crls.ca_serial in crls.parent.revoked:
        raise ClientCertRevoked(
            f"issuing CA serial {serial_hex(crls.ca_serial)} is on the CRL of "
            f"{crls.parent.issuer_dn!r}"
        )
    if crls.own is not None and serial in crls.own.revoked:
        raise ClientCertRevoked(
            f"serial {serial_hex(serial)} is on the CRL of {crls.own.issuer_dn!r}"
        )
    return min(
        _current(crls.own, issuing_ca.subject, now), _current(crls.parent, issuing_ca.issuer, now)
    )


def _current(crl: IssuerCRL | None, issuer: x509.Name, now: float) -> float:
    """``crl``'s nextUpdate if it is there and not expired, else ``crl_unavailable``."""
    if crl is None:
        raise CrlUnavailable(f"no CRL for issuer {issuer.rfc4514_string()!r}")
    if crl.next_update < now:
        expired = datetime.fromtimestamp(crl.next_update, tz=UTC).isoformat()
        raise CrlUnavailable(f"the CRL of {crl.issuer_dn!r} expired at {expired}")
    return crl.next_update


class StaticCRLSource:
    """Fixed CRLs; never reads a file (unit tests, the fuzzer)."""

    def __init__(self, snapshot: CRLSnapshot) -> None:
        self._snapshot = snapshot

    @classmethod
    def from_pem(cls, pem: bytes | str) -> StaticCRLSource:
        """From PEM text; raises ``CrlUnavailable`` when it holds no usable CRL."""
        return cls(CRLSnapshot.from_pem(pem))

    def snapshot(self) -> CRLSnapshot:
        return self._snapshot

    def refresh_if_changed(self, now: float) -> None:
        """Nothing to refresh."""


class CRLFileSource:
    """The CRL file, re-read when it changes (see module docstring).

    Thread-safe: gunicorn serves several connections per worker, each on its own
    thread. Requests read ``snapshot()`` without a lock (one attribute read of
    an immutable object); at most one thread re-checks the file at a time.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, check_interval: float = DEFAULT_CHECK_INTERVAL
    ) -> None:
        if check_interval < 0:
            raise ValueError("check_interval must not be negative")
        self.path = os.fspath(path)
        self.check_interval = check_interval
        self.last_error: str | None = "the CRL file was never read"
        self._snapshot: CRLSnapshot | None = None
        self._file_id: FileId | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> CRLFileSource:
        """The source of the file the settings name (``CLIENT_CRL``)."""
        return cls(settings.client_crl)

    def snapshot(self) -> CRLSnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            raise CrlUnavailable(self.last_error or "no CRL loaded")
        return snapshot

    def refresh_if_changed(self, now: float) -> None:
        """Re-read the file if it changed; looks at most once per ``check_interval``.

        A clock that went backwards counts as "interval passed", so a stepped
        clock cannot postpone the next look indefinitely.
        """
        if not self._due(now):
            return
        with self._lock:
            if not self._due(now):  # another thread looked while we waited
                return
            self._checked_at = now
            try:
                self._reload_if_changed()
            except Exception as e:  # a bug while loading must fail closed, not crash
                log.exception("unexpected error loading the CRL file %s", self.path)
                self._fail(None, f"unexpected {type(e).__name__} loading the CRL file")

    def _due(self, now: float) -> bool:
        checked = self._checked_at
        return checked is None or not 0 <= now - checked < self.check_interval

    def _reload_if_changed(self) -> None:
        try:
            file_id = _file_id(os.stat(self.path))
        except OSError as e:
            self._fail(None, f"the CRL file is unreadable ({e.strerror or type(e).__name__})")
            return
        if file_id == self._file_id:
            return  # the version already loaded (or already refused): nothing new
        try:
            with open(self.path, "rb") as file:
                file_id = _file_id(os.fstat(file.fileno()))  # the version actually read
                pem = file.read(MAX_CRL_FILE_BYTES + 1)
        except OSError as e:
            self._fail(None, f"the CRL file is unreadable ({e.strerror or type(e).__name__})")
            return
        if len(pem) > MAX_CRL_FILE_BYTES:
            self._fail(file_id, f"the CRL file is larger than {MAX_CRL_FILE_BYTES} bytes")
            return
        try:
            snapshot = CRLSnapshot.from_pem(pem)
        except CrlUnavailable as e:
            self._fail(file_id, e.detail)
            return
        self._snapshot, self._file_id, self.last_error = snapshot, file_id, None
        log.info(
            "loaded %d CRL(s) from %s; earliest nextUpdate %s",
            len(snapshot.by_issuer),
            self.path,
            datetime.fromtimestamp(snapshot.next_update, tz=UTC).isoformat(),
        )

    def _fail(self, file_id: FileId | None, reason: str) -> None:
        """Drop the snapshot (fail closed); log once per change of file or reason."""
        if reason != self.last_error or file_id != self._file_id:
            log.error(
                "refusing every request until the CRL file is fixed: %s: %s", reason, self.path
            )
        self._snapshot, self._file_id, self.last_error = None, file_id, reason


def _file_id(st: os.stat_result) -> FileId:
    return (st.st_ino, st.st_size, st.st_mtime_ns)
