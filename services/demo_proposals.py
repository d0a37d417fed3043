"""Demo data for the proposals service: access rights, grants, reference backends.

The institution's file handler proposes updates (and has every demo person in its files for that purpose); the
population offices of Kruisdorp and Brugstede decide them; the National Register reference backend answers where
a person is registered and receives the accepted updates. Called by services.demo.load."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from integrator import commands
from integrator.config import Settings
from services.backends.persons import PERSONS
from services.demo_organisations import BRUGSTEDE, INSTITUTION, KRUISDORP, OFFICIALS

SERVICE = "UpdateProposals"
BACKEND = "national-register"
BACKEND_PORT = 8095
PURPOSE_PROPOSAL = "NR_UPDATE_PROPOSAL"  # an institution proposes a correction of National Register data
PURPOSE_POPULATION = "POPULATION_REGISTER"  # a municipality's population office keeps the register


def load(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """Idempotent, like everything in the demo."""

    for org in (INSTITUTION, KRUISDORP, BRUGSTEDE):
        commands.add_access_right(session, org.enterprise_number, SERVICE)
    proposer = OFFICIALS[4]  # the institution's file handler
    commands.add_grant(session, proposer.organisation, proposer.insz, SERVICE, PURPOSE_PROPOSAL)
    for population in (OFFICIALS[1], OFFICIALS[2]):  # Kruisdorp's population office, Brugstede's official
        commands.add_grant(session, population.organisation, population.insz, SERVICE, PURPOSE_POPULATION)
    for person in PERSONS:
        commands.add_directory_entry(session, INSTITUTION.enterprise_number, person.insz, PURPOSE_PROPOSAL,
                                     date(2000, 1, 1))
    commands.add_backend(session, f"{SERVICE}/v1", BACKEND,
                         backend_urls.get(BACKEND, f"http://127.0.0.1:{BACKEND_PORT}/"),
                         (settings.pki_dir / f"backend-{BACKEND}.crt").read_bytes())
