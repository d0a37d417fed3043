"""Every administrative operation as a plain function; the CLI is a thin layer over these."""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from cryptography import x509
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.be import vat

from integrator.config import Settings
from integrator.contract import check_insz
from integrator.pki import Identity, create_ca, issue, load_crl, write_crl
from repository import access_rights, backends, certificates, directory, grants, officials, registry
from repository.actors import Actor
from repository.documents import IMPORTS, DocumentSet
from repository.grants import GrantView
from repository.models import AccessRight, Backend, Organisation, Peer, ServiceVersion
from repository.officials import OfficialView

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def db_upgrade(settings: Settings, revision: str = "head") -> None:
    """Create or migrate the schema with Alembic."""
    alembic_command.upgrade(alembic_config(settings.database_url), revision)


# --- PKI ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoPki:
    ca: Identity
    integrator: Identity


def pki_init(settings: Settings, organisations: list[tuple[str, str]], backends: list[str],
             force: bool = False) -> DemoPki:
    """Make the demo CA, the integrator's certificate, one per organisation and backend, and a CRL."""
    pki = settings.pki_dir
    ca_id = Identity("ca", pki / "ca.crt", pki / "ca.key")
    if ca_id.cert_path.exists() and not force:
        for enterprise_number, name in organisations:  # as do organisations added since
            if not (pki / f"org-{enterprise_number}.crt").exists():
                issue(ca_id, pki, f"org-{enterprise_number}", common_name=name, organization=name,
                      serial_number=enterprise_number)
        for backend in backends:  # backends added since the demo PKI was made get their certificate
            if not (pki / f"backend-{backend}.crt").exists():
                issue(ca_id, pki, f"backend-{backend}", common_name=f"authentic source {backend}",
                      organization=backend)
        return DemoPki(ca_id, Identity("integrator", pki / "integrator.crt", pki / "integrator.key"))
    ca = create_ca(pki)
    integrator = issue(ca, pki, "integrator", common_name="kruispunt integrator", organization="kruispunt")
    for enterprise_number, name in organisations:
        issue(ca, pki, f"org-{enterprise_number}", common_name=name, organization=name,
              serial_number=enterprise_number)
    for backend in backends:
        issue(ca, pki, f"backend-{backend}", common_name=f"authentic source {backend}", organization=backend)
    write_crl(ca, settings.crl_path, [], next_update_days=30)
    return DemoPki(ca, integrator)


def refresh_crl(settings: Settings, min_days_left: int = 7) -> bool:
    """Re-issue the demo CRL (same serials) when it is due within min_days_left; True if it was."""
    crl = load_crl(settings.crl_path)
    if crl.next_update_utc is not None and crl.next_update_utc - datetime.now(UTC) > timedelta(days=min_days_left):
        return False
    pki = settings.pki_dir
    write_crl(Identity("ca", pki / "ca.crt", pki / "ca.key"), settings.crl_path,
              sorted(r.serial_number for r in crl), next_update_days=30)
    return True


def revoke(settings: Settings, cert_path: Path) -> list[int]:
    """Add a certificate to the demo CA's CRL; return the serial numbers now revoked."""
    pki = settings.pki_dir
    ca = Identity("ca", pki / "ca.crt", pki / "ca.key")
    revoked = {r.serial_number for r in load_crl(settings.crl_path)} if settings.crl_path.exists() else set()
    revoked.add(x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number)
    write_crl(ca, settings.crl_path, sorted(revoked), next_update_days=30)
    return sorted(revoked)


# --- repository -----------------------------------------------------------------------------------------
KINDS = ("municipality", "pcsw", "institution", "integrator")
NIS_CODE = re.compile(r"[1-9][0-9]{4}")


def operator() -> Actor:
    """The service desk, as the operator at this command line (KRUISPUNT_OPERATOR, or the login name)."""
    return Actor.service_desk(os.environ.get("KRUISPUNT_OPERATOR") or getpass.getuser())


def check_enterprise_number(enterprise_number: str) -> str:
    """Exactly ten digits with valid check digits: stdnum alone would take nine digits and add a leading zero."""
    if not (len(enterprise_number) == 10 and enterprise_number.isdigit() and vat.is_valid(enterprise_number)):
        raise ValueError(f"{enterprise_number!r} is not a valid enterprise number: give its ten digits "
                         "(0 or 1 first, check digits last), for example 0207123407")
    return enterprise_number


def add_organisation(session: Session, enterprise_number: str, name: str, kind: str,
                     nis_code: str | None = None) -> Organisation:
    check_enterprise_number(enterprise_number)
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} must be one of {', '.join(KINDS)}")
    if nis_code is not None and NIS_CODE.fullmatch(nis_code) is None:
        raise ValueError(f"NIS code {nis_code!r} must be the municipality's five digits, for example 44021")
    if not name.strip():
        raise ValueError("the organisation's name is empty")
    org = session.execute(select(Organisation).where(Organisation.enterprise_number == enterprise_number)
                          ).scalar_one_or_none()
    if org is None:
        org = Organisation(enterprise_number=enterprise_number, name=name, kind=kind, nis_code=nis_code)
        session.add(org)
    else:
        org.name, org.kind, org.nis_code = name, kind, nis_code
    session.flush()
    return org


