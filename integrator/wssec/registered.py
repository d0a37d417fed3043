"""The certificates registered to organisations, as the security stage looks them up by a key reference."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session, sessionmaker

from integrator.wssec.tokens import Signer
from repository import certificates


class RegisteredCertificates:
    """A CertificateDirectory over the repository. A worker remembers what it found for cache_seconds (bounded
    staleness: revocation and trust are checked on every request all the same); what it did not find is asked
    again, so a certificate registered a moment ago is found at once."""

    def __init__(self, sessions: sessionmaker[Session], cache_seconds: float = 30.0, max_entries: int = 4096) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        self._found: dict[tuple[str, str], tuple[float, Signer]] = {}
        self._lock = threading.Lock()

    def by_issuer_serial(self, issuer: str, serial: int) -> Signer | None:
        return self._lookup(("issuer-serial", f"{serial}|{issuer}"),
                            lambda s: certificates.by_issuer_serial(s, issuer, serial))

    def by_subject_key_identifier(self, identifier: bytes) -> Signer | None:
        return self._lookup(("ski", identifier.hex()), lambda s: certificates.by_subject_key_identifier(s, identifier))

    def by_thumbprint(self, sha1: bytes) -> Signer | None:
        return self._lookup(("sha1", sha1.hex()), lambda s: certificates.by_thumbprint(s, sha1))

    def _lookup(self, key: tuple[str, str],
                query: Callable[[Session], x509.Certificate | None]) -> Signer | None:
        now = time.monotonic()
        with self._lock:
            hit = self._found.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.sessions() as session:
            certificate = query(session)
        if certificate is None:
            return None
        found = Signer.of(certificate.public_bytes(Encoding.DER))
        with self._lock:
            if len(self._found) >= self.max_entries:
                self._found.clear()
            self._found[key] = (now + self.cache_seconds, found)
        return found
