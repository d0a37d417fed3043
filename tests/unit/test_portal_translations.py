"""The portal's Dutch and French catalogues: every message of its code and templates is translated in both, the
placeholders kept, and the committed .mo files are what the .po files compile to
(`python -m integrator.faces.portal.i18n` writes them again)."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from integrator.faces.portal.i18n import TRANSLATED, compiled, po_path

PORTAL = po_path("nl").parents[3]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def messages() -> set[str]:
    """Every msgid the portal (its code, its templates, its applications') asks gettext for."""
    keywords = dict(DEFAULT_KEYWORDS, _l=None, lazy_gettext=None)
    found = extract_from_dir(str(PORTAL), method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
                             keywords=keywords, options_map={"**/templates/**.html": {"trimmed": "false"}})
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_of_the_portal_is_translated(language: str) -> None:
    with po_path(language).open("rb") as source:
        catalog = read_po(source, locale=language)
    missing = sorted(m for m in messages() if not (catalog.get(m) and catalog.get(m).string))  # type: ignore[union-attr]
    assert not missing, f"{language}: add these to {po_path(language)}: {missing}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_placeholders(language: str) -> None:
    with po_path(language).open("rb") as source:
        catalog = read_po(source, locale=language)
    for message in catalog:
        if message.id and isinstance(message.id, str):
            assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(str(message.string))), (
                message.id)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_committed_mo_file_is_compiled_from_the_po_file(language: str) -> None:
    mo = po_path(language).with_suffix(".mo")
    assert mo.exists() and mo.read_bytes() == compiled(language), (
        f"{mo} is out of date: run .venv/bin/python -m integrator.faces.portal.i18n")
