"""Whether a certificate may sign for the network: issued by a trust anchor, valid today, an RSA key of 2048 bits
or more that may make digital signatures, and not on the CRL (when one is given; re-read when its file changes)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from kruispunt_client.errors import CertificateRefused
from kruispunt_client.keys import load_certificates

MIN_RSA_BITS = 2048


class Trust:
    """The network's trust anchors and, optionally, the CRL file its CA publishes."""

    def __init__(self, anchors: Sequence[x509.Certificate], crl_path: Path | None = None) -> None:
        if not anchors:
            raise ValueError("at least one trust anchor is required")
        self.anchors = list(anchors)
        self.crl_path = crl_path
        self._lock = threading.Lock()
        self._crl_mtime: float | None = None
        self._revoked: frozenset[int] = frozenset()

    @classmethod
    def from_files(cls, anchor_paths: Sequence[Path], crl_path: Path | None = None) -> Trust:
        return cls(load_certificates(anchor_paths), crl_path)

    def check(self, cert: x509.Certificate, now: datetime | None = None) -> None:
        """Return if the certificate may sign; raise CertificateRefused saying why not otherwise."""
        now = now or datetime.now(UTC)
        name = f"'{cert.subject.rfc4514_string()}' (serial {cert.serial_number:x})"
        issuer = next((anchor for anchor in self.anchors if anchor.subject == cert.issuer), None)
        if issuer is None:
            raise CertificateRefused(f"the certificate {name} is not issued by a trust anchor")
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateRefused(f"the certificate {name} does not verify against its issuer") from None
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CertificateRefused(f"the certificate {name} is not valid on {now:%Y-%m-%d}")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            raise CertificateRefused(f"the certificate {name} does not carry an RSA key of {MIN_RSA_BITS} bits")
        try:
            may_sign = cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
        except x509.ExtensionNotFound:
            may_sign = False
        if not may_sign:
            raise CertificateRefused(f"the certificate {name} does not allow digital signatures")
        if cert.serial_number in self.revoked():
            raise CertificateRefused(f"the certificate {name} is revoked")

    def revoked(self) -> frozenset[int]:
        """The serial numbers on the CRL (none without one); a CRL not signed by a trust anchor is refused."""
        if self.crl_path is None:
            return frozenset()
        with self._lock:
            try:
                mtime = self.crl_path.stat().st_mtime
            except FileNotFoundError:
                raise CertificateRefused(f"the CRL {self.crl_path} is missing: revocation cannot be checked") from None
            if mtime != self._crl_mtime:
                crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
                issuer = next((anchor for anchor in self.anchors if anchor.subject == crl.issuer), None)
                public_key = issuer.public_key() if issuer is not None else None
                if not isinstance(public_key, rsa.RSAPublicKey) or not crl.is_signature_valid(public_key):
                    raise CertificateRefused(f"the CRL {self.crl_path} is not signed by a trust anchor")
                self._revoked = frozenset(entry.serial_number for entry in crl)
                self._crl_mtime = mtime
            return self._revoked


__all__ = ["MIN_RSA_BITS", "Trust"]
