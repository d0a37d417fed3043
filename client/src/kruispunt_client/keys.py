"""Certificates and keys as PEM files: the caller's signing identity and the certificates it trusts."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class Identity:
    """A certificate with its private key, as PEM files on disk."""

    name: str
    cert_path: Path
    key_path: Path

    def load_cert(self) -> x509.Certificate:
        """Load the certificate from its PEM file."""
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def load_key(self) -> rsa.RSAPrivateKey:
        """Load the RSA private key from its PEM file."""
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"{self.key_path} does not hold an RSA private key")
        return key

    def cert_pem(self) -> bytes:
        """Return the certificate as PEM bytes."""
        return self.cert_path.read_bytes()


@dataclass(frozen=True)
class SigningKey:
    """An RSA private key with its certificate, loaded once and used for every request."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def from_identity(cls, identity: Identity) -> SigningKey:
        return cls(key=identity.load_key(), certificate=identity.load_cert())

    @property
    def token(self) -> str:
        """The certificate as a BinarySecurityToken carries it: base64 of its DER form."""
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()


def load_certificates(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Every certificate in the given PEM files (each may hold several)."""
    return [cert for path in paths for cert in x509.load_pem_x509_certificates(Path(path).read_bytes())]


__all__ = ["Identity", "SigningKey", "load_certificates"]
