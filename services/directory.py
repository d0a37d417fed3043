"""ReferenceDirectory v1: an organisation declares which persons it has a file on, for which purpose, when.
Services that concern a person answer only about persons in the caller's files (the gateway checks)."""

from __future__ import annotations

from typing import Any

from integrator.contract import check_insz
from integrator.faults import ContractViolation
from integrator.service import CallContext, HandlerResult, Operation, ServiceDefinition, operation
from repository import directory

NS = "urn:kruispunt:ReferenceDirectory:v1"


def _entry(entry: directory.Entry) -> dict[str, Any]:
    return {"Insz": entry.insz, "Purpose": entry.purpose, "Start": entry.start, "End": entry.end}


def register_person(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    insz = check_insz(request["Insz"])
    start = request["Start"]
    end = request.get("End")
    if end is not None and end < start:
        raise ContractViolation(f"The period ends ({end}) before it starts ({start}); correct End or Start.")
    session = ctx.session
    entry, created = directory.register(session, ctx.organisation.id, insz, request["Purpose"], start, end)
    return HandlerResult({"Entry": _entry(entry), "Created": created},
                         detail=f"{'registered' if created else 'already registered'}: {request['Purpose']}")


def unregister_person(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    session = ctx.session
    closed = directory.unregister(session, ctx.organisation.id, request["Insz"], request["Purpose"],
                                  request["End"])
    return HandlerResult({"PeriodsClosed": closed}, detail=f"{closed} period(s) closed")


def list_persons(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    session = ctx.session
    found = directory.entries(session, ctx.organisation.id, request.get("Insz"), request.get("Purpose"))
    return HandlerResult({"Entry": [_entry(e) for e in found]}, detail=f"{len(found)} entr(y/ies)")


def _operation(name: str, handler: Any, person: bool) -> Operation:
    return operation(NS, name, handler, person_field="Insz" if person else None)


SERVICE = ServiceDefinition(
    name="ReferenceDirectory",
    version="v1",
    title="Reference directory (persons repertory)",
    description="Declare, end and list the persons your organisation has a file on, per purpose and period.",
    wsdl="ReferenceDirectory-v1.wsdl",
    xsd="ReferenceDirectory/v1/ReferenceDirectory.xsd",
    operations=(
        _operation("RegisterPerson", register_person, person=True),
        _operation("UnregisterPerson", unregister_person, person=True),
        _operation("ListPersons", list_persons, person=False),
    ),
)
