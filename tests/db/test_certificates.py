"""Registered certificates found by what a key reference names — issuer and serial, subject key identifier, SHA-1
thumbprint — on SQLite and on PostgreSQL, through the repository and through the security stage's cached directory."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.pki import Identity, create_ca, issue
from integrator.wssec.registered import RegisteredCertificates
from repository import certificates
from repository.models import Certificate
from services.demo_organisations import enterprise_number


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certificates")
    create_ca(directory, "CN-less test CA, Kruispunt")
    return directory


def new_certificate(ca_dir: Path) -> x509.Certificate:
    ca = Identity("ca", ca_dir / "ca.crt", ca_dir / "ca.key")
    made = issue(ca, ca_dir, f"org-{uuid.uuid4().hex[:8]}", common_name="Testgemeente", serial_number="0200000000")
    return made.load_cert()


@pytest.fixture
def registered(migrated: sessionmaker[Session], ca_dir: Path) -> x509.Certificate:
    cert = new_certificate(ca_dir)
    number = enterprise_number(11_000_000 + uuid.uuid4().int % 900_000)
    with migrated() as session:
        commands.add_organisation(session, number, "Testgemeente", "municipality", "11002")
        commands.register_certificate(session, number, cert.public_bytes(Encoding.PEM))
        session.commit()
    return cert


def test_registered_certificate_is_found_by_issuer_and_serial(migrated: sessionmaker[Session],
                                                              registered: x509.Certificate) -> None:
    with migrated() as session:
        found = certificates.by_issuer_serial(session, registered.issuer.rfc4514_string(), registered.serial_number)
    assert found == registered


@pytest.mark.parametrize("spelling", ["CN=cn-less test ca\\, kruispunt", "cn=CN-less test CA\\2C Kruispunt"])
def test_issuer_names_match_whatever_case_and_escaping_a_stack_writes(migrated: sessionmaker[Session],
                                                                      registered: x509.Certificate,
                                                                      spelling: str) -> None:
    with migrated() as session:
        assert certificates.by_issuer_serial(session, spelling, registered.serial_number) == registered


def test_same_serial_from_another_issuer_is_not_found(migrated: sessionmaker[Session],
                                                      registered: x509.Certificate) -> None:
    with migrated() as session:
        assert certificates.by_issuer_serial(session, "CN=another CA", registered.serial_number) is None


def test_registered_certificate_is_found_by_subject_key_identifier_and_thumbprint(
        migrated: sessionmaker[Session], registered: x509.Certificate) -> None:
    ski = registered.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    sha1 = hashlib.sha1(registered.public_bytes(Encoding.DER)).digest()
    with migrated() as session:
        assert certificates.by_subject_key_identifier(session, ski) == registered
        assert certificates.by_thumbprint(session, sha1) == registered
        assert certificates.by_thumbprint(session, hashlib.sha1(b"other").digest()) is None


def test_registering_again_fills_in_what_an_old_registration_lacks(migrated: sessionmaker[Session],
                                                                   ca_dir: Path) -> None:
    """A certificate registered before revision 0008 has its fingerprint only: registering it again makes it
    findable by the other key references, without a second row."""
    cert = new_certificate(ca_dir)
    number = enterprise_number(12_000_000 + uuid.uuid4().int % 900_000)
    fingerprint = certificates.fingerprint(cert)
    with migrated() as session:
        organisation = commands.add_organisation(session, number, "Oudgemeente", "municipality", "11002")
        session.add(Certificate(fingerprint=fingerprint, organisation_id=organisation.id, subject="CN=old"))
        session.commit()
        assert certificates.by_issuer_serial(session, cert.issuer.rfc4514_string(), cert.serial_number) is None
        commands.register_certificate(session, number, cert.public_bytes(Encoding.PEM))
        session.commit()
        rows = session.execute(select(Certificate).where(Certificate.fingerprint == fingerprint)).scalars().all()
        assert len(rows) == 1
        assert certificates.by_issuer_serial(session, cert.issuer.rfc4514_string(), cert.serial_number) == cert


def test_directory_answers_from_its_cache_and_asks_again_for_what_it_did_not_find(
        migrated: sessionmaker[Session], ca_dir: Path) -> None:
    directory = RegisteredCertificates(migrated, cache_seconds=300)
    cert = new_certificate(ca_dir)
    sha1 = hashlib.sha1(cert.public_bytes(Encoding.DER)).digest()
    assert directory.by_thumbprint(sha1) is None  # not registered yet
    number = enterprise_number(13_000_000 + uuid.uuid4().int % 900_000)
    with migrated() as session:
        commands.add_organisation(session, number, "Nieuwgemeente", "municipality", "11002")
        commands.register_certificate(session, number, cert.public_bytes(Encoding.PEM))
        session.commit()
    found = directory.by_thumbprint(sha1)  # a miss is not remembered: found at once after registration
    assert found is not None and found.certificate == cert
    assert found.fingerprint == certificates.fingerprint(cert)
    with migrated() as session:
        session.query(Certificate).filter(Certificate.fingerprint == found.fingerprint).delete()
        session.commit()
    assert directory.by_thumbprint(sha1) == found  # remembered within cache_seconds (the caller stage then finds
    #                                                no organisation for it: OrganisationUnknown)
