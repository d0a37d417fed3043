"""GET /services: the catalogue of published services, as HTML for people and as a plain WSDL list."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from integrator.faces.documents import schema_paths
from integrator.service import ServiceDefinition
from repository.documents import operation_names
from repository.registry import document_listing, list_versions


@dataclass(frozen=True)
class Entry:
    """One service version in the catalogue, wherever it comes from."""

    name: str
    version: str
    path: str  # the SOAP endpoint, relative to the integrator
    description: str
    operations: tuple[str, ...]
    schemas: tuple[str, ...]  # URLs relative to the integrator
    origin: str = "local"
    status: str = "active"


def code_entry(service: ServiceDefinition) -> Entry:
    return Entry(service.name, service.version.lstrip("v") + ".0", service.path, service.description,
                 tuple(op.name for op in service.operations), tuple(f"/xsd/{p}" for p in schema_paths(service)))


def repository_entries(sessions: sessionmaker[Session]) -> list[Entry]:
    """The callable repository versions (the highest minor of each major), local or learnt from peers."""
    with sessions() as session:
        latest: dict[tuple[str, int], Any] = {}
        for row in list_versions(session, callable_only=True):
            latest[(row.name, row.major)] = row
        listing = document_listing(session, [row.id for row in latest.values()])
    entries = []
    for row in latest.values():
        paths, wsdl = listing.get(row.id, ([], b""))
        schemas = tuple(f"/repository/{row.name}/{row.version}/{p}" for p in sorted(paths) if p != row.wsdl)
        entries.append(Entry(row.name, row.version, f"/soap/{row.name}/v{row.major}", row.description,
                             operation_names(wsdl), schemas, row.origin, row.status))
    return entries


def wsdl_list(entries: list[Entry], base_url: str) -> str:
    """One absolute WSDL URL a line, as Apache CXF answers ?formatted=false&wsdlList=true."""
    return "".join(f"{base_url}{e.path}?wsdl\n" for e in entries)


def html_page(entries: list[Entry], base_url: str) -> str:
    rows = []
    for e in entries:
        schemas = ", ".join(f'<a href="{base_url}{escape(p)}">{escape(p.rsplit("/", 1)[-1])}</a>' for p in e.schemas)
        operations = ", ".join(escape(op) for op in e.operations)
        rows.append(
            f"<tr><td><b>{escape(e.name)}</b> {escape(e.version)}<br><small>{escape(e.description)}</small></td>"
            f"<td>{escape(e.status)}</td><td>{escape(e.origin)}</td>"
            f"<td><code>{escape(base_url + e.path)}</code></td><td>{operations}</td>"
            f'<td><a href="{base_url}{escape(e.path)}?wsdl">WSDL</a></td><td>{schemas}</td></tr>'
        )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>kruispunt services</title>"
        "<style>body{font-family:sans-serif}td,th{border-bottom:1px solid #ccc;padding:4px;text-align:left}"
        "</style></head><body><h1>Published services</h1>"
        "<table><tr><th>Service</th><th>Status</th><th>Origin</th><th>Endpoint</th><th>Operations</th>"
        "<th>WSDL</th><th>Schemas</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
