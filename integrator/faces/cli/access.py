"""kruispunt official, grant, access, admin: the service desk's access management, a thin layer over
repository/officials.py, grants.py, access_rights.py and administrators.py. Every act is one transaction with a
ticket and an audit record (integrator/acts.py); the ticket is printed."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from integrator import commands
from integrator.acts import audit_act
from integrator.config import Settings
from integrator.faces.cli.common import iso_date, published_names, sessions
from repository import access_rights, administrators, credentials, grants, officials
from repository.actors import Actor
from repository.models import AdministratorRole, GrantStatus
from repository.portal_models import TokenKind


def _act(session: Session, args: argparse.Namespace, actor: Actor, operation: str, detail: str,
         person: str | None = None, service: str | None = None) -> str:
    ticket = audit_act(session, actor, operation, detail, command=args.command_line,
                       organisation=getattr(args, "org", None), person=person, service=service)
    session.commit()
    return ticket


# --- officials ------------------------------------------------------------------------------------------
def cmd_official_add(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        made, created = officials.register_official(session, actor, commands.organisation_id(session, args.org),
                                                    args.insz, args.name, args.email, args.department)
        ticket = _act(session, args, actor, "RegisterOfficial",
                      f"{'registered' if created else 'updated'} official {made.insz} ({made.name})", made.insz)
    print(f"official {made.insz} {'registered' if created else 'updated'}; ticket {ticket}")
    return 0


def cmd_official_end(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        done = officials.deactivate_official(session, actor, commands.organisation_id(session, args.org), args.insz,
                                             args.reason)
        ticket = _act(session, args, actor, "DeactivateOfficial", f"deactivated official {done.insz}; reason: "
                      f"{args.reason}", done.insz)
    print(f"official {done.insz} deactivated; ticket {ticket}")
    return 0


def cmd_official_reactivate(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        done = officials.reactivate_official(session, actor, commands.organisation_id(session, args.org), args.insz,
                                             args.reason)
        ticket = _act(session, args, actor, "ReactivateOfficial", f"reactivated official {done.insz}; reason: "
                      f"{args.reason}", done.insz)
    print(f"official {done.insz} reactivated; ticket {ticket}")
    return 0


def cmd_official_credentials(args: argparse.Namespace, settings: Settings) -> int:
    """Issue or reset the official's fallback credentials for the portal; the secrets are printed this once."""
    actor = commands.operator()
    with sessions(settings)() as session:
        issued, ended = credentials.issue_by_administrator(session, actor, commands.organisation_id(session, args.org),
                                                           args.insz, TokenKind(args.token), args.reason)
        ticket = _act(session, args, actor, "IssueCredentials",
                      credentials.issued_detail(issued, args.insz, ended, args.reason), args.insz)
    print(f"credentials issued to official {args.insz}; {ended} portal session(s) ended; ticket {ticket}")
    print(f"user number: {issued.user_number}\npassword:    {issued.password}")
    if issued.totp_secret is not None:
        print(f"TOTP secret: {issued.totp_secret}\nTOTP URI:    {issued.totp_uri}")
    for row in range(0, len(issued.card), 6):
        print("card:        " + "  ".join(f"{p:>2}. {issued.code(p)}" for p in range(row + 1, row + 7)))
    return 0


def cmd_official_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        found = officials.list_officials(session, commands.operator(), commands.organisation_id(session, args.org))
    for o in found:
        state = "active" if o.active else f"deactivated {o.deactivated_at:%Y-%m-%d} ({o.deactivation_reason})"
        print(f"{o.insz}  {o.name:<32} {o.department or '-':<20} {o.email or '-':<30} {state}")
    return 0


