"""e-Creabis identity matching: names normalised (case, accents, hyphens, particles), compared fuzzily
(Jaro-Winkler) and phonetically (Metaphone, NYSIIS) with jellyfish; birth dates compared with tolerance (partial
dates, day and month swapped, a year off). Pure functions: the services feed them candidates."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field

import jellyfish

from repository.bis_numbers import PartialDate

# separable name particles (Dutch, French, German, Spanish, Portuguese, Italian, Arabic); never Mac/Mc/O'
PARTICLES = frozenset({
    "van", "von", "vom", "de", "der", "den", "het", "ten", "ter", "te", "zu", "da", "das", "do", "dos", "di",
    "del", "della", "la", "le", "les", "du", "des", "d", "l", "el", "al", "ben", "bin", "ibn", "y",
})
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
                       "ı": "i"})
WEIGHTS = {"LastName": 0.40, "FirstNames": 0.25, "BirthDate": 0.25, "Gender": 0.05, "Nationality": 0.05}
MIN_NAME_SIMILARITY = 0.80  # below this the last name does not resemble the one asked for
MIN_SCORE = 55.0


def fold(text: str) -> str:
    """Lower case, without accents, every run of non-letters (hyphen, apostrophe, space) one space."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    letters = "".join(c if c.isalpha() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.split())


def name_key(text: str) -> str:
    """The name without case, accents, spaces or hyphens: 'Van den Berg' = 'VANDENBERG' = 'van-den-berg'."""
    return fold(text).replace(" ", "")


def core(text: str) -> str:
    """The name without its particles: 'El Amrani' -> 'amrani', 'van der Veken' -> 'veken'."""
    words = [w for w in fold(text).split() if w not in PARTICLES]
    return "".join(words) or name_key(text)


@dataclass(frozen=True)
class Identity:
    """What is known about a person, as asked for or as a source holds it."""

    last_name: str
    first_names: str = ""
    born: PartialDate = field(default_factory=PartialDate)
    gender: str | None = None
    nationality: str | None = None


@dataclass(frozen=True)
class Reason:
    criterion: str  # LastName, FirstNames, BirthDate, Gender, Nationality
    match: str  # EXACT, PARTICLES, PHONETIC, FUZZY, SWAPPED, PARTIAL, DAY_MONTH_SWAPPED, YEAR_OFF, NEAR, DIFFERENT
    similarity: float


@dataclass(frozen=True)
class Scored:
    score: float  # 0..100
    reasons: tuple[Reason, ...]
    name_similarity: float


def name_similarity(asked: str, held: str) -> tuple[float, str]:
    """How alike two names are (0..1) and how: EXACT, PARTICLES, PHONETIC or FUZZY."""
    if not asked.strip() or not held.strip():
        return 0.0, "DIFFERENT"
    if name_key(asked) == name_key(held):
        return 1.0, "EXACT"
    a, h = core(asked), core(held)
    if a == h:
        return 0.97, "PARTICLES"
    similar = max(jellyfish.jaro_winkler_similarity(name_key(asked), name_key(held)),
                  jellyfish.jaro_winkler_similarity(a, h))
    if jellyfish.metaphone(a) == jellyfish.metaphone(h) or jellyfish.nysiis(a) == jellyfish.nysiis(h):
        return max(similar, 0.92), "PHONETIC"
    return similar, "FUZZY"


def first_names_similarity(asked: str, held: str) -> tuple[float, str]:
    """First names: all of them, or the best pairing of single given names ('Ahmet' against 'Ahmed Karim')."""
    best = name_similarity(asked, held)
    asked_words, held_words = fold(asked).split(), fold(held).split()
    if len(asked_words) > 1 or len(held_words) > 1:
        for a in asked_words:
            for h in held_words:
                similar, how = name_similarity(a, h)
                similar *= 0.95  # one given name of several
                if similar > best[0]:
                    best = (similar, how if how != "EXACT" else "PARTIAL")
    return best


