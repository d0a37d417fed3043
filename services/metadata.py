"""Service discovery (X-Road-like metadata): the services this integrator offers, their operations, the ones the
calling official may use, and their contract documents, always addressed to this integrator."""

from __future__ import annotations

import base64
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy.orm import Session

from integrator.config import PROJECT_ROOT
from integrator.faults import InternalError, ServiceUnknown
from integrator.service import CallContext, HandlerResult, Operation, ServiceDefinition
from repository.catalogue_queries import allowed_services, backend_urls, newest_callable
from repository.documents import IMPORTS, CompiledContract, DocumentSet, InvalidDocuments
from repository.models import ServiceVersion
from repository.registry import current_version, documents, find_version, list_versions

NS = "urn:kruispunt:Metadata:v1"
SOAP_ADDRESSES = ("{http://schemas.xmlsoap.org/wsdl/soap/}address", "{http://schemas.xmlsoap.org/wsdl/soap12/}address")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def endpoint(ctx: CallContext, name: str, major: int) -> str:
    return f"{ctx.base_url}/soap/{name}/v{major}"


def major_of(service: ServiceDefinition) -> int:
    """'v1' -> 1: code-backed services are published as version major.0."""
    return int(service.version.removeprefix("v"))


def code_backed(ctx: CallContext, name: str, major: int | None = None) -> ServiceDefinition | None:
    """The integrator's own (code-backed) service of that name, as the pipeline tells its services."""
    return next((s for s in ctx.services if s.name == name and (major is None or major_of(s) == major)), None)


