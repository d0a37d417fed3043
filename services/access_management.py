"""AccessManagement v1: an organisation's local administrator and co-administrators register, deactivate and
reactivate its officials, issue (or reset) their portal credentials, and grant them services per purpose (approve,
end, revoke, list) over SOAP. The rules are those of repository/officials.py, credentials.py and grants.py (the
same the portal and the CLI call); a refusal is a
Client.Access.* fault. The caller is the acting administrator (kp:Caller/Official), with a grant for AccessManagement
and purpose ACCESS_MANAGEMENT; the effects commit with the request's audit record, whose detail says what was done
to whom and why."""

from __future__ import annotations

from typing import Any

from integrator.service import CallContext, HandlerResult, Operation, ServiceDefinition, access_names, operation
from repository import credentials, grants, officials
from repository.actors import Actor
from repository.portal_models import TokenKind

NS = "urn:kruispunt:AccessManagement:v1"


def _actor(ctx: CallContext) -> Actor:
    return Actor.official(ctx.organisation.id, ctx.official)


def _code_backed(ctx: CallContext) -> frozenset[str]:
    return access_names(ctx.services)


def _official(view: officials.OfficialView) -> dict[str, Any]:
    return {"Insz": view.insz, "Name": view.name, "Email": view.email, "Department": view.department,
            "Active": view.active, "RegisteredBy": view.registered_by, "RegisteredAt": view.registered_at,
            "DeactivatedBy": view.deactivated_by, "DeactivatedAt": view.deactivated_at,
            "DeactivationReason": view.deactivation_reason}


def _grant(view: grants.GrantView) -> dict[str, Any]:
    return {"GrantId": view.id, "Insz": view.official, "Service": view.service, "Purpose": view.purpose,
            "Start": view.valid_from, "End": view.valid_until, "Status": str(view.status), "Reason": view.reason,
            "GrantedBy": view.granted_by, "GrantedAt": view.created_at, "ApprovedBy": view.approved_by,
            "ApprovedAt": view.approved_at, "EndedBy": view.ended_by, "EndReason": view.end_reason,
            "RevokedBy": view.revoked_by, "RevokedAt": view.revoked_at, "RevokeReason": view.revoke_reason}


def _about(view: grants.GrantView) -> str:
    """A grant as the audit's detail names it: its number, the official concerned, the service and purpose."""
    return f"grant {view.id} of official {view.official} ({view.service} for {view.purpose})"


def register_official(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    made, created = officials.register_official(ctx.session, _actor(ctx), ctx.organisation.id, request["Insz"],
                                                request["Name"], request.get("Email"), request.get("Department"))
    return HandlerResult({"Official": _official(made), "Created": created},
                         detail=f"{'registered' if created else 'updated'} official {made.insz} ({made.name})")


def deactivate_official(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    done = officials.deactivate_official(ctx.session, _actor(ctx), ctx.organisation.id, request["Insz"],
                                         request["Reason"])
    return HandlerResult({"Official": _official(done)},
                         detail=f"deactivated official {done.insz}; reason: {request['Reason'].strip()}")


def reactivate_official(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    done = officials.reactivate_official(ctx.session, _actor(ctx), ctx.organisation.id, request["Insz"],
                                         request["Reason"])
    return HandlerResult({"Official": _official(done)},
                         detail=f"reactivated official {done.insz}; reason: {request['Reason'].strip()}")


def list_officials(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    found = officials.list_officials(ctx.session, _actor(ctx), ctx.organisation.id)
    return HandlerResult({"Official": [_official(o) for o in found]}, detail=f"{len(found)} official(s)")


def issue_credentials(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """The secrets go to the caller only: the audit's detail names the token, never a secret."""
    issued, ended = credentials.issue_by_administrator(ctx.session, _actor(ctx), ctx.organisation.id,
                                                       request["Insz"], TokenKind(request["Token"].lower()),
                                                       request["Reason"])
    return HandlerResult({
        "Insz": request["Insz"], "UserNumber": issued.user_number, "Password": issued.password,
        "Token": issued.kind.value.upper(), "Card": {"Code": list(issued.card)} if issued.card else None,
        "TotpSecret": issued.totp_secret, "TotpUri": issued.totp_uri, "SessionsEnded": ended,
    }, detail=credentials.issued_detail(issued, request["Insz"], ended, request["Reason"]))


def grant_access(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    made, created = grants.grant(ctx.session, _actor(ctx), ctx.organisation.id, request["Insz"], request["Service"],
                                 request["Purpose"], request["Start"], request.get("End"), request["Reason"],
                                 _code_backed(ctx))
    until = f" to {made.valid_until}" if made.valid_until is not None else ""
    return HandlerResult({"GrantId": made.id, "Status": str(made.status), "Created": created},
                         detail=f"{'granted' if created else 'already granted'} {made.service} for {made.purpose} "
                                f"from {made.valid_from}{until} to official {made.official} (grant {made.id}, "
                                f"{made.status}); reason: {request['Reason'].strip()}")


def approve_grant(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    done = grants.approve_grant(ctx.session, _actor(ctx), ctx.organisation.id, request["GrantId"])
    return HandlerResult({"Grant": _grant(done)},
                         detail=f"approved {_about(done)}, granted by {done.granted_by}; reason of the grant: "
                                f"{done.reason}")


def end_grant(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    done = grants.end_grant(ctx.session, _actor(ctx), ctx.organisation.id, request["GrantId"], request["End"],
                            request["Reason"])
    return HandlerResult({"Grant": _grant(done)},
                         detail=f"{_about(done)} ends on {done.valid_until}; reason: {request['Reason'].strip()}")


def revoke_grant(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    done = grants.revoke_grant(ctx.session, _actor(ctx), ctx.organisation.id, request["GrantId"],
                               request["Reason"])
    return HandlerResult({"Grant": _grant(done)},
                         detail=f"revoked {_about(done)}; reason: {request['Reason'].strip()}")


def list_grants(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    found = grants.list_grants(ctx.session, _actor(ctx), ctx.organisation.id, request.get("Insz"))
    return HandlerResult({"Grant": [_grant(g) for g in found]}, detail=f"{len(found)} grant(s)")


def _operation(name: str, handler: Any, person: bool) -> Operation:
    """retry_safe stays False: a re-sent MessageId is a replay, refused before the act is done twice."""
    return operation(NS, name, handler, person_field="Insz" if person else None)


SERVICE = ServiceDefinition(
    name="AccessManagement",
    version="v1",
    title="Access management (officials and grants)",
    description="Your organisation's administrators register officials and grant them services per purpose; "
                "sensitive services need a second administrator's approval.",
    wsdl="AccessManagement-v1.wsdl",
    xsd="AccessManagement/v1/AccessManagement.xsd",
    operations=(
        _operation("RegisterOfficial", register_official, person=True),
        _operation("DeactivateOfficial", deactivate_official, person=True),
        _operation("ReactivateOfficial", reactivate_official, person=True),
        _operation("ListOfficials", list_officials, person=False),
        _operation("IssueCredentials", issue_credentials, person=True),
        _operation("GrantAccess", grant_access, person=True),
        _operation("ApproveGrant", approve_grant, person=False),
        _operation("EndGrant", end_grant, person=False),
        _operation("RevokeGrant", revoke_grant, person=False),
        _operation("ListGrants", list_grants, person=True),
    ),
)
