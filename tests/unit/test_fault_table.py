"""Every fault class has one stable code and one line in the README's fault table."""

from __future__ import annotations

import re

import services  # noqa: F401  (the services' own faults are subclasses of the family too)
from integrator.config import PROJECT_ROOT
from integrator.faults import ClientFault, all_fault_classes

ROW = re.compile(r"^\|\s*`(?P<code>(?:Client|Server)\.[A-Za-z.]+|MustUnderstand)`\s*\|\s*(?P<http>\d{3})\s*\|",
                 re.MULTILINE)


def readme_rows() -> dict[str, int]:
    text = (PROJECT_ROOT / "README.md").read_text()
    rows = [(m["code"], int(m["http"])) for m in ROW.finditer(text)]
    assert len(rows) == len({code for code, _ in rows}), "a fault code appears twice in the README table"
    return dict(rows)


def test_codes_are_unique() -> None:
    codes = [cls.CODE for cls in all_fault_classes()]
    assert len(codes) == len(set(codes))


def test_readme_table_lists_every_code_with_its_http_status() -> None:
    rows = readme_rows()
    expected = {cls.CODE: cls.HTTP_STATUS for cls in all_fault_classes()}
    assert rows == expected


def test_caller_mistakes_are_never_answered_with_a_5xx() -> None:
    for cls in all_fault_classes():
        if issubclass(cls, ClientFault):
            assert 400 <= cls.HTTP_STATUS < 500, cls
        else:
            assert cls.HTTP_STATUS >= 500, cls