def register_certificate(session: Session, enterprise_number: str, cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return certificates.register(session, _organisation(session, enterprise_number).id, cert)


def add_official(session: Session, enterprise_number: str, insz: str, name: str, email: str | None = None,
                 department: str | None = None, actor: Actor | None = None) -> OfficialView:
    """Register an official as the service desk (repository/officials.py has the rules)."""
    return officials.register_official(session, actor or operator(), _organisation(session, enterprise_number).id,
                                       insz, name, email, department)[0]


def add_access_right(session: Session, enterprise_number: str, service: str,
                     code_backed: Collection[str] | None = None, actor: Actor | None = None) -> AccessRight:
    """Let an organisation use a service at all (its officials still need grants). code_backed: the names of the
    services published in code (the CLI passes them, so an unknown service is refused); None: the caller vouches."""
    return access_rights.add_access_right(session, actor or operator(), _organisation(session, enterprise_number).id,
                                          service, code_backed)[0]


def add_grant(session: Session, enterprise_number: str, insz: str, service: str, purpose: str,
              valid_from: date | None = None, valid_until: date | None = None, reason: str = "granted by the "
              "service desk", code_backed: Collection[str] | None = None, actor: Actor | None = None) -> GrantView:
    """Grant as the service desk (repository/grants.py has the rules); the same grant again changes nothing."""
    return grants.grant(session, actor or operator(), _organisation(session, enterprise_number).id, insz, service,
                        purpose, valid_from or date(2000, 1, 1), valid_until, reason, code_backed)[0]


def add_backend(session: Session, service: str, name: str, url: str, cert_pem: bytes,
                timeout_seconds: float = 5.0, *, priority: int = 0, weight: int = 1, security: str = "x509",
                idempotent: list[str] | None = None, code_backed: Collection[str] | None = None) -> Backend:
    """Register (or update) a backend endpoint of a service version ("Name/vMajor"); code_backed: the keys of the
    services published in code (the CLI passes them, so a backend for an unknown service is refused)."""
    return backends.register_backend(session, service, name, url, cert_pem, timeout_seconds, priority=priority,
                                     weight=weight, security=security, idempotent=idempotent,
                                     code_backed=code_backed)[0]


def organisation_id(session: Session, enterprise_number: str) -> int:
    return _organisation(session, enterprise_number).id


def list_organisations(session: Session) -> list[Organisation]:
    return list(session.execute(select(Organisation).order_by(Organisation.enterprise_number)).scalars())


def list_backends(session: Session, service: str | None = None) -> list[Backend]:
    query = select(Backend).order_by(Backend.service, Backend.priority, Backend.name)
    return list(session.execute(query.where(Backend.service == service) if service else query).scalars())


def end_backend(session: Session, service: str, name: str) -> Backend:
    """Stop calling a backend endpoint (it stays registered; kruispunt backend add makes it active again)."""
    backend = session.execute(select(Backend).where(Backend.service == service, Backend.name == name)
                              ).scalar_one_or_none()
    if backend is None:
        raise LookupError(f"no backend {name!r} registered for {service}")
    backend.active = False
    session.flush()
    return backend


def _organisation(session: Session, enterprise_number: str) -> Organisation:
    org = session.execute(select(Organisation).where(Organisation.enterprise_number == enterprise_number)
                          ).scalar_one_or_none()
    if org is None:
        raise LookupError(f"no organisation with enterprise number {enterprise_number}")
    return org


# --- services repository ---------------------------------------------------------------------------------
def read_documents(wsdl: Path, root: Path | None = None) -> DocumentSet:
    """A WSDL and every file below root (default: the WSDL's parent's parent) that it or its XSDs import."""
    root = (root or wsdl.resolve().parent.parent).resolve()
    files: dict[str, bytes] = {}
    pending = [wsdl.resolve()]
    while pending:
        path = pending.pop()
        name = path.relative_to(root).as_posix()
        if name in files:
            continue
        files[name] = path.read_bytes()
        tree = etree.fromstring(files[name], parser=etree.XMLParser(resolve_entities=False, no_network=True))
        for node in tree.iter(*IMPORTS):
            location = node.get("schemaLocation") or node.get("location")
            if location and "://" not in location:
                target = (path.parent / location).resolve()
                if target.is_relative_to(root) and target.is_file():
                    pending.append(target)
    return DocumentSet(wsdl.resolve().relative_to(root).as_posix(), files)


def register_service(session: Session, name: str, version: str, docs: DocumentSet, owner: str,
                     description: str = "", federated: bool = False, *,
                     person_element: str | None = None) -> ServiceVersion:
    row, _ = registry.register_version(session, name, version, docs, owner=owner, description=description,
                                       federated=federated)
    row.person_element = person_element
    return row


def add_directory_entry(session: Session, enterprise_number: str, insz: str, purpose: str, start: date,
                        end: date | None = None) -> bool:
    """Declare that an organisation has a file on a person for a purpose and period; True if it was new."""
    check_insz(insz, "person INSZ")
    _, created = directory.register(session, _organisation(session, enterprise_number).id, insz, purpose, start, end)
    return created


def add_peer(session: Session, name: str, url: str, cert_pem: bytes, enterprise_number: str) -> Peer:
    """Register another integrator: its organisation, its signing certificate, and where it answers."""
    org = add_organisation(session, enterprise_number, f"integrator {name}", "integrator")
    register_certificate(session, enterprise_number, cert_pem)
    peer = session.execute(select(Peer).where(Peer.name == name)).scalar_one_or_none()
    if peer is None:
        peer = Peer(name=name, organisation_id=org.id, cursor=0, synced_versions=0)
        session.add(peer)
    peer.url, peer.certificate_pem, peer.organisation_id = url, cert_pem.decode(), org.id
    session.flush()
    return peer
