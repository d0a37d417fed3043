"""The application-intake reference backends (spyne) speak exactly the ApplicationIntake contract the integrator
validates their answers against, and file an application once per reference while counting every delivery."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from integrator.config import PROJECT_ROOT
from services.backends.applications import make_application, store_for
from tests.unit.test_backend_contract import XS, spyne_schema, structure

XSD = PROJECT_ROOT / "xsd/backends/ApplicationIntake/v1/ApplicationIntake.xsd"


def elements(schema: etree._Element) -> dict[str, str]:
    return {e.get("name", ""): e.get("type", "").rpartition(":")[2] for e in schema.findall(f"{{{XS}}}element")}


def test_spyne_generated_types_match_the_published_xsd(tmp_path: Path) -> None:
    published = etree.parse(str(XSD)).getroot()
    generated = spyne_schema(make_application("disability-applications", tmp_path))
    assert structure(published) == structure(generated)
    assert elements(published) == elements(generated)
    assert {"IntakeMember", "IntakeDocument", "IntakeReceipt", "receive_application",
            "receive_applicationResponse"} <= set(structure(generated))


def test_the_intake_files_once_per_reference_and_counts_every_attempt(tmp_path: Path) -> None:
    store = store_for("pension-applications", tmp_path)
    first, new = store.file("KP-1", "PENSION", "85073003328", "F-1", "0207123400", 2, [b"pdf"])
    again, new_again = store.file("KP-1", "PENSION", "85073003328", "F-1", "0207123400", 2, [b"pdf"])
    other, _ = store.file("KP-2", "PENSION", "85073003328", "F-2", "0207123400", 0, [])
    assert (new, new_again) == (True, False)
    assert again.file_reference == first.file_reference and first.file_reference.startswith("PEN-")
    assert (first.attempts, again.attempts, store.count("KP-1")) == (1, 2, 1)
    assert other.file_reference != first.file_reference
    assert store.received("KP-3") is None and store.count("KP-3") == 0
