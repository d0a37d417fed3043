"""BisRegister v1: the integrator's own register of BIS-registered persons. Consult a person (identity, evidence,
address and contact history); update the address or the contact data: a new period ends the running one the day
before it starts, history is kept. Updates need the access right and grant BisRegister.Update; every operation
answers only about persons in the caller's files (reference directory) for the caller's purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from integrator.faults import ClientFault, ContractViolation
from integrator.service import CallContext, HandlerResult, Operation, ServiceDefinition, operation
from repository import bis
from repository.base import aware

NS = "urn:kruispunt:BisRegister:v1"
UPDATE = "BisRegister.Update"


# --- this service's faults (one fault family: integrator/faults.py) ---------------------------------------
class RegisterPersonUnknown(ClientFault):
    CODE = "Client.Register.PersonUnknown"
    HTTP_STATUS = 404


def _person(session: Session, insz: str) -> bis.BisPerson:
    person = bis.by_insz(session, insz)
    if person is None:
        raise RegisterPersonUnknown(f"{insz} is not in the integrator's BIS register; National Register numbers "
                                    "are consulted at the National Register.")
    return person


def _recorded(at: datetime, organisation: str, ticket: str) -> dict[str, Any]:
    return {"Organisation": organisation, "At": aware(at), "Ticket": ticket}


def _address(row: bis.BisAddress, numbers: dict[int, str]) -> dict[str, Any]:
    return {"Address": {"Street": row.street, "HouseNumber": row.house_number, "Postcode": row.postcode,
                        "Municipality": row.municipality, "Country": row.country},
            "ValidFrom": row.valid_from, "ValidUntil": row.valid_until,
            "Recorded": _recorded(row.recorded_at, numbers[row.recorded_by], row.ticket)}


def _contact(row: bis.BisContact, numbers: dict[int, str]) -> dict[str, Any]:
    return {"Phone": row.phone, "Email": row.email, "ValidFrom": row.valid_from, "ValidUntil": row.valid_until,
            "Recorded": _recorded(row.recorded_at, numbers[row.recorded_by], row.ticket)}


def consult_person(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    session = ctx.session
    person = _person(session, request["Insz"])
    addresses, contacts = bis.addresses(session, person.id), bis.contacts(session, person.id)
    numbers = bis.enterprise_numbers(session, {person.created_by, *(r.recorded_by for r in addresses),
                                               *(r.recorded_by for r in contacts)})
    body = {
        "Insz": person.insz,
        "Person": {"LastName": person.last_name, "FirstNames": person.first_names, "BirthDate": person.born.text(),
                   "Gender": person.gender, "Nationality": person.nationality},
        "Evidence": {"DocumentType": person.evidence_type, "DocumentNumber": person.evidence_number,
                     "IssuingCountry": person.evidence_country},
        "Created": _recorded(person.created_at, numbers[person.created_by], person.created_ticket),
        "Addresses": {"Period": [_address(r, numbers) for r in addresses]},
        "Contacts": {"Period": [_contact(r, numbers) for r in contacts]},
    }
    return HandlerResult(body, detail=f"{len(addresses)} address and {len(contacts)} contact period(s)")


def update_address(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    valid_from, given = request["ValidFrom"], request["Address"]
    fields = bis.AddressFields(given["Street"], given["HouseNumber"], given["Postcode"], given["Municipality"],
                               given["Country"])
    session = ctx.session
    person = _person(session, request["Insz"])
    try:
        row, closed = bis.add_address(session, person, fields, valid_from,
                                      bis.Recorded(ctx.received_at, ctx.organisation.id, ctx.ticket))
    except bis.PeriodOrder as error:
        raise ContractViolation(f"ValidFrom {valid_from}: {error}.") from None
    numbers = bis.enterprise_numbers(session, {row.recorded_by, *([closed.recorded_by] if closed else [])})
    body = {"Insz": person.insz, "Current": _address(row, numbers),
            "Closed": _address(closed, numbers) if closed else None}
    return HandlerResult(body, detail=f"address from {valid_from}" + (f", previous ends {closed.valid_until}"
                                                                       if closed else ""))


def update_contact(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    phone, email = request.get("Phone"), request.get("Email")
    if phone is None and email is None:
        raise ContractViolation("Give Phone, Email or both.")
    valid_from = request["ValidFrom"]
    session = ctx.session
    person = _person(session, request["Insz"])
    try:
        row, closed = bis.add_contact(session, person, phone, email, valid_from,
                                      bis.Recorded(ctx.received_at, ctx.organisation.id, ctx.ticket))
    except bis.PeriodOrder as error:
        raise ContractViolation(f"ValidFrom {valid_from}: {error}.") from None
    numbers = bis.enterprise_numbers(session, {row.recorded_by, *([closed.recorded_by] if closed else [])})
    body = {"Insz": person.insz, "Current": _contact(row, numbers),
            "Closed": _contact(closed, numbers) if closed else None}
    return HandlerResult(body, detail=f"contact data from {valid_from}")


def _operation(name: str, handler: Any, access: str | None = None) -> Operation:
    """Every operation names the person in Insz, who must be in the caller's files."""
    return operation(NS, name, handler, person_field="Insz", person_in_files=True, access=access)


SERVICE = ServiceDefinition(
    name="BisRegister",
    version="v1",
    title="The integrator's BIS register",
    description=("Consult a BIS-registered person (identity, evidence, addresses and contact data with their "
                 "history); authorised organisations update the address and the contact data."),
    wsdl="BisRegister-v1.wsdl",
    xsd="BisRegister/v1/BisRegister.xsd",
    operations=(
        _operation("ConsultPerson", consult_person),
        _operation("UpdateAddress", update_address, access=UPDATE),
        _operation("UpdateContact", update_contact, access=UPDATE),
    ),
)
