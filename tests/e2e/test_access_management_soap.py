"""AccessManagement v1 end to end, on SQLite and PostgreSQL: a local administrator (or co-administrator) of
Kruisdorp, calling as the kp:Caller official with a grant for AccessManagement/ACCESS_MANAGEMENT, registers officials
and grants them services; the grant opens the official's lookup and revoking it closes it again; a sensitive grant
waits for a second administrator; self-grants, grants outside the organisation's rights and non-administrators are
refused, each with its Client.Access.* fault, HTTP status and audit record. Every official and person here is a
fresh INSZ, so no test depends on another."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pyotp
import requests
from kruispunt_client.xml import build
from sqlalchemy import select

from integrator import commands
from repository.credentials import Challenge, authenticate, challenge_for
from repository.models import Official
from repository.portal_models import LogOnMethod
from repository.portal_sessions import open_session
from repository.queries import has_access_right
from services.demo_access import SENSITIVE
from services.demo_creabis import PURPOSE_IDENTIFICATION
from services.demo_organisations import KRUISDORP, PURPOSE_TAX
from tests.e2e.access_calls import (
    AM_NS,
    AM_PATH,
    AM_SERVICE,
    CO,
    LOCAL,
    access_call,
    access_refused,
    administrator,
    approve_grant,
    co_administrator,
    grant_access,
    grant_request,
    list_grants,
    list_officials,
    lookup_grant_missing,
    official,
    plain_official_with_access_management,
    register_official,
    revoke_grant,
)
from tests.e2e.directory_calls import kruisdorp, lookup_answered, new_person, register_person, today
from tests.e2e.repository_calls import signed_request
from tests.support import audit_record, fault_of

TAX = "TaxExemptionStatus"


def _official_with_tax_grant(stack) -> tuple[str, int, str]:  # type: ignore[no-untyped-def]
    """A fresh official registered and granted the tax lookup by the local administrator, and a fresh person in
    Kruisdorp's files for the tax purpose: (official, grant id, person)."""
    insz, person = new_person(), new_person()
    register_official(stack, administrator(stack), insz, "Tine Peeters", Department="tax office")
    granted = grant_access(stack, administrator(stack), insz, TAX, PURPOSE_TAX, today())
    register_person(stack, kruisdorp(stack), person, today())
    return insz, granted.body["GrantId"], person


# --- (1) register, grant, and the official's lookup is answered -------------------------------------------------------
def test_administrator_registers_an_official_and_grants_the_lookup(stack) -> None:  # type: ignore[no-untyped-def]
    insz, person = new_person(), new_person()
    made = register_official(stack, administrator(stack), insz, "Tine Peeters", Email="tine.peeters@kruisdorp.be",
                             Department="tax office")
    assert made.body["Created"] is True
    assert {k: made.body["Official"][k] for k in ("Insz", "Name", "Email", "Department", "Active", "RegisteredBy")} \
        == {"Insz": insz, "Name": "Tine Peeters", "Email": "tine.peeters@kruisdorp.be", "Department": "tax office",
            "Active": True, "RegisteredBy": LOCAL.insz}
    assert made.record.detail == f"registered official {insz} (Tine Peeters)"
    again = register_official(stack, administrator(stack), insz, "Tine Peeters")
    assert again.body["Created"] is False and again.body["Official"]["Email"] == "tine.peeters@kruisdorp.be"
    assert insz in {o["Insz"] for o in list_officials(stack, administrator(stack))}

    register_person(stack, kruisdorp(stack), person, today())
    lookup_grant_missing(stack, official(stack, insz), person)  # registered, not granted yet
    granted = grant_access(stack, administrator(stack), insz, TAX, PURPOSE_TAX, today(), reason="tax office")
    assert {k: granted.body[k] for k in ("Status", "Created")} == {"Status": "active", "Created": True}
    grant_id = granted.body["GrantId"]
    assert granted.record.detail == (f"granted {TAX} for {PURPOSE_TAX} from {today()} to official {insz} "
                                     f"(grant {grant_id}, active); reason: tax office")
    again_granted = grant_access(stack, administrator(stack), insz, TAX, PURPOSE_TAX, today(), reason="tax office")
    assert again_granted.body == {"GrantId": grant_id, "Status": "active", "Created": False}
    [listed] = list_grants(stack, administrator(stack), insz)
    assert {k: listed[k] for k in ("GrantId", "Insz", "Service", "Purpose", "Start", "Status", "Reason", "GrantedBy")} \
        == {"GrantId": grant_id, "Insz": insz, "Service": TAX, "Purpose": PURPOSE_TAX, "Start": today().isoformat(),
            "Status": "active", "Reason": "tax office", "GrantedBy": LOCAL.insz}

    lookup_answered(stack, official(stack, insz), person)


