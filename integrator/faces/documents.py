"""The published WSDL and XSD files, served as they are in wsdl/ and xsd/, with only the addresses made absolute."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from lxml import etree
from sqlalchemy.orm import Session, sessionmaker

from integrator.service import ServiceDefinition
from repository.registry import RegistrationRefused, current_version, documents, find_version

if TYPE_CHECKING:
    pass

SOAP_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XS_NS = "http://www.w3.org/2001/XMLSchema"


def static_file(root: Path, relative: str) -> bytes | None:
    """A file below root, or None; nothing outside root is ever served."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        return None
    return target.read_bytes()


def published_wsdl(wsdl_dir: Path, service: ServiceDefinition, base_url: str) -> bytes:
    """The service's WSDL file with its soap:address and schema imports as absolute URLs of this host."""
    return rewrite_wsdl((wsdl_dir / service.wsdl).read_bytes(), f"{base_url}/wsdl/{service.wsdl}",
                        f"{base_url}{service.path}")


def rewrite_wsdl(content: bytes, document_url: str, endpoint_url: str) -> bytes:
    """Every soap:address becomes this integrator's endpoint (a backend's address never shows), every schema
    location an absolute URL resolved against where the WSDL is served."""
    root = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    for address in root.iter(f"{{{SOAP_BINDING_NS}}}address"):
        address.set("location", endpoint_url)
    for node in root.iter(f"{{{XS_NS}}}import", f"{{{XS_NS}}}include"):
        location = node.get("schemaLocation")
        if location:
            node.set("schemaLocation", urljoin(document_url, location))
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8")


def schema_paths(service: ServiceDefinition) -> list[str]:
    """The service's XSD and the common types, relative to xsd/."""
    return [service.xsd, "common/v1/common.xsd"]


def repository_wsdl(sessions: sessionmaker[Session], name: str, major: int, base_url: str) -> bytes | None:
    """A repository version's WSDL as stored, pointing at this integrator, its schemas served from here."""
    with sessions() as session:
        row = current_version(session, name, major)
        if row is None:
            return None
        docs = documents(session, row)
    return rewrite_wsdl(docs.files[docs.wsdl], f"{base_url}/repository/{name}/{row.version}/{docs.wsdl}",
                        f"{base_url}/soap/{name}/v{major}")


def repository_document(sessions: sessionmaker[Session], name: str, version: str, path: str) -> bytes | None:
    """One stored XSD of a repository version, as registered (relative imports resolve next to it)."""
    with sessions() as session:
        try:
            row = find_version(session, name, version)
        except RegistrationRefused:
            return None
        if row is None or row.status == "draft":
            return None
        return documents(session, row).files.get(path)
