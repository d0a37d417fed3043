"""kruispunt proposals: what operators follow up on National Register update proposals."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from integrator.config import Settings
from integrator.faces.cli.common import sessions
from repository import proposals
from repository.base import aware


def cmd_overdue(args: argparse.Namespace, settings: Settings) -> int:
    """Every proposal undecided for longer than the decision period (or --days), oldest first."""
    days = settings.proposal_decision_days if args.days is None else args.days
    if days < 0:
        raise ValueError("--days must be 0 or more")
    now = datetime.now(UTC)
    with sessions(settings)() as session:
        found = proposals.overdue(session, now - timedelta(days=days))
        names = proposals.organisations(session, {p.proposer_id for p in found} | {p.competent_id for p in found})
        print(f"{len(found)} proposal(s) undecided for more than {days:g} day(s)")
        for proposal in found:
            submitted = aware(proposal.submitted_at)
            assert submitted is not None
            waiting = (now - submitted).days
            proposer, competent = names[proposal.proposer_id], names[proposal.competent_id]
            print(f"{proposal.reference}  {proposal.state:<12} {waiting:>4} days  {proposal.field:<12} "
                  f"{proposal.insz}  from {proposer.enterprise_number} ({proposer.name})  "
                  f"to {competent.enterprise_number} ({competent.name})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    area = sub.add_parser("proposals", help="National Register update proposals").add_subparsers(
        dest="proposals_command", required=True)
    overdue = area.add_parser("overdue", help="list proposals undecided for too long")
    overdue.add_argument("--days", type=float, help="undecided for more than this many days (default: "
                                                    "KRUISPUNT_PROPOSAL_DECISION_DAYS, 30)")
    overdue.set_defaults(func=cmd_overdue)
