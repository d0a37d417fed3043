"""Trust decisions about a signer's certificate: explicit anchors, validity, key usage, revocation."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from integrator.faults import (
    AlgorithmRefused,
    CertificateExpired,
    CertificateRevoked,
    CertificateUntrusted,
    CertificateUsage,
)
from integrator.pki import fingerprint, load_crl, load_trust_anchors

MIN_RSA_BITS = 2048
CRL_RECHECK_SECONDS = 5.0


@dataclass
class TrustStore:
    """Trust anchors and an optional CRL file, re-read when the file changes."""

    anchors: list[x509.Certificate]
    crl_path: Path | None = None
    cache_seconds: float = 60.0
    _crl: x509.CertificateRevocationList | None = field(default=None, init=False, repr=False)
    _crl_mtime: float = field(default=-1.0, init=False, repr=False)
    _crl_checked: float = field(default=0.0, init=False, repr=False)
    _revoked: frozenset[int] = field(default=frozenset(), init=False, repr=False)
    _verdicts: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_files(cls, anchor_paths: list[Path], crl_path: Path | None) -> TrustStore:
        anchors = load_trust_anchors(anchor_paths)
        if not anchors:
            raise ValueError("at least one trust anchor is required")
        return cls(anchors=anchors, crl_path=crl_path)

    def check(self, cert: x509.Certificate, now: datetime, fp: str | None = None) -> None:
        """Raise the fault that says why this certificate may not sign, or return if it may (fp: its fingerprint,
        when the caller has it already)."""
        fp = fp or fingerprint(cert)
        revoked = self._revoked_serials()
        if cert.serial_number in revoked:
            raise CertificateRevoked(
                f"The certificate {_describe(cert)} has been revoked; ask your certificate authority for a new one."
            )
        with self._lock:
            until = self._verdicts.get(fp)
        if until is not None and until > time.monotonic() and _within_validity(cert, now):
            return
        self._check_uncached(cert, now)
        with self._lock:
            if len(self._verdicts) > 10_000:
                self._verdicts.clear()
            self._verdicts[fp] = time.monotonic() + self.cache_seconds

    def _check_uncached(self, cert: x509.Certificate, now: datetime) -> None:
        issuer = next((a for a in self.anchors if a.subject == cert.issuer), None)
        if issuer is None:
            raise CertificateUntrusted(
                f"The certificate {_describe(cert)} is not issued by a trusted authority of this network."
            )
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateUntrusted(
                f"The certificate {_describe(cert)} does not verify against the trusted authority it names."
            ) from None
        if not _within_validity(cert, now):
            raise CertificateExpired(
                f"The certificate {_describe(cert)} is valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d}; renew it."
            )
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            raise AlgorithmRefused(f"The certificate {_describe(cert)} must carry an RSA key of 2048 bits or more.")
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is None or not usage.digital_signature:
            raise CertificateUsage(
                f"The certificate {_describe(cert)} does not allow digital signatures (key usage)."
            )

    def crl_next_update(self) -> datetime | None:
        """When the CRL says a newer one is due; raise if it cannot be read or is not signed by a trust anchor."""
        self._revoked_serials()
        with self._lock:
            crl = self._crl
        return crl.next_update_utc if crl is not None else None

    def _revoked_serials(self) -> frozenset[int]:
        if self.crl_path is None:
            return frozenset()
        now = time.monotonic()
        with self._lock:
            if now - self._crl_checked > CRL_RECHECK_SECONDS or self._crl is None:
                self._crl_checked = now
                if not self.crl_path.exists():
                    self._crl = None
                    raise ValueError(f"the CRL {self.crl_path} is missing; revocation cannot be checked")
                mtime = self.crl_path.stat().st_mtime
                if mtime != self._crl_mtime or self._crl is None:
                    self._crl = None
                    self._crl = self._load_verified_crl()
                    self._crl_mtime = mtime
                    self._revoked = frozenset(r.serial_number for r in self._crl)
                    self._verdicts.clear()
            return self._revoked

    def _load_verified_crl(self) -> x509.CertificateRevocationList:
        assert self.crl_path is not None
        crl = load_crl(self.crl_path)
        issuer = next((a for a in self.anchors if a.subject == crl.issuer), None)
        if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise ValueError(f"the CRL {self.crl_path} is not signed by a trust anchor")
        return crl


def _within_validity(cert: x509.Certificate, now: datetime, skew: timedelta = timedelta(0)) -> bool:
    return cert.not_valid_before_utc - skew <= now <= cert.not_valid_after_utc + skew


def _describe(cert: x509.Certificate) -> str:
    return f"'{cert.subject.rfc4514_string()}' (serial {cert.serial_number:x})"
