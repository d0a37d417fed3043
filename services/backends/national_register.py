"""The National Register as a reference backend: a person's identity and address by INSZ, a coarse search for
e-Creabis, and the updates municipalities make (kept on disk, idempotent per update reference)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import ClassVar

from spyne import Application, Array, Boolean, ComplexModel, Date, DateTime, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from services.backends.persons import PERSONS, Person

NS = "urn:kruispunt:backends:NationalRegister:v1"
FIELDS = ("ADDRESS", "CIVIL_STATUS", "NATIONALITY", "LAST_NAME", "FIRST_NAMES")


class NrAddress(ComplexModel):
    __namespace__ = NS
    _type_info: ClassVar = [
        ("street", Unicode(min_occurs=1, nillable=False)),
        ("house_number", Unicode(min_occurs=1, nillable=False)),
        ("postcode", Unicode(min_occurs=1, nillable=False)),
        ("municipality", Unicode(min_occurs=1, nillable=False)),
        ("nis_code", Unicode(min_occurs=1, nillable=False)),
        ("since", Date(min_occurs=1, nillable=False)),
    ]


class NrPerson(ComplexModel):
    __namespace__ = NS
    _type_info: ClassVar = [
        ("insz", Unicode(min_occurs=1, nillable=False)),
        ("last_name", Unicode(min_occurs=1, nillable=False)),
        ("first_names", Unicode(min_occurs=1, nillable=False)),
        ("birth_date", Date(min_occurs=1, nillable=False)),
        ("gender", Unicode(min_occurs=1, nillable=False)),
        ("nationality", Unicode(min_occurs=1, nillable=False)),
        ("civil_status", Unicode(min_occurs=1, nillable=False)),
        ("address", NrAddress.customize(min_occurs=1, nillable=False)),
    ]


class NrUpdate(ComplexModel):
    __namespace__ = NS
    _type_info: ClassVar = [
        ("reference", Unicode(min_occurs=1, nillable=False)),
        ("insz", Unicode(min_occurs=1, nillable=False)),
        ("field", Unicode(min_occurs=1, nillable=False)),
        ("value", Unicode(min_occurs=1, nillable=False)),
        ("applied_at", DateTime(min_occurs=1, nillable=False)),
        ("first_time", Boolean(min_occurs=1, nillable=False)),  # false: this reference was applied before
    ]


class Store:
    """Updates on disk (SQLite), so that a restarted backend remembers what it applied."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(self._connect()) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS updates (reference TEXT PRIMARY KEY, insz TEXT NOT NULL, "
                       "field TEXT NOT NULL, value TEXT NOT NULL, municipality TEXT NOT NULL, "
                       "applied_at TEXT NOT NULL, deliveries INTEGER NOT NULL DEFAULT 1)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def apply(self, reference: str, insz: str, field: str, value: str, municipality: str) -> tuple[NrUpdate, bool]:
        now = datetime.now(UTC).isoformat()
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            cursor = db.execute("INSERT INTO updates (reference, insz, field, value, municipality, applied_at) "
                                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (reference) DO UPDATE SET "
                                "deliveries = deliveries + 1 RETURNING deliveries, insz, field, value, applied_at",
                                (reference, insz, field, value, municipality, now))
            deliveries, insz, field, value, applied = cursor.fetchone()
            db.execute("COMMIT")
        first = deliveries == 1
        return NrUpdate(reference=reference, insz=insz, field=field, value=value,
                        applied_at=datetime.fromisoformat(applied), first_time=first), first

    def updates(self, insz: str) -> list[tuple[str, str]]:
        with closing(self._connect()) as db:
            return list(db.execute("SELECT field, value FROM updates WHERE insz = ? ORDER BY applied_at, rowid",
                                   (insz,)))


def current(person: Person, store: Store) -> NrPerson:
    """The person as registered, with every update applied in order."""
    a = person.address
    record = NrPerson(insz=person.insz, last_name=person.last_name, first_names=person.first_names,
                      birth_date=person.birth, gender=person.gender, nationality=person.nationality,
                      civil_status=person.civil_status,
                      address=NrAddress(street=a.street, house_number=a.house_number, postcode=a.postcode,
                                        municipality=a.municipality, nis_code=a.nis_code, since=a.since))
    for field, value in store.updates(person.insz):
        if field == "ADDRESS":
            record.address = NrAddress(street=value, house_number="-", postcode=a.postcode,
                                       municipality=a.municipality, nis_code=a.nis_code, since=date.today())
        else:
            setattr(record, field.lower(), value)
    return record


def make_application(name: str, state_dir: Path) -> WsgiApplication:
    store = Store(state_dir / f"{name}.sqlite")

    class NationalRegister(ServiceBase):
        @rpc(Unicode(min_occurs=1, nillable=False), _returns=NrPerson)
        def get_person(ctx, insz: str):  # type: ignore[no-untyped-def]  # noqa: N805
            """The person's current record; an empty answer when the INSZ is not in the National Register."""
            found = next((p for p in PERSONS if p.insz == insz), None)
            return current(found, store) if found else None

        @rpc(Date, Date, _returns=Array(NrPerson))
        def search_persons(ctx, born_from: date | None, born_until: date | None):  # type: ignore[no-untyped-def]  # noqa: N805
            """Everyone born in the window (both ends optional): the caller ranks the candidates."""
            return [current(p, store) for p in PERSONS
                    if (born_from is None or p.birth >= born_from) and (born_until is None or p.birth <= born_until)]

        @rpc(Unicode(min_occurs=1, nillable=False), Unicode(min_occurs=1, nillable=False),
             Unicode(min_occurs=1, nillable=False), Unicode(min_occurs=1, nillable=False),
             Unicode(min_occurs=1, nillable=False), _returns=NrUpdate)
        def update_person(ctx, reference: str, insz: str, field: str, value: str,  # type: ignore[no-untyped-def]  # noqa: N805
                          municipality: str):
            """Apply a municipality's update once per reference; a repeated reference answers the first result."""
            if field not in FIELDS:
                raise ValueError(f"field must be one of {', '.join(FIELDS)}")
            if not any(p.insz == insz for p in PERSONS):
                raise ValueError(f"{insz} is not in the National Register")
            update, _first = store.apply(reference, insz, field, value, municipality)
            return update

    app = Application([NationalRegister], tns=NS, name="NationalRegister",
                      in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    return WsgiApplication(app)
