"""kruispunt peer: federation peers, their sync state, and pulling their changes with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from integrator import commands
from integrator.config import Settings
from integrator.faces.cli.common import sessions
from integrator.faults import KruispuntFault
from integrator.federation import PeerClient, sync_peer
from integrator.pki import Identity
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore
from repository.peers import find_peer, list_peers


def cmd_peer_add(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        commands.add_peer(session, args.name, args.url, Path(args.cert).read_bytes(), args.enterprise_number)
        session.commit()
    print(f"peer {args.name} registered at {args.url}")
    return 0


def cmd_peer_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        for peer in list_peers(session):
            last = f"{peer.last_sync_at:%Y-%m-%d %H:%M:%S}" if peer.last_sync_at else "never"
            print(f"{peer.name:<20} {peer.url:<32} cursor {peer.cursor:<8} versions {peer.synced_versions:<7} "
                  f"last sync {last}" + (f"  last error: {peer.last_error}" if peer.last_error else ""))
    return 0


def cmd_peer_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Pull a peer's changes since our cursor, with a progress bar."""
    factory = sessions(settings)
    with factory() as session:
        peers = [p for p in (find_peer(session, n) for n in args.names) if p is not None]
    if len(peers) != len(args.names):
        print("unknown peer; see kruispunt peer list", file=sys.stderr)
        return 1
    pki = settings.pki_dir
    client = PeerClient(SigningKey.from_identity(Identity("integrator", pki / "integrator.crt",
                                                          pki / "integrator.key")),
                        TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path), settings.peer_limits)
    status = 0
    for peer in peers:
        with tqdm(desc=f"sync {peer.name}", unit="change", disable=args.quiet, file=sys.stderr) as bar:
            def progress(cursor: int, head: int, bar=bar, start=peer.cursor) -> None:  # type: ignore[no-untyped-def]
                bar.total = max(head - start, 1)
                bar.n = cursor - start
                bar.refresh()
            try:
                result = sync_peer(client, factory, peer, settings.operator_insz, progress)
            except KruispuntFault as fault:
                print(f"sync {peer.name} failed: {fault.code}: {fault.reason} (resumes from cursor "
                      f"{_cursor(factory, peer.name)})", file=sys.stderr)
                status = 2
                continue
        print(f"{peer.name}: {result.applied} change(s) applied, cursor {result.cursor} of {result.head}"
              + (f"; {len(result.conflicts)} conflict(s): {'; '.join(result.conflicts[:5])}" if result.conflicts
                 else ""))
    return status


def _cursor(factory: sessionmaker[Session], name: str) -> int:
    with factory() as session:
        peer = find_peer(session, name)
        return peer.cursor if peer else 0



def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    peer = sub.add_parser("peer", help="federation peers").add_subparsers(dest="peer_command", required=True)
    peer_add = peer.add_parser("add", help="register another integrator as a peer")
    peer_add.add_argument("--name", required=True)
    peer_add.add_argument("--url", required=True, help="its base URL, e.g. https://integrator.example.org")
    peer_add.add_argument("--cert", required=True, help="the PEM certificate it signs with")
    peer_add.add_argument("--enterprise-number", required=True, help="its organisation's enterprise number")
    peer_add.set_defaults(func=cmd_peer_add)
    peer.add_parser("list", help="sync state per peer").set_defaults(func=cmd_peer_list)
    peer_sync = peer.add_parser("sync", help="pull the peers' changes since the last sync")
    peer_sync.add_argument("names", nargs="+")
    peer_sync.add_argument("--quiet", action="store_true", help="no progress bar")
    peer_sync.set_defaults(func=cmd_peer_sync)
