"""`kruispunt`: a thin command line over integrator.commands, one module per area."""

from __future__ import annotations

import argparse
import sys

from integrator.config import Settings
from integrator.faces.cli import admin, demo, federation, maintenance, outbox, proposals, repository


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kruispunt", description="SOAP/XML service integrator")
    sub = top.add_subparsers(dest="command", required=True)
    for area in (admin, repository, federation, demo, outbox, proposals, maintenance):
        area.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args, Settings.from_env()))
    except (LookupError, ValueError) as exc:
        print(f"kruispunt: {exc}", file=sys.stderr)
        return 1
