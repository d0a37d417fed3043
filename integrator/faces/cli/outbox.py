"""kruispunt outbox: what is owed to backends (applications, National Register updates), and delivering it now."""

from __future__ import annotations

import argparse
from datetime import timedelta

from sqlalchemy import select

from integrator.circuit import CircuitBreaker
from integrator.config import Settings
from integrator.dispatch import Dispatcher
from integrator.faces.cli.common import sessions
from integrator.outbox import PENDING, Forwarder, OutboxEntry
from integrator.pki import Identity
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        query = select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(args.limit)
        if args.state:
            query = query.where(OutboxEntry.state == args.state)
        rows = session.execute(query).scalars().all()
    for e in rows:
        print(f"{e.id:>6} {e.state:<9} {e.kind:<12} {e.service}:{e.backend:<24} attempts {e.attempts:<3} "
              f"ticket {e.ticket} {e.last_error or ''}")
    return 0


def cmd_deliver(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver what is due now, from this process (the workers' forwarders do the same on their own)."""
    made = sessions(settings)
    pki = settings.pki_dir
    key = SigningKey.from_identity(Identity("integrator", pki / "integrator.crt", pki / "integrator.key"))
    trust = TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path)
    dispatcher = Dispatcher(made, CircuitBreaker(made, settings.circuit), key, trust, settings.security,
                            settings.limits, cache_seconds=0, backend_ca_file=settings.backend_ca_file)
    forwarder = Forwarder(made, dispatcher, timedelta(seconds=settings.outbox_lease_seconds), 0)
    done = forwarder.deliver_due(limit=args.limit)
    for delivery in done:
        print(f"{delivery.id:>6} {delivery.state:<9} {delivery.last_error or ''}")
    still = sum(1 for d in done if d.state == PENDING)
    print(f"{len(done) - still} delivered or refused, {still} still pending")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    outbox = sub.add_parser("outbox", help="deliveries owed to backends").add_subparsers(dest="outbox_command",
                                                                                       required=True)
    listing = outbox.add_parser("list", help="the newest entries, with state, attempts and last error")
    listing.add_argument("--state", choices=["PENDING", "DELIVERED", "REFUSED"])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_list)
    deliver = outbox.add_parser("deliver", help="deliver what is due now")
    deliver.add_argument("--limit", type=int, default=100)
    deliver.set_defaults(func=cmd_deliver)
