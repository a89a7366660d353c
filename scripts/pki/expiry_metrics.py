"""Certificate and CRL dates as Prometheus text, rewritten by the CRL watcher each round.

Why a file the watcher writes, served by nginx (``/metrics/pki`` on the loopback
health listener): the dates live in files of the state folder that only the ops tool
reads, the watcher already runs every ``config.CRL_WATCH_SECONDS`` under supervision,
and a static file needs no new server. The file is replaced atomically (a scrape
reads the old text or the new, never half); ``zt_pki_metrics_generated_timestamp_seconds``
says when, so a watcher that stopped writing is itself an alert.

The certificates are exactly those ``zt status`` lists (``scripts.pki.inventory``):

* ``zt_certificate_not_before_timestamp_seconds{kind,name,serial}`` and
  ``zt_certificate_not_after_timestamp_seconds{kind,name,serial}``: ``kind`` is
  ``client``, ``server`` or ``ca``; ``name`` the workload identity, the service or
  the CA's common name; ``serial`` as ``zt status`` prints it;
* ``zt_crl_this_update_timestamp_seconds{issuer}`` and
  ``zt_crl_next_update_timestamp_seconds{issuer}``: every installed client CRL
  (``config.CLIENT_CRL``), by its issuer's common name;
* ``zt_pki_metrics_generated_timestamp_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scripts import config
from scripts.files import write_atomic
from scripts.pki import certs, crl, inventory

CERT_LABELS = ("kind", "name", "serial")


def certificate_families(items: Iterable[inventory.Installed]) -> list[Metric]:
    """The two certificate gauges, one sample per certificate."""
    not_before = GaugeMetricFamily(
        "zt_certificate_not_before_timestamp_seconds",
        "Start of a certificate's validity (as zt status lists them).",
        labels=CERT_LABELS,
    )
    not_after = GaugeMetricFamily(
        "zt_certificate_not_after_timestamp_seconds",
        "End of a certificate's validity (as zt status lists them).",
        labels=CERT_LABELS,
    )
    seen: set[tuple[str, str, str]] = set()
    for item in items:
        labels = (item.kind, item.name, certs.serial_hex(item.cert))
        if labels in seen:  # the same CA in two bundles would be one series twice
            continue
        seen.add(labels)
        not_before.add_metric(labels, item.cert.not_valid_before_utc.timestamp())
        not_after.add_metric(labels, item.cert.not_valid_after_utc.timestamp())
    return [not_before, not_after]


def crl_families(crls: Iterable[x509.CertificateRevocationList]) -> list[Metric]:
    """The two CRL gauges, one sample per installed CRL, by issuer CN (made unique)."""
    this_update = GaugeMetricFamily(
        "zt_crl_this_update_timestamp_seconds",
        "When an installed client CRL was issued.",
        labels=("issuer",),
    )
    next_update = GaugeMetricFamily(
        "zt_crl_next_update_timestamp_seconds",
        "When an installed client CRL expires (nginx refuses every client after it).",
        labels=("issuer",),
    )
    used: set[str] = set()
    for item in crls:
        issuer = inventory.common_name(item.issuer)
        while issuer in used:
            issuer += "+"
        used.add(issuer)
        this_update.add_metric((issuer,), item.last_update_utc.timestamp())
        if item.next_update_utc is not None:
            next_update.add_metric((issuer,), item.next_update_utc.timestamp())
    return [this_update, next_update]


class _PKICollector(Collector):
    def __init__(self, now: float) -> None:
        self.now = now

    def collect(self) -> Iterable[Metric]:
        yield from certificate_families(inventory.installed_certificates())
        yield from crl_families(crl.load())
        yield GaugeMetricFamily(
            "zt_pki_metrics_generated_timestamp_seconds",
            "When this file was written (the CRL watcher rewrites it every round).",
            value=self.now,
        )


def render(now: float | None = None) -> bytes:
    """The Prometheus text of every installed certificate and CRL, now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_PKICollector(time.time() if now is None else now))
    return generate_latest(registry)


def write(path: Path = config.PKI_METRICS) -> None:
    """Replace ``path`` atomically (0644: nginx's workers serve it)."""
    write_atomic(path, render(), mode=0o644)
