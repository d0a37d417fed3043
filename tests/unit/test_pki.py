"""Tests for the demo PKI in integrator.pki."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from integrator.pki import (
    Identity,
    create_ca,
    fingerprint,
    issue,
    load_crl,
    load_trust_anchors,
    write_crl,
)

ENTERPRISE_NUMBER = "0207520404"


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory shared by the module's tests (RSA key generation is slow)."""
    return tmp_path_factory.mktemp("pki")


@pytest.fixture(scope="module")
def ca(pki_dir: Path) -> Identity:
    """Create a demo CA."""
    return create_ca(pki_dir)


@pytest.fixture(scope="module")
def org(ca: Identity, pki_dir: Path) -> Identity:
    """Issue an end-entity certificate for an organisation."""
    return issue(
        ca,
        pki_dir,
        f"org-{ENTERPRISE_NUMBER}",
        common_name="Org NV",
        organization="Org NV",
        serial_number=ENTERPRISE_NUMBER,
    )


def _now() -> dt.datetime:
    """Return the current time in UTC."""
    return dt.datetime.now(dt.UTC)


def test_ca_is_self_signed_ca(ca: Identity, pki_dir: Path) -> None:
    cert = ca.load_cert()
    assert ca.cert_path == pki_dir / "ca.crt" and ca.key_path == pki_dir / "ca.key"
    cert.verify_directly_issued_by(cert)
    assert cert.subject == cert.issuer
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert isinstance(ca.load_key(), rsa.RSAPrivateKey)
    assert ca.load_key().key_size == 2048


def test_issued_cert_chains_to_ca(ca: Identity, org: Identity, pki_dir: Path) -> None:
    ca_cert, cert = ca.load_cert(), org.load_cert()
    assert org.cert_path == pki_dir / f"org-{ENTERPRISE_NUMBER}.crt"
    cert.verify_directly_issued_by(ca_cert)
    assert cert.issuer == ca_cert.subject
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert org.load_key().public_key().public_numbers() == cert.public_key().public_numbers()


def test_issued_cert_subject_carries_serial_number(org: Identity) -> None:
    subject = org.load_cert().subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)] == [ENTERPRISE_NUMBER]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["Org NV"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["Org NV"]


def test_default_validity(org: Identity) -> None:
    cert, now = org.load_cert(), _now()
    assert now - dt.timedelta(hours=2) < cert.not_valid_before_utc < now
    assert cert.not_valid_after_utc - now > dt.timedelta(days=824)


def test_without_digital_signature(ca: Identity, tmp_path: Path) -> None:
    ident = issue(ca, tmp_path, "nosig", common_name="no signing", digital_signature=False)
    cert = ident.load_cert()
    subject = cert.subject
    assert not subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    assert not subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and not usage.value.digital_signature and usage.value.key_encipherment


def test_expired_cert_is_expired(ca: Identity, tmp_path: Path) -> None:
    now = _now()
    ident = issue(
        ca,
        tmp_path,
        "expired",
        common_name="expired",
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    cert = ident.load_cert()
    assert cert.not_valid_after_utc < _now()
    assert cert.not_valid_before_utc == (now - dt.timedelta(days=30)).replace(microsecond=0)
    cert.verify_directly_issued_by(ca.load_cert())


def test_sha1_signing_is_refused(ca: Identity, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sha1"):
        issue(ca, tmp_path, "sha1", common_name="sha1", hash_algorithm="sha1")
    assert not (tmp_path / "sha1.crt").exists() and not (tmp_path / "sha1.key").exists()


def test_unknown_hash_algorithm(ca: Identity, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md5"):
        issue(ca, tmp_path, "md5", common_name="md5", hash_algorithm="md5")


def test_crl_lists_revoked_and_verifies(ca: Identity, org: Identity, tmp_path: Path) -> None:
    other = issue(ca, tmp_path, "other", common_name="other")
    path = write_crl(ca, tmp_path / "crl" / "ca.crl", [org.load_cert()])
    assert path == tmp_path / "crl" / "ca.crl" and path.read_bytes().startswith(b"-----BEGIN X509 CRL-----")
    crl = load_crl(path)
    ca_cert = ca.load_cert()
    assert crl.issuer == ca_cert.subject
    assert crl.is_signature_valid(ca_cert.public_key())
    assert crl.signature_hash_algorithm is not None and crl.signature_hash_algorithm.name == "sha256"
    assert crl.get_revoked_certificate_by_serial_number(org.load_cert().serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(other.load_cert().serial_number) is None
    assert len(crl) == 1
    assert crl.next_update_utc is not None
    assert dt.timedelta(days=6) < crl.next_update_utc - _now() <= dt.timedelta(days=7)


def test_crl_signature_fails_with_other_key(ca: Identity, tmp_path: Path) -> None:
    stranger = create_ca(tmp_path / "stranger")
    crl = load_crl(write_crl(ca, tmp_path / "empty.crl", []))
    assert len(crl) == 0
    assert not crl.is_signature_valid(stranger.load_cert().public_key())


def test_key_files_are_private(ca: Identity, org: Identity) -> None:
    for ident in (ca, org):
        assert stat.S_IMODE(ident.key_path.stat().st_mode) == 0o600


def test_load_trust_anchors_reads_bundles(ca: Identity, org: Identity, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(ca.cert_pem() + org.cert_pem())
    anchors = load_trust_anchors([bundle, ca.cert_path])
    ca_print, org_print = fingerprint(ca.load_cert()), fingerprint(org.load_cert())
    assert [fingerprint(c) for c in anchors] == [ca_print, org_print, ca_print]


def test_fingerprint_is_stable_sha256_hex(ca: Identity, org: Identity) -> None:
    value = fingerprint(ca.load_cert())
    assert value == fingerprint(ca.load_cert())
    assert len(value) == 64 and value == value.lower()
    int(value, 16)
    assert value != fingerprint(org.load_cert())
    assert value == ca.load_cert().fingerprint(hashes.SHA256()).hex()
