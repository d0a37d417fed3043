"""Contracts: XSD validation with a path a person can act on, INSZ check digits, answers built in order."""

from __future__ import annotations

from datetime import date

import pytest
from kruispunt_client.xml import build
from lxml import etree

from integrator.config import PROJECT_ROOT
from integrator.contract import Contract, check_insz
from integrator.faults import ContractViolation, InszInvalid
from services.backends.persons import make_insz

TX = "urn:kruispunt:TaxExemptionStatus:v1"
CONTRACT = Contract(PROJECT_ROOT / "xsd/TaxExemptionStatus/v1/TaxExemptionStatus.xsd")


def request(insz: str, on: str = "2026-01-01") -> etree._Element:
    return build(f"{{{TX}}}GetTaxExemptionStatusesRequest", {"Insz": insz, "ReferenceDate": on})


def test_valid_request_is_decoded_by_local_names() -> None:
    insz = make_insz(date(1980, 5, 17), 42)
    assert CONTRACT.check(request(insz)) == {"Insz": insz, "ReferenceDate": date(2026, 1, 1)}


@pytest.mark.parametrize(("text", "day"), [("2026-01-01", date(2026, 1, 1)), ("2026-01-01Z", date(2026, 1, 1)),
                                           ("2026-01-01+02:00", date(2026, 1, 1))])
def test_dates_decode_to_dates_whatever_their_timezone(text: str, day: date) -> None:
    element = request(make_insz(date(1980, 5, 17), 42))
    element.find(f"{{{TX}}}ReferenceDate").text = text
    assert CONTRACT.check(element)["ReferenceDate"] == day


def test_wrong_check_digit_is_its_own_fault_naming_the_value() -> None:
    good = make_insz(date(1980, 5, 17), 42)
    bad = good[:9] + f"{(int(good[9:]) + 1) % 100:02d}"
    with pytest.raises(InszInvalid) as caught:
        CONTRACT.check(request(bad))
    assert bad in caught.value.reason and caught.value.code == "Client.Contract.InszInvalid"


def test_schema_violation_names_the_path() -> None:
    with pytest.raises(ContractViolation) as caught:
        CONTRACT.check(request(make_insz(date(1980, 5, 17), 42), on="yesterday"))
    assert "ReferenceDate" in caught.value.reason


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (make_insz(date(1985, 7, 30), 33), True),  # born before 2000
        (make_insz(date(2003, 2, 1), 12), True),  # born in 2000 or later: 2 prefixed for the check
        ("85073003328", True),
        ("85073003329", False),
        ("85273003360", False),  # a BIS-like month with a wrong check digit
    ],
)
def test_insz_check_digits(value: str, valid: bool) -> None:
    if valid:
        assert check_insz(value) == value
    else:
        with pytest.raises(InszInvalid):
            check_insz(value)


def test_bis_number_is_accepted() -> None:
    first9 = "852730033"  # month + 20: a BIS number for a person whose gender is known
    bis = f"{first9}{97 - int(first9) % 97:02d}"
    assert check_insz(bis) == bis


def test_build_keeps_order_repeats_lists_and_drops_none() -> None:
    element = build(f"{{{TX}}}X", {"A": 1, "B": [True, False], "C": None, "D": {"E": date(2026, 1, 2)}})
    assert [etree.QName(c).localname for c in element] == ["A", "B", "B", "D"]
    assert [c.text for c in element.findall(f"{{{TX}}}B")] == ["true", "false"]
    assert element.findtext(f"{{{TX}}}D/{{{TX}}}E") == "2026-01-02"


SS = "urn:kruispunt:backends:StatusSource:v1"
SOURCE = Contract(PROJECT_ROOT / "xsd/backends/StatusSource/v1/StatusSource.xsd")


def _nil_as_none(value: object) -> object:
    """xmlschema renders xsi:nil as {'@nil': 'true'}; the integrator's decoder says None."""
    if isinstance(value, dict):
        return None if value == {"@nil": "true"} else {k: _nil_as_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nil_as_none(v) for v in value]
    return value


def _dates_as_text(value: object) -> object:
    """xmlschema leaves xs:date as its text; the integrator's decoder gives dates."""
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    return value.isoformat() if isinstance(value, date) else value


@pytest.mark.parametrize("periods", [0, 1, 3])
def test_fast_decoding_agrees_with_xmlschema(periods: int) -> None:
    answer = etree.fromstring(
        f'<ss:get_statusesResponse xmlns:ss="{SS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<ss:get_statusesResult>"
        + "".join(f"<ss:StatusPeriod><ss:code>C{i}</ss:code><ss:start>2020-01-0{i + 1}</ss:start>"
                  + ('<ss:end xsi:nil="true"/>' if i % 2 else "<ss:end>2021-01-01</ss:end>") + "</ss:StatusPeriod>"
                  for i in range(periods))
        + "</ss:get_statusesResult></ss:get_statusesResponse>"
    )
    expected = _nil_as_none(SOURCE._xs.to_dict(answer, strip_namespaces=True))
    decoded = SOURCE.check(answer)
    if periods == 0:  # xmlschema says None for an empty complex element; we say {}: both are falsy
        assert not decoded["get_statusesResult"] and not expected["get_statusesResult"]
    else:
        assert _dates_as_text(decoded) == expected
        assert all(type(p["start"]) is date for p in decoded["get_statusesResult"]["StatusPeriod"])


def test_fast_decoding_converts_booleans() -> None:
    response = build(f"{{{TX}}}GetTaxExemptionStatusesResponse", {
        "Insz": make_insz(date(1980, 5, 17), 42), "ReferenceDate": date(2026, 1, 1), "Complete": False,
        "Sources": {"Source": [{"Name": "a", "Outcome": "CONSULTED"}]}})
    decoded = CONTRACT.check(response)
    assert decoded["Complete"] is False
    assert _dates_as_text(decoded) == CONTRACT._xs.to_dict(response, strip_namespaces=True)
