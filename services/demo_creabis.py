"""Demo data for e-Creabis and the BIS register: the National Register backend of Creabis/v1, access rights and
grants (purpose IDENTIFICATION), and one BIS-registered person in Kruisdorp's files so ConsultPerson shows something.

Kruisdorp and the OCMW may update the BIS register (BisRegister.Update); Brugstede may consult it but not update
it, so the demo shows the refusal. Called by services.demo.load."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from integrator import commands
from integrator.config import Settings
from repository import bis, directory
from repository.bis_numbers import PartialDate, compose, free_sequence, prefix, sequence_of
from repository.models import Organisation
from services.demo_organisations import BRUGSTEDE, KRUISDORP, OCMW, OFFICIALS
from services.matching import Identity, identity_key

CREABIS, REGISTER, UPDATE = "Creabis", "BisRegister", "BisRegister.Update"
PURPOSE_IDENTIFICATION = "IDENTIFICATION"
NR_BACKEND, NR_PORT = "national-register", 8095
DEMO_MESSAGE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "kruispunt:demo:bis-person"))
DEMO_PERSON = Identity("Kowalski", "Jan Piotr", PartialDate(1984, 5, 17), "M", "PL")
DEMO_EVIDENCE = ("PASSPORT", "EK1234567", "PL")
DEMO_TICKET = "KP-20260101-" + "0" * 32


def load(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """Idempotent, like everything in the demo."""

    commands.add_backend(session, "Creabis/v1", NR_BACKEND,
                         backend_urls.get(NR_BACKEND, f"http://127.0.0.1:{NR_PORT}/"),
                         (settings.pki_dir / f"backend-{NR_BACKEND}.crt").read_bytes())
    for org in (KRUISDORP, BRUGSTEDE, OCMW):
        commands.add_access_right(session, org.enterprise_number, CREABIS)
        commands.add_access_right(session, org.enterprise_number, REGISTER)
    for org in (KRUISDORP, OCMW):
        commands.add_access_right(session, org.enterprise_number, UPDATE)
    for official in (OFFICIALS[1], OFFICIALS[3]):  # Kruisdorp's population office, the OCMW's social worker
        for service in (CREABIS, REGISTER, UPDATE):
            commands.add_grant(session, official.organisation, official.insz, service, PURPOSE_IDENTIFICATION)
    brugstede = OFFICIALS[2]  # may search and consult, so that the refused update is the access right's doing
    for service in (CREABIS, REGISTER):
        commands.add_grant(session, brugstede.organisation, brugstede.insz, service, PURPOSE_IDENTIFICATION)
    _demo_person(session, KRUISDORP.enterprise_number)


def _demo_person(session: Session, enterprise_number: str) -> None:
    """One BIS-registered person with an address, in Kruisdorp's files for IDENTIFICATION."""
    key = identity_key(DEMO_PERSON, DEMO_EVIDENCE)
    if bis.by_identity(session, key) is not None:
        return
    org = session.query(Organisation).filter_by(enterprise_number=enterprise_number).one()
    first6 = prefix(DEMO_PERSON.born, DEMO_PERSON.gender)
    sequence = free_sequence((sequence_of(n) for n in bis.numbers_with_prefix(session, first6)), DEMO_PERSON.gender)
    now = datetime.now(UTC)
    person = bis.BisPerson(
        insz=compose(DEMO_PERSON.born, DEMO_PERSON.gender, sequence), identity_key=key,
        last_name=DEMO_PERSON.last_name, first_names=DEMO_PERSON.first_names, birth_year=DEMO_PERSON.born.year,
        birth_month=DEMO_PERSON.born.month, birth_day=DEMO_PERSON.born.day, gender=DEMO_PERSON.gender,
        nationality=DEMO_PERSON.nationality or "", evidence_type=DEMO_EVIDENCE[0], evidence_number=DEMO_EVIDENCE[1],
        evidence_country=DEMO_EVIDENCE[2], created_at=now, created_by=org.id, created_ticket=DEMO_TICKET,
        message_id=DEMO_MESSAGE_ID, request_digest="0" * 64)
    session.add(person)
    session.flush()
    bis.add_address(session, person, bis.AddressFields("Kerkstraat", "5", "9000", "Kruisdorp", "BE"),
                    date(2025, 1, 1), bis.Recorded(now, org.id, DEMO_TICKET))
    directory.register(session, org.id, person.insz, PURPOSE_IDENTIFICATION, date(2025, 1, 1))
