"""The published WSDL and XSD files, served as they are in wsdl/ and xsd/, with only the addresses made absolute."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

from lxml import etree

from integrator.service import ServiceDefinition

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
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
    tree = etree.parse(str(wsdl_dir / service.wsdl), parser=etree.XMLParser(resolve_entities=False,
                                                                             no_network=True))
    document_url = f"{base_url}/wsdl/{service.wsdl}"
    for address in tree.iter(f"{{{SOAP_BINDING_NS}}}address"):
        address.set("location", f"{base_url}{service.path}")
    for node in tree.iter(f"{{{XS_NS}}}import", f"{{{XS_NS}}}include"):
        location = node.get("schemaLocation")
        if location:
            node.set("schemaLocation", urljoin(document_url, location))
    return etree.tostring(tree, xml_declaration=True, encoding="utf-8")


def schema_paths(service: ServiceDefinition) -> list[str]:
    """The service's XSD and the common types, relative to xsd/."""
    return [service.xsd, "common/v1/common.xsd"]
