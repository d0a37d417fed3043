"""`kruispunt`: a thin command line over integrator.commands, one module per area."""

from __future__ import annotations

import argparse
import shlex
import sys

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from integrator.config import Settings
from integrator.faces.cli import access, admin, demo, federation, maintenance, outbox, proposals, repository
from integrator.faults import KruispuntFault


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kruispunt", description="SOAP/XML service integrator")
    sub = top.add_subparsers(dest="command", required=True)
    for area in (admin, access, repository, federation, demo, outbox, proposals, maintenance):
        area.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; a refusal or a mistake in the input is one line on stderr and exit status 1, never a
    traceback (argparse's own usage errors exit with 2)."""
    words = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(words)
    args.command_line = shlex.join(["kruispunt", *words])  # what an act's audit record keeps a digest of
    try:
        return int(args.func(args, Settings.from_env()))
    except KruispuntFault as refused:
        return _refused(f"{refused.code}: {refused.reason}")
    except (LookupError, ValueError) as exc:
        return _refused(str(exc))
    except IntegrityError as exc:
        return _refused(f"the database refused the change: {exc.orig}")
    except SQLAlchemyError as exc:
        return _refused(f"database: {type(exc).__name__}: {getattr(exc, 'orig', None) or exc}")
    except OSError as exc:
        return _refused(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))


def _refused(message: str) -> int:
    print(f"kruispunt: {' '.join(message.split())}", file=sys.stderr)
    return 1
