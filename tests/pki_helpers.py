"""Throw-away workload certificates from the real OpenBao, for tests that revoke them.

A test that revokes must never revoke the stack's own certificate on disk: it
issues its own through the workload's AppRole (exactly as ``zt rotate`` would)
and keeps it in the test's temporary folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from scripts.pki import certs
from tests.x509_helpers import write_pair


@dataclass(frozen=True)
class Workload:
    """A throw-away workload certificate on disk, and its serial in every spelling."""

    cert_file: Path
    key_file: Path
    certificate: x509.Certificate

    @property
    def serial(self) -> str:
        """As OpenBao prints and accepts it (colon-separated lower-case hex)."""
        return certs.serial_hex(self.certificate)

    @property
    def nginx_serial(self) -> str:
        """As nginx logs it (``$ssl_client_serial``): upper-case hex, no colons."""
        return self.serial.replace(":", "").upper()

    @property
    def files(self) -> tuple[str, str]:
        """(cert, key) as ``requests`` takes them."""
        return str(self.cert_file), str(self.key_file)

    def owns(self, nginx_line: dict) -> bool:
        """True for an nginx access-log line of a request with this certificate."""
        return nginx_line["ssl_client_serial"] == self.nginx_serial


def issue_throwaway(folder: Path, identity: str = "python-client") -> Workload:
    """A new certificate for ``identity`` through its own AppRole, written to ``folder``."""
    mount = certs.pki_outputs()["mounts"]["client_issuing"]
    data = certs.approle_client(f"client-{identity}").secrets.pki.generate_certificate(
        name=identity, common_name=identity, mount_point=mount
    )["data"]
    chain = data["certificate"].strip() + "\n" + data["issuing_ca"].strip() + "\n"
    cert_file, key_file = write_pair(folder, chain, data["private_key"])
    return Workload(Path(cert_file), Path(key_file), x509.load_pem_x509_certificate(chain.encode()))
