"""Certificates from OpenBao: issuance, revocation, CRLs, rotation and the CRL watcher."""
