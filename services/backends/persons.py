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
class Address:
    street: str
    house_number: str
    postcode: str
    municipality: str
    nis_code: str  # the municipality competent for the person's National Register record
    since: date


KRUISDORP_NIS, BRUGSTEDE_NIS = "44021", "31005"


@dataclass(frozen=True)
class Person:
    name: str
    birth: date
    sequence: int
    periods: tuple[Period, ...] = field(default=())
    address: Address = Address("Dorpsplein", "1", "9000", "Kruisdorp", KRUISDORP_NIS, date(2000, 1, 1))
    nationality: str = "BE"
    civil_status: str = "SINGLE"

    @property
    def insz(self) -> str:
        return make_insz(self.birth, self.sequence)

    @property
    def first_names(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def last_name(self) -> str:
        return self.name.split(" ", 1)[1]

    @property
    def gender(self) -> str:
        """M or F: the National Register number's sequence is odd for men, even for women."""
        return "M" if self.sequence % 2 else "F"


PERSONS: tuple[Person, ...] = (
    Person("Maria Janssens", date(1948, 2, 14), 202, (
        Period("INCOME_GUARANTEE_ELDERLY", date(2013, 3, 1)),
        Period("INCREASED_REIMBURSEMENT", date(2013, 1, 1)),
    ), Address("Kerkstraat", "12", "9000", "Kruisdorp", KRUISDORP_NIS, date(1975, 6, 1)), civil_status="WIDOWED"),
    Person("Ahmed El Amrani", date(1986, 7, 30), 33, (
        Period("SOCIAL_INTEGRATION_INCOME", date(2024, 5, 1), date(2026, 4, 30)),
        Period("INCREASED_REIMBURSEMENT", date(2024, 6, 1)),
    ), Address("Stationsstraat", "4", "8000", "Brugstede", BRUGSTEDE_NIS, date(2015, 2, 1)), nationality="MA",
       civil_status="MARRIED"),
    Person("Sofie Claes", date(1979, 11, 3), 118, (
        Period("DISABILITY_ALLOWANCE", date(2019, 9, 1)),
        Period("INCREASED_REIMBURSEMENT", date(2019, 10, 1)),
    ), Address("Molenweg", "7", "9000", "Kruisdorp", KRUISDORP_NIS, date(2010, 9, 15))),
    Person("Luc Wouters", date(1990, 1, 21), 61, (),
           Address("Marktplein", "3", "8000", "Brugstede", BRUGSTEDE_NIS, date(2018, 3, 1))),
    Person("Nathalie Dubois", date(2001, 6, 9), 244, (
        Period("SOCIAL_INTEGRATION_INCOME", date(2022, 1, 1), date(2022, 12, 31)),
    ), Address("Leiestraat", "21", "9000", "Kruisdorp", KRUISDORP_NIS, date(2021, 8, 1)), nationality="FR"),
    Person("Jozef Maes", date(1941, 12, 24), 7, (
        Period("INCOME_GUARANTEE_ELDERLY", date(2006, 1, 1), date(2020, 12, 31)),
        Period("DISABILITY_ALLOWANCE", date(2006, 1, 1)),
        Period("INCREASED_REIMBURSEMENT", date(2006, 1, 1)),
    ), Address("Hoogstraat", "88", "8000", "Brugstede", BRUGSTEDE_NIS, date(1970, 5, 1)), civil_status="MARRIED"),
)


def periods_for(insz: str, code: str) -> list[Period]:
    return [p for person in PERSONS if person.insz == insz for p in person.periods if p.code == code]


def person(insz: str) -> Person | None:
    return next((p for p in PERSONS if p.insz == insz), None)
