"""BIS numbers: every number python-stdnum accepts as a BIS number, with the birth date, gender offset and sequence
parity the Royal Decree of 8 February 1991 prescribes; impossible birth dates refused."""

from __future__ import annotations

from datetime import date

import pytest
from stdnum.be import bis, nn

from repository.bis_numbers import (
    BirthDateError,
    NumbersExhausted,
    PartialDate,
    compose,
    free_sequence,
    parse_birth_date,
    prefix,
    sequences,
)

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize("born", [PartialDate(1986, 7, 30), PartialDate(2003, 2, 28), PartialDate(1900, 1, 1),
                                  PartialDate(2000, 12, 31), PartialDate(2026, 11, 30)])
@pytest.mark.parametrize("gender", ["M", "F", None])
def test_full_birth_dates_give_valid_bis_numbers_with_the_date_and_gender_encoded(born: PartialDate,
                                                                                 gender: str | None) -> None:
    for sequence in (next(iter(sequences(gender))), 501 if gender != "F" else 502, sequences(gender)[-1]):
        number = compose(born, gender, sequence)
        assert bis.is_valid(number) and not nn.is_valid(number), number
        assert bis.get_birth_date(number) == born.full
        assert int(number[2:4]) == born.month + (40 if gender else 20)
        assert bis.get_gender(number) == gender  # stdnum reads the gender from +40 numbers only
        assert int(number[6:9]) == sequence


def test_sequence_parity_odd_for_men_even_for_women_any_when_unknown() -> None:
    assert all(s % 2 == 1 for s in sequences("M")) and len(sequences("M")) == 499
    assert all(s % 2 == 0 for s in sequences("F")) and len(sequences("F")) == 499
    assert list(sequences(None)) == list(range(1, 999))


def test_check_digits_use_the_2000_prefix_for_births_from_2000() -> None:
    number = compose(PartialDate(2001, 6, 9), "F", 2)
    assert number[:9] == "014609002"
    assert int(number[9:]) == 97 - int("2" + number[:9]) % 97
    older = compose(PartialDate(1901, 6, 9), "F", 2)
    assert older[:9] == number[:9] and older[9:] != number[9:]
    assert bis.get_birth_year(number) == 2001 and bis.get_birth_year(older) == 1901


@pytest.mark.parametrize(("born", "first6", "year", "month"), [
    (PartialDate(1975, 4), "754400", 1975, 4),  # unknown day: 00
    (PartialDate(1975), "754000", 1975, None),  # unknown month and day: 00 + offset, 00
    (PartialDate(2010), "104000", 2010, None),
    (PartialDate(), "004001", None, None),  # wholly unknown: the fictitious date stdnum recognises
])
def test_unknown_birth_date_parts_are_zeros_as_the_bis_rules_say(born: PartialDate, first6: str, year: int | None,
                                                                month: int | None) -> None:
    number = compose(born, "M", 1)
    assert number.startswith(first6) and prefix(born, "M") == first6
    assert bis.is_valid(number), number
    assert (bis.get_birth_year(number), bis.get_birth_month(number), bis.get_birth_date(number)) == (year, month,
                                                                                                      None)
    unknown_gender = compose(born, None, 2)
    assert bis.is_valid(unknown_gender) and int(unknown_gender[2:4]) == int(first6[2:4]) - 20


def test_free_sequence_takes_the_lowest_free_number_of_the_gender_and_says_when_none_is_left() -> None:
    assert free_sequence([], "M") == 1 and free_sequence([], "F") == 2 and free_sequence([], None) == 1
    assert free_sequence([1, 3, 4, 7], "M") == 5
    assert free_sequence([2, 4, 1], None) == 3
    with pytest.raises(NumbersExhausted):
        free_sequence(range(1, 998, 2), "M")
    assert free_sequence(range(1, 998, 2), "F") == 2  # the women's numbers are another range


@pytest.mark.parametrize(("text", "expected"), [
    ("1986-07-30", PartialDate(1986, 7, 30)), ("1986-07", PartialDate(1986, 7)), ("1986", PartialDate(1986)),
    ("1986-07-00", PartialDate(1986, 7)), ("1986-00-00", PartialDate(1986)), (None, PartialDate()),
    ("", PartialDate()), ("2024-02-29", PartialDate(2024, 2, 29)), ("2026-11-30", PartialDate(2026, 11, 30)),
])
def test_birth_dates_full_or_partial_are_read(text: str | None, expected: PartialDate) -> None:
    assert parse_birth_date(text, TODAY) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("1986-02-30", "does not exist"), ("1986-13-01", "month 13"), ("1986-13", "month 13"),
    ("1986-00-12", "day but no month"), ("2026-12-01", "future"), ("2027", "future"), ("2026-12", "future"),
    ("2023-02-29", "does not exist"), ("1899-05-05", "before 1900"), ("86-07-30", "not YYYY"),
])
def test_impossible_birth_dates_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(BirthDateError, match=why):
        parse_birth_date(text, TODAY)
