"""BIS numbers as the Royal Decree of 8 February 1991 composes them, and the birth dates they encode.

A BIS number is YYMMDD + a three-digit sequence + two check digits (97 - number mod 97; for births from 2000 the
nine digits are prefixed with 2). The month is raised by 40 when the gender is known when the number is given and
by 20 when it is not (art. 2; python-stdnum's bis.get_gender reads it the same way). With the gender known the
sequence is odd for men and even for women (art. 3). Unknown parts of the birth date are zeros: an unknown day is
00, an unknown month is 00 (plus the offset, with day 00); a wholly unknown birth date is the fictitious
00 (20|40) 01 that python-stdnum recognises as "date unknown"."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

OFFSET_GENDER_KNOWN = 40
OFFSET_GENDER_UNKNOWN = 20
EARLIEST_YEAR = 1900  # the two-digit year and the check digits cannot tell earlier births apart
_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class BirthDateError(ValueError):
    """A birth date no person can have (or no BIS number can encode)."""


class NumbersExhausted(Exception):
    """Every sequence number for this birth date and gender is taken."""


@dataclass(frozen=True)
class PartialDate:
    """A birth date whose day, month, or all of it may be unknown (None)."""

    year: int | None = None
    month: int | None = None
    day: int | None = None

    @property
    def known(self) -> bool:
        return self.year is not None

    @property
    def full(self) -> date | None:
        if self.year is None or self.month is None or self.day is None:
            return None
        return date(self.year, self.month, self.day)

    def text(self) -> str | None:
        """YYYY, YYYY-MM or YYYY-MM-DD; None when nothing is known."""
        if self.year is None:
            return None
        parts = [f"{self.year:04d}"]
        if self.month is not None:
            parts.append(f"{self.month:02d}")
            if self.day is not None:
                parts.append(f"{self.day:02d}")
        return "-".join(parts)


def parse_birth_date(text: str | None, today: date) -> PartialDate:
    """YYYY, YYYY-MM or YYYY-MM-DD (00 stands for an unknown month or day; empty for a wholly unknown date).
    Raises BirthDateError for a date that does not exist, lies in the future, or names a day without a month."""
    if text is None or not text.strip():
        return PartialDate()
    found = _PARTIAL.match(text.strip())
    if found is None:
        raise BirthDateError(f"Birth date {text!r} is not YYYY, YYYY-MM or YYYY-MM-DD.")
    year = int(found.group(1))
    month = int(found.group(2)) if found.group(2) and found.group(2) != "00" else None
    day = int(found.group(3)) if found.group(3) and found.group(3) != "00" else None
    if year < EARLIEST_YEAR:
        raise BirthDateError(f"Birth year {year} is before {EARLIEST_YEAR}; a BIS number cannot encode it.")
    if day is not None and month is None:
        raise BirthDateError(f"Birth date {text!r} gives a day but no month; give the month or leave the day 00.")
    if month is not None and not 1 <= month <= 12:
        raise BirthDateError(f"Birth date {text!r}: month {month} does not exist.")
    if day is not None:
        try:
            date(year, month or 1, day)
        except ValueError:
            raise BirthDateError(f"Birth date {text!r}: day {day} does not exist in that month.") from None
    born = PartialDate(year, month, day)
    earliest_possible = (year, month or 1, day or 1)
    if earliest_possible > (today.year, today.month, today.day):
        raise BirthDateError(f"Birth date {text!r} lies in the future.")
    return born


def prefix(born: PartialDate, gender: str | None) -> str:
    """The first six digits: YY, MM + offset, DD (zeros for what is unknown)."""
    offset = OFFSET_GENDER_KNOWN if gender in ("M", "F") else OFFSET_GENDER_UNKNOWN
    if born.year is None:
        return f"00{offset:02d}01"
    return f"{born.year % 100:02d}{(born.month or 0) + offset:02d}{born.day or 0:02d}"


def sequences(gender: str | None) -> range:
    """The sequence numbers a person of this gender may get: odd for men, even for women, any when unknown."""
    if gender == "M":
        return range(1, 998, 2)
    if gender == "F":
        return range(2, 999, 2)
    return range(1, 999)


def free_sequence(taken: Iterable[int], gender: str | None) -> int:
    """The lowest sequence number of the gender's range not taken yet."""
    used = set(taken)
    for sequence in sequences(gender):
        if sequence not in used:
            return sequence
    raise NumbersExhausted()


def compose(born: PartialDate, gender: str | None, sequence: int) -> str:
    """The eleven digits, check digits included."""
    first9 = f"{prefix(born, gender)}{sequence:03d}"
    base = int(first9) + (2_000_000_000 if born.year is not None and born.year >= 2000 else 0)
    return f"{first9}{97 - base % 97:02d}"


def sequence_of(number: str) -> int:
    return int(number[6:9])