# --- grants ---------------------------------------------------------------------------------------------
def cmd_grant_add(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        made, created = grants.grant(session, actor, commands.organisation_id(session, args.org), args.official,
                                     args.service, args.purpose, args.valid_from or datetime.now(UTC).date(),
                                     args.valid_until, args.reason, published_names())
        ticket = _act(session, args, actor, "GrantAccess",
                      f"{'granted' if created else 'already granted'} {made.service} for {made.purpose} from "
                      f"{made.valid_from}{_until(made.valid_until)} (grant {made.id}, {made.status}); reason: "
                      f"{args.reason}", made.official, made.service)
    print(f"grant {made.id} {made.status}: {made.official} {made.service} {made.purpose}; ticket {ticket}")
    return 0


def cmd_grant_end(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        done = grants.end_grant(session, actor, commands.organisation_id(session, args.org), args.id, args.on,
                                args.reason)
        ticket = _act(session, args, actor, "EndGrant", f"grant {done.id} ({done.service} for {done.purpose}) ends "
                      f"on {done.valid_until}; reason: {args.reason}", done.official, done.service)
    print(f"grant {done.id} ends on {done.valid_until}; ticket {ticket}")
    return 0


def cmd_grant_revoke(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        done = grants.revoke_grant(session, actor, commands.organisation_id(session, args.org), args.id, args.reason)
        ticket = _act(session, args, actor, "RevokeGrant", f"revoked grant {done.id} ({done.service} for "
                      f"{done.purpose}); reason: {args.reason}", done.official, done.service)
    print(f"grant {done.id} revoked; ticket {ticket}")
    return 0


def cmd_grant_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        found = grants.list_grants(session, commands.operator(), commands.organisation_id(session, args.org),
                                   args.official, GrantStatus(args.status) if args.status else None)
    for g in found:
        print(f"{g.id:>6}  {g.official}  {g.service:<24} {g.purpose:<26} {g.valid_from}..{g.valid_until or '':<10}  "
              f"{g.status:<16} by {g.granted_by or '-'}: {g.reason or '-'}")
    return 0


# --- organisations' access rights, sensitive services -----------------------------------------------------------
def cmd_access_add(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        _, created = access_rights.add_access_right(session, actor, commands.organisation_id(session, args.org),
                                                    args.service, published_names())
        ticket = _act(session, args, actor, "AddAccessRight",
                      f"{'gave' if created else 'already had'} access right to {args.service}", service=args.service)
    print(f"{args.org} {'may now use' if created else 'already may use'} {args.service}; ticket {ticket}")
    return 0


def cmd_access_revoke(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        removed = access_rights.revoke_access_right(session, actor, commands.organisation_id(session, args.org),
                                                    args.service)
        if not removed:
            raise LookupError(f"organisation {args.org} has no access right to {args.service}")
        ticket = _act(session, args, actor, "RevokeAccessRight", f"withdrew the access right to {args.service}; "
                      f"reason: {args.reason}", service=args.service)
    print(f"{args.org} may no longer use {args.service}; ticket {ticket}")
    return 0


def cmd_access_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        rights = access_rights.access_rights(session, commands.operator(),
                                             commands.organisation_id(session, args.org))
        sensitive = {row.service for row in access_rights.sensitive_services(session)}
    for service in rights:
        print(f"{service}{'  (sensitive: grants need a second administrator)' if service in sensitive else ''}")
    return 0


def cmd_access_sensitive(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        changed = access_rights.mark_sensitive(session, actor, args.service, args.reason, published_names(),
                                               sensitive=not args.off)
        word = "no longer sensitive" if args.off else "sensitive"
        ticket = _act(session, args, actor, "MarkSensitive", f"{args.service} {word}"
                      f"{'' if changed else ' (already)'}; reason: {args.reason}", service=args.service)
    print(f"{args.service} {word}; ticket {ticket}")
    return 0


# --- administrators -------------------------------------------------------------------------------------
def cmd_admin_designate(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        made = administrators.designate(session, actor, commands.organisation_id(session, args.org), args.official,
                                        AdministratorRole(args.role))
        ticket = _act(session, args, actor, "DesignateAdministrator",
                      f"designated {made.official} as {made.role} administrator", made.official)
    print(f"{made.official} is {args.org}'s {made.role} administrator; ticket {ticket}")
    return 0


def cmd_admin_withdraw(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        done = administrators.withdraw(session, actor, commands.organisation_id(session, args.org), args.official)
        ticket = _act(session, args, actor, "WithdrawAdministrator", f"withdrew {done.official} as {done.role} "
                      f"administrator; reason: {args.reason}", done.official)
    print(f"{done.official} no longer administers {args.org}; ticket {ticket}")
    return 0


def cmd_admin_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        found = administrators.list_administrators(session, commands.operator(),
                                                   commands.organisation_id(session, args.org))
    for a in found:
        state = "active" if a.active else f"withdrawn {a.withdrawn_at:%Y-%m-%d}"
        print(f"{a.official}  {a.name:<32} {a.role:<6} {state:<20} designated {a.designated_at:%Y-%m-%d} by "
              f"{a.designated_by}")
    return 0


def _until(end: date | None) -> str:
    return f" to {end}" if end is not None else ""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def area(name: str, help: str) -> argparse._SubParsersAction:  # type: ignore[type-arg]
        return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)

    def command(group: argparse._SubParsersAction, name: str, help: str, func: object,  # type: ignore[type-arg]
                *, org: bool = True, reason: bool = False) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(name, help=help)
        if org:
            parser.add_argument("--org", required=True, help="enterprise number of the organisation")
        if reason:
            parser.add_argument("--reason", required=True, help="why: recorded with the act")
        parser.set_defaults(func=func)
        return parser

    official = area("official", "officials of an organisation")
    add = command(official, "add", "register an official (or update their details)", cmd_official_add)
    add.add_argument("--insz", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--email")
    add.add_argument("--department")
    for name, help, func in (("end", "deactivate an official: refused on every service", cmd_official_end),
                             ("reactivate", "reactivate a deactivated official", cmd_official_reactivate)):
        command(official, name, help, func, reason=True).add_argument("--insz", required=True)
    command(official, "list", "the organisation's officials", cmd_official_list)
    issue = command(official, "credentials", "issue or reset an official's portal log-on (printed once)",
                    cmd_official_credentials, reason=True)
    issue.add_argument("--insz", required=True)
    issue.add_argument("--token", required=True, choices=[k.value for k in TokenKind],
                       help="card: 24 numbered codes; totp: an authenticator app")

    grant = area("grant", "officials' grants")
    add = command(grant, "add", "grant an official a service for a purpose", cmd_grant_add, reason=True)
    add.add_argument("--official", required=True, help="INSZ of the official")
    add.add_argument("--service", required=True)
    add.add_argument("--purpose", required=True)
    add.add_argument("--valid-from", type=iso_date, help="first day (default today)")
    add.add_argument("--valid-until", type=iso_date, help="last day (default none)")
    end = command(grant, "end", "end a grant on a date (in effect up to and including it)", cmd_grant_end,
                  reason=True)
    end.add_argument("--id", type=int, required=True, help="the grant's number (kruispunt grant list)")
    end.add_argument("--on", type=iso_date, default=datetime.now(UTC).date(), help="last day (default today)")
    revoke = command(grant, "revoke", "revoke a grant at once", cmd_grant_revoke, reason=True)
    revoke.add_argument("--id", type=int, required=True, help="the grant's number (kruispunt grant list)")
    listing = command(grant, "list", "the organisation's grants", cmd_grant_list)
    listing.add_argument("--official", help="INSZ: one official's grants only")
    listing.add_argument("--status", choices=[s.value for s in GrantStatus])

    access = area("access", "organisations' access rights and sensitive services")
    command(access, "add", "let an organisation use a service (grants must fall within)",
            cmd_access_add).add_argument("--service", required=True, help="service name, e.g. TaxExemptionStatus")
    command(access, "revoke", "withdraw an organisation's access right (its grants stop counting)",
            cmd_access_revoke, reason=True).add_argument("--service", required=True)
    command(access, "list", "the services an organisation may use", cmd_access_list)
    sensitive = command(access, "sensitive", "mark a service sensitive: its grants need a second administrator",
                        cmd_access_sensitive, org=False, reason=True)
    sensitive.add_argument("--service", required=True)
    sensitive.add_argument("--off", action="store_true", help="take the mark away")

    admin = area("admin", "organisations' local administrators and co-administrators")
    designate = command(admin, "designate", "designate an official local administrator or co-administrator",
                        cmd_admin_designate)
    designate.add_argument("--official", required=True, help="INSZ of an active official of the organisation")
    designate.add_argument("--role", required=True, choices=[r.value for r in AdministratorRole])
    command(admin, "withdraw", "withdraw an administrator (they stay an official)", cmd_admin_withdraw,
            reason=True).add_argument("--official", required=True)
    command(admin, "list", "the organisation's administrators", cmd_admin_list)
