"""Test keys made here with cryptography: the network's CA, a municipality, the integrator, a CA the client does
not trust, and a CRL. Nothing of the integrator is imported: these tests run where only the client is installed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kruispunt_client import Identity, SigningKey, Trust


@dataclass(frozen=True)
class Party:
    identity: Identity
    key: SigningKey

    @property
    def certificate(self) -> x509.Certificate:
        return self.key.certificate


@dataclass(frozen=True)
class Network:
    ca: Party
    municipality: Party
    integrator: Party
    colleague: Party  # another organisation of the same network: trusted, but not the integrator
    outsider: Party  # issued by a CA the client does not trust
    revoked: Party  # issued by the network's CA, on its CRL
    crl: Path
    folder: Path

    def trust(self) -> Trust:
        return Trust.from_files([self.ca.identity.cert_path], self.crl)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _usage(*, sign: bool, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=not sign and not ca,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _write(folder: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> Party:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Party(Identity(name, cert_path, key_path), SigningKey(key, cert))


def make_ca(folder: Path, name: str) -> Party:
    key, now = _key(), dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(sign=False, ca=True), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(folder, name, cert, key)


def make_party(folder: Path, ca: Party, name: str, *, sign: bool = True,
               valid: tuple[dt.timedelta, dt.timedelta] = (dt.timedelta(hours=-1), dt.timedelta(days=30))) -> Party:
    key, now = _key(), dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + valid[0])
            .not_valid_after(now + valid[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign=sign), critical=True)
            .sign(ca.key.key, hashes.SHA256()))
    return _write(folder, name, cert, key)


def write_crl(ca: Party, path: Path, revoked: list[x509.Certificate]) -> Path:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject).last_update(now)
               .next_update(now + dt.timedelta(days=7)))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build())
    path.write_bytes(builder.sign(ca.key.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "network CA")
    revoked = make_party(folder, ca, "revoked")
    return Network(ca=ca, municipality=make_party(folder, ca, "municipality"),
                   integrator=make_party(folder, ca, "integrator"), colleague=make_party(folder, ca, "colleague"),
                   outsider=make_party(folder, make_ca(folder, "other CA"), "outsider"), revoked=revoked,
                   crl=write_crl(ca, folder / "ca.crl", [revoked.certificate]), folder=folder)
