"""Every certificate and CA the stack has installed, with what it is and whose it is.

One list for the two readers that report on them, so they can never disagree:
``zt status`` (expiry, time left, warnings) and the PKI metrics file
(``scripts.pki.expiry_metrics``: the same certificates as Prometheus gauges).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from scripts import config
from scripts.pki import certs

CA_BUNDLES = (("server CA", config.SERVER_CA_BUNDLE), ("client CA", config.CLIENT_CA_BUNDLE))


@dataclass(frozen=True)
class Installed:
    """One installed certificate."""

    what: str
    """How ``zt status`` names it: ``client/python-client``, ``server/nginx``, ``server CA``."""
    kind: str
    """``client``, ``server`` or ``ca``."""
    name: str
    """The workload identity, the service, or (a CA) its common name."""
    cert: x509.Certificate


def common_name(name: x509.Name) -> str:
    """The CN of ``name``, or the whole name when it has none."""
    attrs = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def installed_certificates() -> list[Installed]:
    """Every leaf under ``pki/<kind>/<name>/cert.pem``, then every CA of the two
    bundles (roots and issuing CAs), in a stable order."""
    found = sorted(config.PKI_DIR.glob("*/*/cert.pem")) if config.PKI_DIR.exists() else []
    out = [
        Installed(
            f"{path.parent.parent.name}/{path.parent.name}",
            path.parent.parent.name,
            path.parent.name,
            certs.load(path),
        )
        for path in found
    ]
    for label, bundle in CA_BUNDLES:
        if bundle.exists():
            for cert in x509.load_pem_x509_certificates(bundle.read_bytes()):
                out.append(Installed(label, "ca", common_name(cert.subject), cert))
    return out
