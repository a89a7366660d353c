"""The client CA's CRLs: fetched from OpenBao, checked, and installed in ONE file.

nginx (``ssl_crl``) and the verifier (``ZT_VERIFIER_CLIENT_CRL``) both read
``config.CLIENT_CRL``: the CRL of the client root and of every issuer in the client
issuing mount (a CA rollover has two). OpenBao rebuilds a mount's CRL on every
revocation (``auto_rebuild = false`` in terraform/pki), so whatever revoked a
certificate — ``zt revoke``, the revoker AppRole through hvac, ``bao write
pki_client/revoke``, Terraform — the published CRL lists it at once; the watcher
(``scripts/watcher.py``) brings that CRL here within its interval.

What is installed is checked first: every CRL verifies against a CA of the client
bundle and is not past its ``nextUpdate``. A CRL that does not verify is never
written (the current file stays); the file is replaced atomically, so a reader sees
the old set or the new one, never half.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import hvac.exceptions
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from scripts import config
from scripts.files import write_atomic
from scripts.pki import certs
from scripts.steps import StepFailed

MARKER = b"-----BEGIN X509 CRL-----"
REBUILD_AT = 1 / 3  # fraction of a CRL's validity after which it is rebuilt in OpenBao
FETCH_TIMEOUT_SECONDS = 5


def parse(pem: bytes) -> list[x509.CertificateRevocationList]:
    """Every CRL in a PEM text, in order; ValueError if one does not parse."""
    return [x509.load_pem_x509_crl(MARKER + block) for block in pem.split(MARKER)[1:]]


def load(path: Path = config.CLIENT_CRL) -> list[x509.CertificateRevocationList]:
    """The installed CRLs; [] when there is no file yet."""
    return parse(path.read_bytes()) if path.exists() else []


def next_update(crls: Iterable[x509.CertificateRevocationList]) -> dt.datetime | None:
    """The earliest ``nextUpdate``: when nginx starts refusing every client."""
    updates = [crl.next_update_utc for crl in crls if crl.next_update_utc is not None]
    return min(updates) if updates else None


def due(crls: list[x509.CertificateRevocationList], now: dt.datetime) -> bool:
    """True when a CRL is missing or past ``REBUILD_AT`` of its validity."""
    if not crls:
        return True
    for crl in crls:
        if crl.next_update_utc is None:
            continue
        life = crl.next_update_utc - crl.last_update_utc
        if now >= crl.last_update_utc + life * REBUILD_AT:
            return True
    return False


def revoked_serials(crls: Iterable[x509.CertificateRevocationList]) -> set[int]:
    return {entry.serial_number for crl in crls for entry in crl}


def _mounts() -> tuple[str, str]:
    mounts = certs.pki_outputs()["mounts"]
    return mounts["client_issuing"], mounts["client_root"]


def rebuild() -> None:
    """Have OpenBao rebuild the CRLs of all four mounts now (the revoker AppRole).

    With ``auto_rebuild = false`` OpenBao rebuilds a CRL only on a revocation, so a
    mount nobody revokes from would publish an expired CRL after ``crl_expiry``: the
    server mounts' CRLs are kept current here too, for relying parties other than ours.
    """
    mounts = certs.pki_outputs()["mounts"]
    client = certs.approle_client("revoker")
    try:
        for role in ("client_issuing", "client_root", "server_issuing", "server_root"):
            client.read(f"{mounts[role]}/crl/rotate")
    except (hvac.exceptions.VaultError, requests.RequestException) as e:
        raise certs.vault_failure(e, "rebuilding the CRLs") from e


def _openbao(method: str, url: str) -> requests.Response:
    """An unauthenticated request to OpenBao, TLS verified, bounded in time."""
    return requests.request(
        method, url, verify=str(config.VAULT_TLS_CA), timeout=FETCH_TIMEOUT_SECONDS
    )


def fetch() -> bytes:
    """The PEM of every client issuer's CRL, as OpenBao publishes them (unauthenticated)."""
    pems: list[str] = []
    try:
        for mount in _mounts():
            base = f"{config.VAULT_ADDR}/v1/{mount}"
            r = _openbao("LIST", f"{base}/issuers")
            if r.status_code != 200:
                raise StepFailed(f"could not list the issuers of {mount} ({r.status_code})")
            for issuer in r.json()["data"]["keys"]:
                crl = _openbao("GET", f"{base}/issuer/{issuer}/crl/pem")
                if crl.status_code != 200 or "BEGIN X509 CRL" not in crl.text:
                    raise StepFailed(f"could not fetch the CRL of {mount} issuer {issuer}")
                pems.append(crl.text.strip())
    except (requests.RequestException, ValueError, KeyError) as e:
        raise StepFailed(
            f"fetching the client CRLs from OpenBao at {config.VAULT_ADDR} failed: {e}; "
            "the installed CRL file is kept"
        ) from e
    return ("\n".join(pems) + "\n").encode("ascii")


def check(pem: bytes, ca_bundle: Path, now: dt.datetime) -> list[x509.CertificateRevocationList]:
    """The CRLs of ``pem`` that relying parties need: one per CA of ``ca_bundle``, each
    signed by that CA and current at ``now``.

    A CRL of an issuer the bundle no longer holds (a client issuing CA retired by a
    rollover stays in its mount) is dropped: nothing trusts that CA any more. A CA
    of the bundle without a CRL is an error, as nginx refuses every certificate of
    a chain one of whose CAs has no CRL.
    """
    cas = x509.load_pem_x509_certificates(ca_bundle.read_bytes())
    try:
        crls = parse(pem)
    except ValueError as e:
        raise StepFailed(f"OpenBao served a CRL that does not parse: {e}") from e
    kept = []
    for ca in cas:
        name = ca.subject.rfc4514_string()
        mine = [crl for crl in crls if crl.issuer == ca.subject]
        if not mine:
            raise StepFailed(f"OpenBao published no CRL for {name!r} of {ca_bundle}")
        for crl in mine:
            if not crl.is_signature_valid(ca.public_key()):
                raise StepFailed(f"the CRL of {name!r} is not signed by that CA ({ca_bundle})")
            if crl.next_update_utc is not None and crl.next_update_utc <= now:
                raise StepFailed(
                    f"OpenBao's CRL of {name!r} expired at {crl.next_update_utc:%F %T}Z; "
                    "rebuild it with `python -m scripts.zt renew`"
                )
            kept.append(crl)
    return kept


def install(pem: bytes, path: Path = config.CLIENT_CRL) -> bool:
    """Write ``pem`` atomically unless the file already holds exactly it; True if changed."""
    if path.exists() and path.read_bytes() == pem:
        return False
    write_atomic(path, pem)
    return True


def fetch_and_install(now: dt.datetime | None = None) -> bool:
    """Fetch, keep the checked CRLs of the client CA bundle, install them if different;
    True if the file changed."""
    crls = check(fetch(), config.CLIENT_CA_BUNDLE, now or dt.datetime.now(dt.UTC))
    return install(b"".join(crl.public_bytes(serialization.Encoding.PEM) for crl in crls))