# --- (2) a sensitive grant needs a second administrator ---------------------------------------------------------------
def test_sensitive_grant_waits_for_a_second_administrator(stack) -> None:  # type: ignore[no-untyped-def]
    insz = new_person()
    register_official(stack, administrator(stack), insz, "Bart Janssens", Department="population")
    granted = grant_access(stack, administrator(stack), insz, SENSITIVE, PURPOSE_IDENTIFICATION, today(),
                           reason="keeps the BIS register")
    assert {k: granted.body[k] for k in ("Status", "Created")} == {"Status": "pending-approval", "Created": True}
    grant_id = granted.body["GrantId"]

    seen = access_refused(stack, administrator(stack), "ApproveGrant", {"GrantId": grant_id},
                          "Client.Access.SameApprover", 403, person=None)
    assert str(grant_id) in seen.reason
    assert list_grants(stack, administrator(stack), insz)[0]["Status"] == "pending-approval"

    approved = approve_grant(stack, co_administrator(stack), grant_id)
    assert {k: approved.body["Grant"][k] for k in ("GrantId", "Insz", "Status", "GrantedBy", "ApprovedBy")} == {
        "GrantId": grant_id, "Insz": insz, "Status": "active", "GrantedBy": LOCAL.insz, "ApprovedBy": CO.insz}
    assert approved.record.detail == (f"approved grant {grant_id} of official {insz} ({SENSITIVE} for "
                                      f"{PURPOSE_IDENTIFICATION}), granted by {LOCAL.insz}; reason of the grant: "
                                      "keeps the BIS register")
    assert list_grants(stack, administrator(stack), insz)[0]["Status"] == "active"
    access_refused(stack, co_administrator(stack), "ApproveGrant", {"GrantId": grant_id},
                   "Client.Access.GrantState", 409, person=None)  # approved once only


# --- (3) nobody grants themselves -------------------------------------------------------------------------------------
def test_self_grant_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    seen = access_refused(stack, co_administrator(stack), "GrantAccess",
                          grant_request(CO.insz, TAX, PURPOSE_TAX, today()),
                          "Client.Access.SelfGrant", 403, person=CO.insz)
    assert CO.insz in seen.reason
    assert all(g["Service"] != TAX for g in list_grants(stack, administrator(stack), CO.insz))


# --- (4) a grant falls within the organisation's rights ---------------------------------------------------------------
def test_grant_outside_the_organisations_rights_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    outside = "Federation"  # published in code, but between integrators: no municipality has the right
    with stack.sessions() as session:  # the precondition: Kruisdorp has no access right to it
        assert not has_access_right(session, commands.organisation_id(session, KRUISDORP.enterprise_number), outside)
    insz = new_person()
    register_official(stack, administrator(stack), insz)
    seen = access_refused(stack, administrator(stack), "GrantAccess",
                          grant_request(insz, outside, PURPOSE_TAX, today()), "Client.Access.OutsideRights", 403,
                          person=insz)
    assert KRUISDORP.enterprise_number in seen.reason and outside in seen.reason
    assert list_grants(stack, administrator(stack), insz) == []


# --- (5) a revoked grant is refused on the next request ---------------------------------------------------------------
def test_revoke_grant_closes_the_officials_lookup_at_once(stack) -> None:  # type: ignore[no-untyped-def]
    insz, grant_id, person = _official_with_tax_grant(stack)
    lookup_answered(stack, official(stack, insz), person)
    revoked = revoke_grant(stack, co_administrator(stack), grant_id, "moved to another department")
    assert {k: revoked.body["Grant"][k] for k in ("GrantId", "Insz", "Status", "RevokedBy", "RevokeReason")} == {
        "GrantId": grant_id, "Insz": insz, "Status": "revoked", "RevokedBy": CO.insz,
        "RevokeReason": "moved to another department"}
    assert revoked.record.detail == (f"revoked grant {grant_id} of official {insz} ({TAX} for {PURPOSE_TAX}); "
                                     "reason: moved to another department")
    lookup_grant_missing(stack, official(stack, insz), person)
    access_refused(stack, administrator(stack), "RevokeGrant", {"GrantId": grant_id, "Reason": "again"},
                   "Client.Access.GrantState", 409, person=None)


# --- (6) only an administrator manages access, whatever their grants --------------------------------------------------
def test_official_with_the_grant_but_no_administrator_role_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    plain, target = plain_official_with_access_management(stack), new_person()
    caller = administrator(stack, plain)
    seen = access_refused(stack, caller, "RegisterOfficial", {"Insz": target, "Name": "Not Registered"},
                          "Client.Access.NotAdministrator", 403, person=target)
    assert plain in seen.reason and KRUISDORP.enterprise_number in seen.reason
    access_refused(stack, caller, "ListOfficials", {}, "Client.Access.NotAdministrator", 403, person=None)
    assert target not in {o["Insz"] for o in list_officials(stack, administrator(stack))}


def test_an_official_without_the_access_management_grant_is_refused_before_the_service(stack) -> None:  # type: ignore[no-untyped-def]
    """The gateway's own check: the caller needs the AccessManagement grant for ACCESS_MANAGEMENT."""
    insz, _grant_id, _person = _official_with_tax_grant(stack)
    access_refused(stack, administrator(stack, insz), "ListOfficials", {}, "Client.Caller.GrantMissing", 403,
                   person=None)


