"""e-Creabis matching: normalised names, phonetic and fuzzy similarity, birth-date tolerance, ranking, exact match
and the identity key."""

from __future__ import annotations

import pytest

from repository.bis_numbers import PartialDate
from services.matching import (
    Identity,
    birth_similarity,
    core,
    fold,
    identity_key,
    is_exact,
    name_key,
    name_similarity,
    relevant,
    score,
)

AHMED = Identity("El Amrani", "Ahmed", PartialDate(1986, 7, 30), "M", "MA")
LUC = Identity("Wouters", "Luc", PartialDate(1990, 1, 21), "M", "BE")
SOFIE = Identity("Claes", "Sofie", PartialDate(1979, 11, 3), "F", "BE")
MARIA = Identity("Janssens", "Maria", PartialDate(1948, 2, 14), "F", "BE")
PEOPLE = (AHMED, LUC, SOFIE, MARIA)
PASSPORT = ("PASSPORT", "AB 123456", "MA")


def test_names_are_folded_for_case_accents_hyphens_and_particles() -> None:
    assert fold("  Ñúñez-GARCÍA d'Óliveira ") == "nunez garcia d oliveira"
    assert name_key("Van den Berg") == name_key("VANDENBERG") == name_key("van-den-Berg") == "vandenberg"
    assert core("El Amrani") == core("Amrani") == "amrani"
    assert core("van der Veken") == "veken"
    assert core("MacDonald") == "macdonald"  # Mac is no separable particle
    assert core("De") == "de"  # a name that is only a particle stays itself


@pytest.mark.parametrize(("asked", "held", "how"), [
    ("JANSSENS", "Janssens", "EXACT"), ("Müller", "Muller", "EXACT"), ("Amrani", "El Amrani", "PARTICLES"),
    ("Jansens", "Janssens", "PHONETIC"), ("Wauters", "Wouters", "PHONETIC"), ("Claas", "Claes", "PHONETIC"),
])
def test_name_similarity_says_how_names_match(asked: str, held: str, how: str) -> None:
    similar, found = name_similarity(asked, held)
    assert found == how and similar >= 0.9, (similar, found)


def test_unrelated_names_are_far_apart() -> None:
    similar, how = name_similarity("Wouters", "Janssens")
    assert how == "FUZZY" and similar < 0.7


@pytest.mark.parametrize(("asked", "held", "how", "lowest", "highest"), [
    (PartialDate(1979, 11, 3), PartialDate(1979, 11, 3), "EXACT", 1.0, 1.0),
    (PartialDate(1979, 3, 11), PartialDate(1979, 11, 3), "DAY_MONTH_SWAPPED", 0.8, 0.9),
    (PartialDate(1980, 11, 3), PartialDate(1979, 11, 3), "YEAR_OFF", 0.6, 0.8),
    (PartialDate(1979), PartialDate(1979, 11, 3), "PARTIAL", 0.8, 0.9),
    (PartialDate(1979, 11), PartialDate(1979, 11, 3), "PARTIAL", 0.8, 0.9),
    (PartialDate(1979, 11, 5), PartialDate(1979, 11, 3), "NEAR", 0.5, 0.7),
    (PartialDate(1979, 5, 20), PartialDate(1979, 11, 3), "DIFFERENT", 0.0, 0.4),
    (PartialDate(1975, 11, 3), PartialDate(1979, 11, 3), "DIFFERENT", 0.0, 0.0),
])
def test_birth_dates_match_with_tolerance(asked: PartialDate, held: PartialDate, how: str, lowest: float,
                                          highest: float) -> None:
    found = birth_similarity(asked, held)
    assert found is not None and found[1] == how and lowest <= found[0] <= highest, found


def test_an_unknown_birth_date_is_no_evidence_either_way() -> None:
    assert birth_similarity(PartialDate(), PartialDate(1979, 11, 3)) is None
    assert birth_similarity(PartialDate(1979), PartialDate()) is None


def ranked(asked: Identity) -> list[Identity]:
    scored = sorted(((score(asked, p), p) for p in PEOPLE), key=lambda sp: -sp[0].score)
    return [p for s, p in scored if relevant(s)]


def test_a_misspelt_name_ranks_the_right_person_first() -> None:
    found = ranked(Identity("El Amrany", "Ahmet", PartialDate(1986, 7, 30)))
    assert found[0] == AHMED


def test_a_phonetic_variant_with_a_partial_birth_date_finds_the_person() -> None:
    asked = Identity("Wauters", "Luk", PartialDate(1990))
    assert ranked(asked) == [LUC]
    reasons = {r.criterion: r.match for r in score(asked, LUC).reasons}
    assert reasons == {"LastName": "PHONETIC", "FirstNames": "PHONETIC", "BirthDate": "PARTIAL"}


def test_names_given_the_other_way_round_still_match() -> None:
    scored = score(Identity("Sofie", "Claes", PartialDate(1979, 11, 3)), SOFIE)
    assert relevant(scored) and scored.reasons[0].match == "SWAPPED"


def test_gender_and_nationality_weigh_in() -> None:
    asked = Identity("Claes", "Sofie", PartialDate(1979, 11, 3), "F", "BE")
    other = Identity("Claes", "Sofie", PartialDate(1979, 11, 3), "M", "NL")
    assert score(asked, SOFIE).score == 100.0
    assert score(asked, other).score < score(asked, SOFIE).score


def test_nobody_resembling_the_name_gives_no_candidate() -> None:
    assert ranked(Identity("Nakamura", "Hiro", PartialDate(1986, 7, 30))) == []


def test_exact_match_needs_normalised_names_full_birth_date_and_gender() -> None:
    assert is_exact(Identity("el-amrani", "AHMED", PartialDate(1986, 7, 30), "M"), AHMED)
    assert is_exact(Identity("El Amrani", "Ahmed", PartialDate(1986, 7, 30)), AHMED)  # gender not asked
    assert not is_exact(Identity("El Amrani", "Ahmed", PartialDate(1986, 7, 30), "F"), AHMED)
    assert not is_exact(Identity("El Amrani", "Ahmed", PartialDate(1986, 7)), AHMED)
    assert not is_exact(Identity("Amrani", "Ahmed", PartialDate(1986, 7, 30), "M"), AHMED)


def test_identity_key_is_one_per_identity_and_takes_the_document_when_the_date_is_incomplete() -> None:
    same = Identity("EL AMRANI", "ahmed", PartialDate(1986, 7, 30), "M", "FR")
    assert identity_key(AHMED, PASSPORT) == identity_key(same, ("IDENTITY_CARD", "X1", "FR"))
    assert identity_key(AHMED, PASSPORT) != identity_key(Identity("El Amrani", "Ahmed", PartialDate(1986, 7, 30),
                                                                  "F"), PASSPORT)
    partial = Identity("El Amrani", "Ahmed", PartialDate(1986), "M", "MA")
    assert identity_key(partial, PASSPORT) == identity_key(partial, ("PASSPORT", "ab-123456", "MA"))
    assert identity_key(partial, PASSPORT) != identity_key(partial, ("PASSPORT", "AB 654321", "MA"))
    assert len(identity_key(partial, PASSPORT)) == 64
