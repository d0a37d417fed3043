"""Dutch (the default) and French through gettext, English as the msgids: the language from the language switch's
cookie, else the browser's preference between Dutch and French, else Dutch. The catalogues' .po files are the
source; their .mo files are compiled from them (python -m integrator.faces.portal.i18n) and committed, and a test
checks they are up to date."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import request

from integrator.faces.portal.visits import LANGUAGE_COOKIE

LANGUAGES = {"nl": "Nederlands", "fr": "Français", "en": "English"}  # code -> its own name, in the switch
DEFAULT = "nl"
TRANSLATED = ("nl", "fr")  # the others read the msgids
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"


def select_language() -> str:
    """flask-babel's locale selector."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(TRANSLATED) or DEFAULT


def po_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def compiled(language: str) -> bytes:
    """The .mo file the language's .po compiles to (fuzzy entries left out)."""
    with po_path(language).open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def compile_all() -> list[Path]:
    """Write every language's .mo beside its .po; returns those that changed."""
    changed = []
    for language in TRANSLATED:
        target = po_path(language).with_suffix(".mo")
        data = compiled(language)
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
            changed.append(target)
    return changed


if __name__ == "__main__":
    for path in compile_all():
        print(f"compiled {path}", file=sys.stderr)