def test_a_replayed_message_id_is_refused_and_the_act_done_once(stack) -> None:  # type: ignore[no-untyped-def]
    """retry_safe is off: the same MessageId again is a replay, not a second act."""
    insz, caller = new_person(), administrator(stack)
    payload = build(f"{{{AM_NS}}}RegisterOfficialRequest", {"Insz": insz, "Name": "Once Only"})
    message_id = str(uuid.uuid4())
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{AM_NS}:RegisterOfficial"'}
    first = requests.post(f"{stack.base_url}{AM_PATH}", data=signed_request(caller, payload, message_id), timeout=60,
                          headers=headers)
    assert first.status_code == 200, first.text[:500]
    again = requests.post(f"{stack.base_url}{AM_PATH}", data=signed_request(caller, payload, message_id), timeout=60,
                          headers=headers)
    seen = fault_of(again)
    assert seen.code == "Client.Security.Replay", seen.reason
    record = audit_record(stack.sessions, seen.ticket)
    assert (record.outcome, record.service, record.operation) == ("FAULT", AM_SERVICE, "RegisterOfficial")
    assert [o["Insz"] for o in list_officials(stack, caller)].count(insz) == 1


# --- (6) fallback credentials: issued, reset, never one's own ------------------------------------------------------
def _official_id(stack, insz: str) -> int:  # type: ignore[no-untyped-def]
    with stack.sessions() as session:
        return session.execute(select(Official.id).where(Official.insz == insz)).scalar_one()


def _logs_on(stack, user_number: str, password: str, code_of: Callable[[Challenge], str]) -> bool:  # type: ignore[no-untyped-def]
    """Whether the fallback log-on's checks take these secrets (the portal's own function, on the stack's database)."""
    with stack.sessions() as session:
        challenge = challenge_for(session, user_number)
        found = authenticate(session, user_number, password, code_of(challenge), challenge, datetime.now(UTC))
        session.commit()
    return found is not None


def test_an_administrator_issues_credentials_and_a_reset_replaces_them(stack) -> None:  # type: ignore[no-untyped-def]
    """The answer carries the secrets once (24 card codes, or a TOTP secret and its otpauth URI); they log on;
    a reset keeps the user number, ends the official's portal sessions and the old password no longer works;
    the audit's detail names the token and the reason, never a secret."""
    insz = register_official(stack, administrator(stack), name="Lien Maes").body["Official"]["Insz"]
    card = access_call(stack, administrator(stack), "IssueCredentials",
                       {"Insz": insz, "Token": "CARD", "Reason": "new in the population office"}, person=insz)
    codes = card.body["Card"]["Code"]
    assert card.body["Token"] == "CARD" and len(codes) == 24 and card.body["SessionsEnded"] == 0
    user_number, password = card.body["UserNumber"], card.body["Password"]
    assert _logs_on(stack, user_number, password, lambda c: codes[(c.position or 0) - 1])
    assert "new in the population office" in card.record.detail
    assert password not in card.record.detail and not any(code in card.record.detail for code in codes)

    with stack.sessions() as session:  # the official is logged on somewhere
        open_session(session, datetime.now(UTC), _official_id(stack, insz), LogOnMethod.CARD)
        session.commit()
    reset = access_call(stack, co_administrator(stack), "IssueCredentials",
                        {"Insz": insz, "Token": "TOTP", "Reason": "lost the card"}, person=insz)
    assert (reset.body["UserNumber"], reset.body["Token"], reset.body["SessionsEnded"]) == (user_number, "TOTP", 1)
    assert "Card" not in reset.body or reset.body["Card"] is None
    secret = reset.body["TotpSecret"]
    assert reset.body["TotpUri"].startswith("otpauth://totp/") and secret not in reset.record.detail
    assert not _logs_on(stack, user_number, password, lambda c: codes[(c.position or 1) - 1])
    assert _logs_on(stack, user_number, reset.body["Password"], lambda c: pyotp.TOTP(secret).now())


def test_credentials_are_never_issued_to_oneself_nor_to_a_deactivated_official(stack) -> None:  # type: ignore[no-untyped-def]
    access_refused(stack, administrator(stack), "IssueCredentials",
                   {"Insz": LOCAL.insz, "Token": "CARD", "Reason": "mine"}, "Client.Access.SelfGrant", 403,
                   person=LOCAL.insz)
    insz = register_official(stack, administrator(stack), name="Jan Vos").body["Official"]["Insz"]
    access_call(stack, administrator(stack), "DeactivateOfficial", {"Insz": insz, "Reason": "left"}, person=insz)
    access_refused(stack, administrator(stack), "IssueCredentials",
                   {"Insz": insz, "Token": "TOTP", "Reason": "a mistake"}, "Client.Access.OfficialInactive", 409,
                   person=insz)
    stranger = new_person()
    access_refused(stack, administrator(stack), "IssueCredentials",
                   {"Insz": stranger, "Token": "CARD", "Reason": "not ours"}, "Client.Access.OfficialUnknown", 404,
                   person=stranger)
