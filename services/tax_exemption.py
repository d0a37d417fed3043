"""Tax-exemption status lookup: the social statuses of a person on a date, from every authentic source."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

from integrator.config import PROJECT_ROOT
from integrator.contract import Contract
from integrator.dispatch import BackendContract, BackendOutcome
from integrator.service import CallContext, HandlerResult, Operation, ServiceDefinition

NS = "urn:kruispunt:TaxExemptionStatus:v1"
SOURCE_NS = "urn:kruispunt:backends:StatusSource:v1"
SOURCE_XSD = "backends/StatusSource/v1/StatusSource.xsd"


@cache
def status_source() -> BackendContract:
    """The contract every status source speaks (compiled once per worker)."""
    return BackendContract(
        contract=Contract(PROJECT_ROOT / "xsd" / SOURCE_XSD),
        request=f"{{{SOURCE_NS}}}get_statuses",
        response=f"{{{SOURCE_NS}}}get_statusesResponse",
    )


def get_statuses(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """Ask every registered source in parallel; never answer silently partial."""
    insz, on = request["Insz"], request["ReferenceDate"]
    outcomes = ctx.backends.call_all(status_source(), {"insz": insz, "reference_date": on})
    statuses: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []
    for outcome in outcomes:
        sources.append(_report(outcome))
        if outcome.answer is not None:
            statuses.extend(_statuses(outcome, on))
    statuses.sort(key=lambda s: (s["Code"], s["Start"]))
    missing = [o for o in outcomes if o.fault is not None]
    body = {
        "Insz": insz,
        "ReferenceDate": on,
        "Complete": not missing,
        "Status": statuses,
        "Sources": {"Source": sources},
    }
    if missing:
        detail = "; ".join(f"{o.backend}: {o.fault.code}" for o in missing if o.fault)
        return HandlerResult(body, outcome="PARTIAL", detail=f"sources not consulted: {detail}")
    return HandlerResult(body)


def _report(outcome: BackendOutcome) -> dict[str, Any]:
    if outcome.fault is None:
        return {"Name": outcome.backend, "Outcome": "CONSULTED"}
    reason = f"{outcome.fault.code}: {outcome.fault.reason}"
    return {"Name": outcome.backend, "Outcome": "UNAVAILABLE", "Reason": reason}


def _statuses(outcome: BackendOutcome, on: date) -> list[dict[str, Any]]:
    result = (outcome.answer or {}).get("get_statusesResult") or {}
    periods = result.get("StatusPeriod") or []
    found = []
    for period in periods if isinstance(periods, list) else [periods]:
        if not period:
            continue
        start = period["start"]
        end = period.get("end")
        if start <= on and (end is None or on <= end):
            found.append({"Code": period["code"], "Source": outcome.backend, "Start": start, "End": end})
    return found


SERVICE = ServiceDefinition(
    name="TaxExemptionStatus",
    version="v1",
    title="Social statuses for municipal tax exemptions",
    description=(
        "Which social statuses relevant to municipal tax exemptions and reductions does a person have on a "
        "date: increased reimbursement, social integration income, income guarantee for the elderly, "
        "disability allowances; each with its source and period."
    ),
    wsdl="TaxExemptionStatus-v1.wsdl",
    xsd="TaxExemptionStatus/v1/TaxExemptionStatus.xsd",
    operations=(
        Operation(
            name="GetTaxExemptionStatuses",
            request=f"{{{NS}}}GetTaxExemptionStatusesRequest",
            response=f"{{{NS}}}GetTaxExemptionStatusesResponse",
            handler=get_statuses,
            person_field="Insz",
            person_in_files=True,
            soap_action=f"{NS}:GetTaxExemptionStatuses",
        ),
    ),
)
