"""kruispunt maintenance: prune expired replay keys, make and list the audit table's monthly partitions, retire
months past retention (what every worker's maintenance thread does, on demand)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from integrator import partitions, replay
from integrator.config import Settings
from integrator.faces.cli.common import sessions
from integrator.maintenance import MaintenancePolicy


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch < 1:
        raise ValueError("--batch must be 1 or more")
    done = replay.prune(sessions(settings), batch=args.batch, max_batches=args.max_batches)
    print(f"pruned {done.deleted} expired replay key(s) in {done.batches} batch(es) of at most {args.batch}, "
          f"{done.seconds:.2f} s (longest batch {done.longest_batch_seconds * 1e3:.0f} ms)"
          + ("; more remain (--max-batches reached)" if done.more else ""))
    return 0


def cmd_partitions(args: argparse.Namespace, settings: Settings) -> int:
    ahead = MaintenancePolicy.from_env().partitions_ahead if args.ahead is None else args.ahead
    if ahead < 0:
        raise ValueError("--ahead must be 0 or more")
    with sessions(settings)() as session:
        if not partitions.is_partitioned(session):
            print("audit_records is a plain table on this database (partitions are a PostgreSQL feature)")
            return 0
        for name in partitions.ensure_ahead(session, datetime.now(UTC), ahead):
            print(f"made {name}")
        for p in partitions.partitions(session):
            span = "DEFAULT" if p.start is None or p.end is None else f"{p.start:%Y-%m-%d} .. {p.end:%Y-%m-%d}"
            print(f"{p.name:<28} {span:<26} ~{p.rows:>12,} rows {p.bytes / 2**20:>10.1f} MiB")
        for name in partitions.detached(session):
            print(f"{name:<28} detached (a table of its own: archive it, then DROP TABLE {name})")
    return 0


def cmd_retire(args: argparse.Namespace, settings: Settings) -> int:
    if args.keep_months < 1:
        raise ValueError("--keep-months must be 1 or more")
    with sessions(settings)() as session:
        if not partitions.is_partitioned(session):
            print("audit_records is a plain table on this database: nothing to retire")
            return 0
        retired = partitions.retire(session, datetime.now(UTC), args.keep_months, drop=args.drop)
    for name in retired:
        print(f"{'dropped' if args.drop else 'detached'} {name}")
    print(f"{len(retired)} month(s) retired; kept the current month and the {args.keep_months} before it")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    area = sub.add_parser("maintenance", help="replay pruning and audit partitions").add_subparsers(
        dest="maintenance_command", required=True)
    prune = area.add_parser("prune", help="delete expired replay keys in bounded batches")
    prune.add_argument("--batch", type=int, default=replay.PRUNE_BATCH, help="keys per delete statement")
    prune.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    prune.set_defaults(func=cmd_prune)
    listing = area.add_parser("partitions", help="make the coming months' audit partitions, list them all")
    listing.add_argument("--ahead", type=int, default=None,
                         help="months after the current one (default KRUISPUNT_AUDIT_PARTITIONS_AHEAD, 3)")
    listing.set_defaults(func=cmd_partitions)
    retire = area.add_parser("retire", help="detach (or drop) audit months past retention")
    retire.add_argument("--keep-months", type=int, required=True,
                        help="months kept attached before the current one")
    retire.add_argument("--drop", action="store_true", help="drop them instead of detaching them")
    retire.set_defaults(func=cmd_retire)
