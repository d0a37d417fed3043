"""Synthetic persons with valid INSZ numbers and the statuses each authentic source holds about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


def make_insz(birth: date, sequence: int) -> str:
    """A National Register number with correct check digits (python-stdnum accepts it)."""
    first9 = f"{birth:%y%m%d}{sequence:03d}"
    base = int(first9) + (2_000_000_000 if birth.year >= 2000 else 0)
    return f"{first9}{97 - base % 97:02d}"


@dataclass(frozen=True)
class Period:
    code: str
    start: date
    end: date | None = None


@dataclass(frozen=True)
class Person:
    name: str
    birth: date
    sequence: int
    periods: tuple[Period, ...] = field(default=())

    @property
    def insz(self) -> str:
        return make_insz(self.birth, self.sequence)


PERSONS: tuple[Person, ...] = (
    Person("Maria Janssens", date(1948, 2, 14), 202, (
        Period("INCOME_GUARANTEE_ELDERLY", date(2013, 3, 1)),
        Period("INCREASED_REIMBURSEMENT", date(2013, 1, 1)),
    )),
    Person("Ahmed El Amrani", date(1986, 7, 30), 33, (
        Period("SOCIAL_INTEGRATION_INCOME", date(2024, 5, 1), date(2026, 4, 30)),
        Period("INCREASED_REIMBURSEMENT", date(2024, 6, 1)),
    )),
    Person("Sofie Claes", date(1979, 11, 3), 118, (
        Period("DISABILITY_ALLOWANCE", date(2019, 9, 1)),
        Period("INCREASED_REIMBURSEMENT", date(2019, 10, 1)),
    )),
    Person("Luc Wouters", date(1990, 1, 21), 61, ()),
    Person("Nathalie Dubois", date(2001, 6, 9), 244, (
        Period("SOCIAL_INTEGRATION_INCOME", date(2022, 1, 1), date(2022, 12, 31)),
    )),
    Person("Jozef Maes", date(1941, 12, 24), 7, (
        Period("INCOME_GUARANTEE_ELDERLY", date(2006, 1, 1), date(2020, 12, 31)),
        Period("DISABILITY_ALLOWANCE", date(2006, 1, 1)),
        Period("INCREASED_REIMBURSEMENT", date(2006, 1, 1)),
    )),
)


def periods_for(insz: str, code: str) -> list[Period]:
    return [p for person in PERSONS if person.insz == insz for p in person.periods if p.code == code]
