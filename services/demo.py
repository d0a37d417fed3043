"""Demo data: organisations, officials, grants and the reference backends, loaded idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from integrator import commands
from integrator.config import PROJECT_ROOT, Settings
from repository import directory, registry
from services import demo_applications, demo_creabis, demo_proposals
from services.backends.catalogue import BACKENDS
from services.backends.persons import PERSONS, make_insz
from services.backends.status_source import SOURCES
from services.tax_exemption import SERVICE as TAX_EXEMPTION

PURPOSE_TAX = "MUNICIPAL_TAX_EXEMPTION"
GENERIC = "StatusSource"
PURPOSE_DISCOVERY = "SERVICE_DISCOVERY"
PURPOSE_REGISTRATION = "SERVICE_REGISTRATION"
PURPOSE_FILES = "FILE_MANAGEMENT"
DIRECTORY = "ReferenceDirectory"
RIGHTS = (TAX_EXEMPTION.name, GENERIC, "Metadata", "Repository", DIRECTORY)  # every demo organisation may use

MUNICIPAL_SERVICES = (demo_proposals, demo_creabis, demo_applications)


def enterprise_number(first8: int) -> str:
    """A syntactically valid enterprise number (check digits mod 97) for synthetic organisations."""
    digits = f"{first8:08d}"
    return f"{digits}{97 - int(digits) % 97:02d}"


@dataclass(frozen=True)
class DemoOrganisation:
    enterprise_number: str
    name: str
    kind: str
    nis_code: str | None


@dataclass(frozen=True)
class DemoOfficial:
    organisation: str
    insz: str
    name: str
    grants: tuple[str, ...]  # services granted for PURPOSE_TAX; every demo official may also discover services


KRUISDORP = DemoOrganisation(enterprise_number(2071234), "Gemeente Kruisdorp", "municipality", "44021")
BRUGSTEDE = DemoOrganisation(enterprise_number(2079876), "Stad Brugstede", "municipality", "31005")
OCMW = DemoOrganisation(enterprise_number(2125555), "OCMW Kruisdorp", "pcsw", None)
INSTITUTION = DemoOrganisation(enterprise_number(2409001), "Sociale Verzekeringsinstelling Demo", "institution", None)
ORGANISATIONS = (KRUISDORP, BRUGSTEDE, OCMW, INSTITUTION)

OFFICIALS = (
    DemoOfficial(KRUISDORP.enterprise_number, make_insz(date(1975, 4, 12), 145), "An Verhoeven (tax office)",
                 (TAX_EXEMPTION.name, GENERIC)),
    DemoOfficial(KRUISDORP.enterprise_number, make_insz(date(1982, 9, 3), 212), "Bart Smets (population office)",
                 ()),
    DemoOfficial(BRUGSTEDE.enterprise_number, make_insz(date(1969, 1, 27), 89), "Carine Jacobs (tax office)",
                 (TAX_EXEMPTION.name,)),
    DemoOfficial(OCMW.enterprise_number, make_insz(date(1991, 12, 5), 33), "Dirk Peeters (social worker)",
                 (TAX_EXEMPTION.name,)),
    DemoOfficial(INSTITUTION.enterprise_number, make_insz(date(1980, 3, 3), 77), "Els Mertens (file handler)",
                 ()),
)


def load(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """Register the demo organisations with their certificates, officials, grants and backends."""
    pki = settings.pki_dir
    for org in ORGANISATIONS:
        created = commands.add_organisation(session, org.enterprise_number, org.name, org.kind, org.nis_code)
        for person in PERSONS:  # every demo organisation has a file on every demo person, for tax exemptions
            directory.register(session, created.id, person.insz, PURPOSE_TAX, date(2000, 1, 1))
        commands.register_certificate(session, org.enterprise_number,
                                      (pki / f"org-{org.enterprise_number}.crt").read_bytes())
        for service in RIGHTS:
            commands.add_access_right(session, org.enterprise_number, service)
    for official in OFFICIALS:
        commands.add_official(session, official.organisation, official.insz, official.name)
        for service in official.grants:
            commands.add_grant(session, official.organisation, official.insz, service, PURPOSE_TAX)
        commands.add_grant(session, official.organisation, official.insz, "Metadata", PURPOSE_DISCOVERY)
        commands.add_grant(session, official.organisation, official.insz, DIRECTORY, PURPOSE_FILES)
    first = OFFICIALS[0]
    commands.add_grant(session, first.organisation, first.insz, "Repository", PURPOSE_REGISTRATION)
    for spec in SOURCES:
        url = backend_urls.get(spec.name, f"http://127.0.0.1:{spec.port}/")
        commands.add_backend(session, TAX_EXEMPTION.key, spec.name, url,
                             (pki / f"backend-{spec.name}.crt").read_bytes())
    _generic_demo(settings, session, backend_urls)
    for module in MUNICIPAL_SERVICES:  # each municipal service loads its own demo rights, grants and backends
        module.load(settings, session, backend_urls)
    session.commit()


def _generic_demo(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """StatusSource v1: a backend's own contract published by generic dispatch, registered in the repository."""
    commands.add_organisation(session, settings.enterprise_number, f"integrator {settings.name}", "integrator")
    if registry.find_version(session, GENERIC, "1.0") is None:
        docs = commands.read_documents(PROJECT_ROOT / "wsdl" / "StatusSource-v1.wsdl", PROJECT_ROOT)
        commands.register_service(session, GENERIC, "1.0", docs, settings.enterprise_number,
                                  "One authentic source's status periods, passed through unchanged.", federated=True)
        registry.set_lifecycle(session, GENERIC, "1.0", "active")
    source = SOURCES[0]
    commands.add_backend(session, f"{GENERIC}/v1", source.name,
                         backend_urls.get(source.name, f"http://127.0.0.1:{source.port}/"),
                         (settings.pki_dir / f"backend-{source.name}.crt").read_bytes(),
                         idempotent=["get_statuses"])


def pki_init(settings: Settings, force: bool = False) -> commands.DemoPki:
    return commands.pki_init(settings, [(o.enterprise_number, o.name) for o in ORGANISATIONS],
                             [b.name for b in BACKENDS], force=force)