# --- ListServices ---------------------------------------------------------------------------------------------
def list_services(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """Every active or deprecated version in the repository, and the code-backed services."""
    entries: list[dict[str, Any]] = [
        {"Name": s.name, "Version": f"{major_of(s)}.0", "Status": "active", "Description": s.description or s.title,
         "Endpoint": ctx.base_url + s.path, "Origin": "local"}
        for s in ctx.services
    ]
    session = ctx.session
    entries.extend(_listed(ctx, row) for row in list_versions(session, callable_only=True))
    entries.sort(key=lambda e: (e["Name"], *map(int, e["Version"].split("."))))
    return HandlerResult({"Service": entries})


def _listed(ctx: CallContext, row: ServiceVersion) -> dict[str, Any]:
    return {"Name": row.name, "Version": row.version, "Status": row.status, "Description": row.description or "",
            "Endpoint": endpoint(ctx, row.name, row.major), "Origin": row.origin, "Sunset": row.sunset,
            "Successor": row.successor}


# --- ListOperations -------------------------------------------------------------------------------------------
def list_operations(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """The operations the endpoint /soap/{Name}/v{Major} serves."""
    name, major = str(request["Name"]), int(request["Major"])
    service = code_backed(ctx, name, major)
    if service is not None:
        operations = [operation_entry(op.name, op.request, op.response, op.soap_action) for op in service.operations]
        return HandlerResult({"Name": name, "Version": f"{major}.0", "Operation": operations})
    session = ctx.session
    row = current_version(session, name, major)
    if row is None:
        raise ServiceUnknown(f"{name} v{major} has no published version on this integrator; "
                             "ListServices names the services there are.")
    version, docs = row.version, documents(session, row)
    compiled = _compiled(docs, f"{name} {version}")
    operations = [operation_entry(op.name, op.request, op.response, op.soap_action)
                  for op in compiled.operations.values()]
    return HandlerResult({"Name": name, "Version": version, "Operation": operations})


def _compiled(docs: DocumentSet, label: str) -> CompiledContract:
    try:
        return docs.compile()
    except InvalidDocuments as exc:  # stored documents compiled when registered; this would be a repository fault
        raise InternalError(f"The stored documents of {label} no longer compile: {exc}") from None


def operation_entry(name: str, request: str, response: str, soap_action: str) -> dict[str, Any]:
    return {"Name": name, "Request": _element_name(request), "Response": _element_name(response),
            "SoapAction": soap_action or None}


def _element_name(clark: str) -> dict[str, str]:
    qname = etree.QName(clark)
    return {"Namespace": qname.namespace or "", "LocalName": qname.localname}


# --- ListAllowedServices --------------------------------------------------------------------------------------
def list_allowed_services(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """What the calling official may use today: active, valid grants within the organisation's access rights."""
    session = ctx.session
    allowed = allowed_services(session, ctx.organisation.id, ctx.official, ctx.received_at.date())
    return HandlerResult({"Service": [{"Name": name, "Purpose": purposes} for name, purposes in allowed]})


# --- GetWsdl --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContractDocuments:
    name: str
    version: str
    major: int
    docs: DocumentSet


def get_wsdl(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """The WSDL and its schemas as registered, with every soap:address pointing at this integrator."""
    name, version = str(request["Name"]), request.get("Version")
    session = ctx.session
    contract = _code_backed_contract(ctx, name, version) or _registered_contract(session, ctx, name, version)
    hidden = backend_urls(session, f"{contract.name}/v{contract.major}")  # never to leave this integrator
    address = endpoint(ctx, contract.name, contract.major)
    docs = public_documents(contract.docs, address, hidden)
    ordered = sorted(docs.files.items(), key=lambda item: (item[0] != docs.wsdl, item[0]))  # the WSDL first
    return HandlerResult({
        "Name": contract.name,
        "Version": contract.version,
        "Endpoint": address,
        "Wsdl": docs.wsdl,
        "Document": [{"Path": path, "Content": base64.b64encode(content).decode()} for path, content in ordered],
    })


def _code_backed_contract(ctx: CallContext, name: str, version: str | None) -> ContractDocuments | None:
    service = code_backed(ctx, name)
    if service is None or (version is not None and version != f"{major_of(service)}.0"):
        return None
    wsdl = f"wsdl/{service.wsdl}"
    return ContractDocuments(name, f"{major_of(service)}.0", major_of(service),
                             DocumentSet(wsdl, _closure(PROJECT_ROOT, wsdl)))


def _registered_contract(session: Session, ctx: CallContext, name: str, version: str | None) -> ContractDocuments:
    """The asked version (or the newest callable one); a draft only for the organisation that owns it."""
    row = newest_callable(session, name) if version is None else find_version(session, name, str(version))
    if row is None or (row.status == "draft" and row.owner != ctx.organisation.enterprise_number):
        which = f"{name} {version}" if version else f"{name} (active or deprecated)"
        raise ServiceUnknown(f"No version {which} is registered on this integrator; "
                             "ListServices names the services there are.")
    return ContractDocuments(row.name, row.version, row.major, documents(session, row))


def public_documents(docs: DocumentSet, address: str, hidden: list[str] | tuple[str, ...] = ()) -> DocumentSet:
    """The documents with the WSDL's soap:address set to address, and no backend address left anywhere in them."""
    files = dict(docs.files)
    root = etree.fromstring(files[docs.wsdl], parser=_PARSER)
    for node in root.iter(*SOAP_ADDRESSES):
        node.set("location", address)
    files[docs.wsdl] = etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8")
    for url in sorted({u.rstrip("/") for u in hidden if u.rstrip("/")}, key=len, reverse=True):
        # the address as a whole token, with or without its trailing slash; never a prefix of a longer URI
        token = re.compile(re.escape(url.encode()) + rb"/?(?![A-Za-z0-9._~%!$&'()*+,;=:@/?#-])")
        files = {path: token.sub(address.encode(), content) for path, content in files.items()}
    return DocumentSet(docs.wsdl, files)


def _closure(root: Path, start: str) -> dict[str, bytes]:
    """A published WSDL and every document it imports, directly or not, by paths relative to root."""
    found: dict[str, bytes] = {}
    pending = [start]
    while pending:
        relative = pending.pop()
        if relative in found:
            continue
        target = (root / relative).resolve()
        if not target.is_relative_to(root.resolve()) or not target.is_file():
            raise InternalError(f"The published contract refers to {relative}, which is not a project file.")
        found[relative] = target.read_bytes()
        for node in etree.fromstring(found[relative], parser=_PARSER).iter(*IMPORTS):
            location = node.get("schemaLocation") or node.get("location")
            if location and "://" not in location:
                pending.append(posixpath.normpath(posixpath.join(posixpath.dirname(relative), location)))
    return found


SERVICE = ServiceDefinition(
    name="Metadata",
    version="v1",
    title="Service discovery",
    description=(
        "Which services this integrator offers and where to call them, their operations, which of them the "
        "calling official may use and for which purposes, and their WSDL and schemas."
    ),
    wsdl="Metadata-v1.wsdl",
    xsd="Metadata/v1/Metadata.xsd",
    operations=(
        Operation(name="ListServices", request=f"{{{NS}}}ListServicesRequest",
                  response=f"{{{NS}}}ListServicesResponse", handler=list_services,
                  soap_action=f"{NS}:ListServices"),
        Operation(name="ListOperations", request=f"{{{NS}}}ListOperationsRequest",
                  response=f"{{{NS}}}ListOperationsResponse", handler=list_operations,
                  soap_action=f"{NS}:ListOperations"),
        Operation(name="ListAllowedServices", request=f"{{{NS}}}ListAllowedServicesRequest",
                  response=f"{{{NS}}}ListAllowedServicesResponse", handler=list_allowed_services,
                  soap_action=f"{NS}:ListAllowedServices"),
        Operation(name="GetWsdl", request=f"{{{NS}}}GetWsdlRequest", response=f"{{{NS}}}GetWsdlResponse",
                  handler=get_wsdl, soap_action=f"{NS}:GetWsdl"),
    ),
)