def birth_similarity(asked: PartialDate, held: PartialDate) -> tuple[float, str] | None:
    """How well two birth dates agree (None when either is wholly unknown: no evidence either way)."""
    if asked.year is None or held.year is None:
        return None
    years_apart = abs(asked.year - held.year)
    if years_apart > 1:
        return 0.0, "DIFFERENT"
    both_months = asked.month is not None and held.month is not None
    both_days = asked.day is not None and held.day is not None
    if years_apart == 0 and asked == held and asked.full is not None:
        return 1.0, "EXACT"
    if both_months and both_days and (asked.month, asked.day) == (held.day, held.month):
        return (0.85 if years_apart == 0 else 0.5), "DAY_MONTH_SWAPPED"
    if both_months and asked.month != held.month:
        return (0.3 if years_apart == 0 else 0.1), "DIFFERENT"
    if both_days and asked.day != held.day:
        if years_apart == 0 and abs((asked.day or 0) - (held.day or 0)) <= 3:
            return 0.6, "NEAR"
        return (0.35 if years_apart == 0 else 0.1), "DIFFERENT"
    if years_apart == 1:
        return (0.7 if both_days else 0.5), "YEAR_OFF"
    return 0.85, "PARTIAL"  # same year, the known parts agree, some part unknown on one side


def score(asked: Identity, held: Identity) -> Scored:
    """The candidate's similarity to what was asked (0..100) with the reason for each criterion."""
    direct = _names(asked.last_name, asked.first_names, held.last_name, held.first_names, swapped=False)
    swapped = _names(asked.last_name, asked.first_names, held.first_names, held.last_name, swapped=True)
    names = direct if _weighted(direct) >= _weighted(swapped) else swapped
    reasons = list(names)
    born = birth_similarity(asked.born, held.born)
    if born is not None:
        reasons.append(Reason("BirthDate", born[1], born[0]))
    if asked.gender and held.gender:
        same = asked.gender == held.gender
        reasons.append(Reason("Gender", "EXACT" if same else "DIFFERENT", 1.0 if same else 0.0))
    if asked.nationality and held.nationality:
        same = asked.nationality.upper() == held.nationality.upper()
        reasons.append(Reason("Nationality", "EXACT" if same else "DIFFERENT", 1.0 if same else 0.3))
    total = sum(WEIGHTS[r.criterion] * r.similarity for r in reasons)
    weight = sum(WEIGHTS[r.criterion] for r in reasons)
    return Scored(round(100 * total / weight, 1), tuple(reasons), names[0].similarity)


def _names(last: str, first: str, held_last: str, held_first: str, swapped: bool) -> tuple[Reason, ...]:
    penalty = 0.95 if swapped else 1.0
    similar, how = name_similarity(last, held_last)
    found = [Reason("LastName", "SWAPPED" if swapped else how, round(similar * penalty, 3))]
    if first.strip():
        similar, how = first_names_similarity(first, held_first)
        found.append(Reason("FirstNames", "SWAPPED" if swapped else how, round(similar * penalty, 3)))
    return tuple(found)


def _weighted(reasons: tuple[Reason, ...]) -> float:
    return sum(WEIGHTS[r.criterion] * r.similarity for r in reasons)


def relevant(scored: Scored) -> bool:
    """Worth showing the official: the last name resembles the one asked for and the whole is close enough."""
    return scored.name_similarity >= MIN_NAME_SIMILARITY and scored.score >= MIN_SCORE


def is_exact(asked: Identity, held: Identity) -> bool:
    """The same person for e-Creabis: same normalised names, same full birth date, same gender (when asked)."""
    return (asked.born.full is not None and asked.born == held.born
            and name_key(asked.last_name) == name_key(held.last_name)
            and name_key(asked.first_names) == name_key(held.first_names)
            and (asked.gender is None or asked.gender == held.gender))


def identity_key(identity: Identity, evidence: tuple[str, str, str]) -> str:
    """One BIS number per identity: normalised names, birth date and gender; when the birth date is incomplete,
    the identity document too (an incomplete date alone does not tell two namesakes apart)."""
    parts = [name_key(identity.last_name), name_key(identity.first_names), identity.born.text() or "?",
             identity.gender or "?"]
    if identity.born.full is None:
        kind, number, country = evidence
        parts += [kind.upper(), "".join(c for c in number.upper() if c.isalnum()), country.upper()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()
