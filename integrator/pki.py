"""Demo PKI for kruispunt: a CA, end-entity certificates and a CRL as PEM files (each written as an Identity)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kruispunt_client.keys import Identity  # the client library's: a certificate and key as PEM files

from repository.certificates import fingerprint

KEY_SIZE = 2048
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}


def _now() -> dt.datetime:
    """Return the current time in UTC."""
    return dt.datetime.now(dt.UTC)


def _new_key() -> rsa.RSAPrivateKey:
    """Generate a fresh RSA 2048 key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """Build a KeyUsage extension with the given bits set."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write(directory: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> Identity:
    """Write cert and key (mode 0o600) as directory/name.crt and directory/name.key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    key_path.chmod(0o600)  # also when the file already existed with wider permissions
    return Identity(name=name, cert_path=cert_path, key_path=key_path)


def create_ca(directory: Path, common_name: str = "kruispunt demo CA", *, valid_days: int = 3650) -> Identity:
    """Create a self-signed CA and write it as directory/ca.crt and directory/ca.key."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, "ca", cert, key)


def issue(
    ca: Identity,
    directory: Path,
    name: str,
    *,
    common_name: str,
    organization: str | None = None,
    serial_number: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    digital_signature: bool = True,
    hash_algorithm: str = "sha256",
) -> Identity:
    """Issue a CA-signed end-entity certificate; ValueError for "sha1", which cryptography refuses."""
    if hash_algorithm not in _HASHES:
        raise ValueError(f"unknown hash_algorithm {hash_algorithm!r}; use one of {sorted(_HASHES)}")
    ca_cert, ca_key = ca.load_cert(), ca.load_key()
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if serial_number is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
    key = _new_key()
    now = _now()
    usage = _key_usage(digital_signature=digital_signature, key_encipherment=not digital_signature)
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or (now - dt.timedelta(hours=1)))
        .not_valid_after(not_after or (now + dt.timedelta(days=825)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(aki, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    try:
        cert = builder.sign(ca_key, _HASHES[hash_algorithm]())
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"this cryptography build refuses to sign with {hash_algorithm}: {exc}") from exc
    return _write(directory, name, cert, key)


def write_crl(
    ca: Identity, path: Path, revoked: Sequence[x509.Certificate | int], *, next_update_days: int = 7
) -> Path:
    """Write a SHA-256 CRL signed by the CA that revokes the given certificates (or serial numbers) as of now."""
    ca_cert, ca_key = ca.load_cert(), ca.load_key()
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=next_update_days))
    )
    for cert in revoked:
        serial = cert if isinstance(cert, int) else cert.serial_number
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(ca_key, hashes.SHA256())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


def load_trust_anchors(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Load every certificate from the given PEM files (each may hold several)."""
    return [cert for path in paths for cert in x509.load_pem_x509_certificates(path.read_bytes())]


def load_crl(path: Path) -> x509.CertificateRevocationList:
    """Load a PEM-encoded CRL."""
    return x509.load_pem_x509_crl(path.read_bytes())


__all__ = ["Identity", "create_ca", "fingerprint", "issue", "load_crl", "load_trust_anchors", "write_crl"]
