"""Application intake of an institution (disability-allowance administration, pension service): a reference
backend that files the applications the integrator forwards.

Idempotent per reference (the integrator's ticket): a repeated reference answers the same institution file
reference and files nothing new, but every attempt that reaches the intake is counted, so tests can see both
"delivered exactly once" and how many deliveries arrived. Kept in SQLite (<state_dir>/<name>.sqlite), so a
restarted backend remembers what it filed.

Reference-backend knob: KRUISPUNT_BACKEND_DELAY_SECONDS (default 0) makes the intake answer that many seconds
after it has filed the application (the fault-injection tests use it to kill an integrator worker mid-delivery)."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from spyne import (
    Application,
    Array,
    Boolean,
    ByteArray,
    ComplexModel,
    Date,
    DateTime,
    Integer,
    ServiceBase,
    Unicode,
    rpc,
)
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

NS = "urn:kruispunt:backends:ApplicationIntake:v1"
KINDS = ("DISABILITY_ALLOWANCE", "PENSION")
DELAY_ENV = "KRUISPUNT_BACKEND_DELAY_SECONDS"


def _required(kind: Any) -> Any:
    return kind(min_occurs=1, nillable=False)


class IntakeMember(ComplexModel):
    """A member of the applicant's household: by INSZ, or by name when they have none."""

    __namespace__ = NS
    _type_info: ClassVar = [
        ("insz", Unicode(min_occurs=0, nillable=False)),
        ("last_name", Unicode(min_occurs=0, nillable=False)),
        ("first_names", Unicode(min_occurs=0, nillable=False)),
        ("relationship", _required(Unicode)),
    ]


class IntakeDocument(ComplexModel):
    __namespace__ = NS
    _type_info: ClassVar = [
        ("name", _required(Unicode)),
        ("mime_type", _required(Unicode)),
        ("content", _required(ByteArray)),
    ]


class IntakeReceipt(ComplexModel):
    """What the institution answers: its own file reference for the application."""

    __namespace__ = NS
    _type_info: ClassVar = [
        ("reference", _required(Unicode)),
        ("file_reference", _required(Unicode)),
        ("filed_at", _required(DateTime)),
        ("first_time", _required(Boolean)),  # false: this reference was filed before (a repeated delivery)
        ("attempts", _required(Integer)),  # deliveries of this reference that reached the intake
    ]


@dataclass(frozen=True)
class Filed:
    reference: str
    file_reference: str
    kind: str
    insz: str
    file_number: str
    municipality: str
    documents: int
    filed_at: datetime
    attempts: int


class IntakeStore:
    """The institution's filed applications on disk; also read by tests (received, count)."""

    def __init__(self, path: Path, prefix: str = "APP") -> None:
        self.path = path
        self.prefix = prefix
        with closing(self._connect()) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS applications (reference TEXT PRIMARY KEY, "
                       "file_reference TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, insz TEXT NOT NULL, "
                       "file_number TEXT NOT NULL, municipality TEXT NOT NULL, household INTEGER NOT NULL, "
                       "documents INTEGER NOT NULL, document_bytes INTEGER NOT NULL, filed_at TEXT NOT NULL, "
                       "attempts INTEGER NOT NULL DEFAULT 1)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def file(self, reference: str, kind: str, insz: str, file_number: str, municipality: str, household: int,
             documents: list[bytes]) -> tuple[Filed, bool]:
        """File once per reference; a repeated reference only counts the attempt. True when it was new."""
        now = datetime.now(UTC).isoformat()
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            number = db.execute("SELECT COUNT(*) FROM applications").fetchone()[0] + 1
            file_reference = f"{self.prefix}-{datetime.now(UTC):%Y}-{number:06d}"
            db.execute("INSERT INTO applications (reference, file_reference, kind, insz, file_number, municipality, "
                       "household, documents, document_bytes, filed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (reference) DO UPDATE SET attempts = attempts + 1",
                       (reference, file_reference, kind, insz, file_number, municipality, household, len(documents),
                        sum(len(d) for d in documents), now))
            db.execute("COMMIT")
        filed = self.received(reference)
        assert filed is not None
        return filed, filed.attempts == 1

    def received(self, reference: str) -> Filed | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT reference, file_reference, kind, insz, file_number, municipality, documents, "
                             "filed_at, attempts FROM applications WHERE reference = ?", (reference,)).fetchone()
        if row is None:
            return None
        return Filed(*row[:6], row[6], datetime.fromisoformat(row[7]), row[8])

    def count(self, reference: str) -> int:
        """How many applications are filed under this reference (0 or 1: the primary key says so)."""
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM applications WHERE reference = ?", (reference,)).fetchone()[0])


def store_for(name: str, state_dir: Path) -> IntakeStore:
    prefix = name.split("-")[0][:3].upper() or "APP"  # disability-applications: DIS-2026-000001
    return IntakeStore(state_dir / f"{name}.sqlite", prefix)


def _content(value: Any) -> bytes:
    """spyne hands a ByteArray over as a sequence of chunks."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return b"".join(bytes(chunk) for chunk in value or [])


def make_application(name: str, state_dir: Path) -> WsgiApplication:
    store = store_for(name, state_dir)
    delay = float(os.environ.get(DELAY_ENV) or 0)

    class ApplicationIntake(ServiceBase):
        @rpc(_required(Unicode), _required(Unicode), _required(Unicode), _required(Unicode), _required(Unicode),
             _required(Date), _required(Unicode), _required(Unicode), Array(IntakeMember), Array(IntakeDocument),
             _returns=IntakeReceipt)
        def receive_application(ctx, reference: str, kind: str, insz: str,  # type: ignore[no-untyped-def]  # noqa: N805
                                last_name: str, first_names: str, birth_date: date, file_number: str,
                                municipality: str, household: list[IntakeMember] | None,
                                documents: list[IntakeDocument] | None):
            """File an application once per reference (the integrator's ticket); answer the file reference."""
            if kind not in KINDS:
                raise ValueError(f"kind must be one of {', '.join(KINDS)}")
            contents = [_content(d.content) for d in documents or []]
            filed, first = store.file(reference, kind, insz, file_number, municipality, len(household or []),
                                      contents)
            if delay > 0:
                time.sleep(delay)
            return IntakeReceipt(reference=reference, file_reference=filed.file_reference, filed_at=filed.filed_at,
                                 first_time=first, attempts=filed.attempts)

    app = Application([ApplicationIntake], tns=NS, name="ApplicationIntake",
                      in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    return WsgiApplication(app)


__all__ = ["DELAY_ENV", "NS", "IntakeStore", "make_application", "store_for"]
