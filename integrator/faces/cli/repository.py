"""kruispunt service: registering versions in the services repository and moving them through their lifecycle."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from integrator import commands
from integrator.config import Settings
from integrator.faces.cli.common import sessions
from repository import registry
from repository.registry import RegistrationRefused


def cmd_service_register(args: argparse.Namespace, settings: Settings) -> int:
    docs = commands.read_documents(Path(args.wsdl), Path(args.root) if args.root else None)
    with sessions(settings)() as session:
        try:
            row = commands.register_service(session, args.name, args.version, docs, args.owner, args.description,
                                            args.federated, person_element=args.person_element)
        except RegistrationRefused as refused:
            print(f"refused: {args.name} {args.version}:", file=sys.stderr)
            for problem in refused.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        session.commit()
        print(f"registered {row.name} {row.version} as draft ({len(docs.files)} documents)")
    return 0


def cmd_service_lifecycle(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        try:
            row = registry.set_lifecycle(session, args.name, args.version, args.status,
                                         sunset=date.fromisoformat(args.sunset) if args.sunset else None,
                                         successor=args.successor)
        except RegistrationRefused as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 1
        session.commit()
        print(f"{row.name} {row.version}: {row.status}" + (f", sunset {row.sunset}" if row.sunset else ""))
    return 0


def cmd_service_federate(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        row = registry.set_federated(session, args.name, args.version, not args.withdraw)
        session.commit()
        print(f"{row.name} {row.version}: {'open to federation' if row.federated else 'withdrawn from federation'}")
    return 0


def cmd_service_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        for row in registry.list_versions(session):
            flags = " federated" if row.federated else ""
            print(f"{row.name:<32} {row.version:<6} {row.status:<10} origin {row.origin}{flags}")
    return 0



def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    service = sub.add_parser("service", help="the services repository").add_subparsers(dest="service_command",
                                                                                        required=True)
    register = service.add_parser("register", help="register a service version (draft) with its WSDL and XSDs")
    register.add_argument("--name", required=True)
    register.add_argument("--version", required=True, help="major.minor, e.g. 1.0")
    register.add_argument("--wsdl", required=True, help="the WSDL file; its imports are read from disk")
    register.add_argument("--root", help="folder the document paths are relative to (default: the WSDL's "
                                         "folder's parent)")
    register.add_argument("--owner", required=True, help="enterprise number of the owning organisation")
    register.add_argument("--description", default="")
    register.add_argument("--federated", action="store_true", help="open the version to federation")
    register.add_argument("--person-element", help="local name of the request element holding the person's INSZ: "
                                                   "requests about persons outside the caller's files are refused")
    register.set_defaults(func=cmd_service_register)
    lifecycle = service.add_parser("lifecycle", help="move a version: active, deprecated (--sunset), retired")
    lifecycle.add_argument("--name", required=True)
    lifecycle.add_argument("--version", required=True)
    lifecycle.add_argument("status", choices=["active", "deprecated", "retired"])
    lifecycle.add_argument("--sunset", help="date a deprecated version stops (YYYY-MM-DD)")
    lifecycle.add_argument("--successor", help="what to use instead, e.g. 'Name v2'")
    lifecycle.set_defaults(func=cmd_service_lifecycle)
    federate = service.add_parser("federate", help="open a version to federation (or --withdraw it)")
    federate.add_argument("--name", required=True)
    federate.add_argument("--version", required=True)
    federate.add_argument("--withdraw", action="store_true")
    federate.set_defaults(func=cmd_service_federate)
    service.add_parser("list", help="every version in the repository").set_defaults(func=cmd_service_list)
