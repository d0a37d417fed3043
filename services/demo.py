"""Demo data: organisations, officials, grants and the reference backends, loaded idempotently."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from integrator import commands
from integrator.config import PROJECT_ROOT, Settings
from repository import directory, registry
from services import demo_access, demo_applications, demo_creabis, demo_portal, demo_proposals
from services.backends.catalogue import BACKENDS
from services.backends.persons import PERSONS
from services.backends.status_source import SOURCES
from services.demo_organisations import (
    DIRECTORY,
    GENERIC,
    OFFICIALS,
    ORGANISATIONS,
    PURPOSE_DISCOVERY,
    PURPOSE_FILES,
    PURPOSE_REGISTRATION,
    PURPOSE_TAX,
    RIGHTS,
)
from services.tax_exemption import SERVICE as TAX_EXEMPTION

MUNICIPAL_SERVICES = (demo_proposals, demo_creabis, demo_applications, demo_access,  # access last: see there
                      demo_portal)  # but for the portal's log-ons, which need every official, administrators too


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
