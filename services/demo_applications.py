"""Demo data for the applications service: access rights, grants, the applicants in the municipalities' files,
and the two institutions' application intakes (disability-allowance administration, pension service).

Kruisdorp's two officials and Brugstede's official submit applications for purpose SOCIAL_APPLICATION; every
demo person is in the files of Kruisdorp, Brugstede and the OCMW for that purpose. Called by services.demo.load."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from integrator import commands
from integrator.config import Settings
from services.backends.persons import PERSONS
from services.demo_organisations import BRUGSTEDE, KRUISDORP, OCMW, OFFICIALS

SERVICE = "Applications"
PURPOSE_APPLICATION = "SOCIAL_APPLICATION"  # a municipality applies for a social benefit on a citizen's behalf
BACKENDS = (("disability-applications", 8096), ("pension-applications", 8097))
TIMEOUT_SECONDS = 10.0  # an intake files the application before it answers; give it time


def load(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """Idempotent, like everything in the demo."""

    for org in (KRUISDORP, BRUGSTEDE, OCMW):
        commands.add_access_right(session, org.enterprise_number, SERVICE)
        for person in PERSONS:
            commands.add_directory_entry(session, org.enterprise_number, person.insz, PURPOSE_APPLICATION,
                                         date(2000, 1, 1))
    for official in (OFFICIALS[0], OFFICIALS[1], OFFICIALS[2]):  # Kruisdorp (two), Brugstede
        commands.add_grant(session, official.organisation, official.insz, SERVICE, PURPOSE_APPLICATION)
    for name, port in BACKENDS:
        commands.add_backend(session, f"{SERVICE}/v1", name, backend_urls.get(name, f"http://127.0.0.1:{port}/"),
                             (settings.pki_dir / f"backend-{name}.crt").read_bytes(), TIMEOUT_SECONDS)
