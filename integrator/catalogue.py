"""GET /services: the catalogue of published services, as HTML for people and as a plain WSDL list."""

from __future__ import annotations

from html import escape

from integrator.documents import schema_paths
from integrator.service import ServiceDefinition


def wsdl_list(services: list[ServiceDefinition], base_url: str) -> str:
    """One absolute WSDL URL a line, as Apache CXF answers ?formatted=false&wsdlList=true."""
    return "".join(f"{base_url}{s.path}?wsdl\n" for s in services)


def html_page(services: list[ServiceDefinition], base_url: str) -> str:
    rows = []
    for s in services:
        schemas = ", ".join(f'<a href="{base_url}/xsd/{escape(p)}">{escape(p)}</a>' for p in schema_paths(s))
        operations = ", ".join(escape(op.name) for op in s.operations)
        rows.append(
            f"<tr><td><b>{escape(s.name)}</b> {escape(s.version)}<br><small>{escape(s.description)}</small></td>"
            f"<td><code>{escape(base_url + s.path)}</code></td><td>{operations}</td>"
            f'<td><a href="{base_url}{s.path}?wsdl">WSDL</a></td><td>{schemas}</td></tr>'
        )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>kruispunt services</title>"
        "<style>body{font-family:sans-serif}td,th{border-bottom:1px solid #ccc;padding:4px;text-align:left}"
        "</style></head><body><h1>Published services</h1>"
        "<table><tr><th>Service</th><th>Endpoint</th><th>Operations</th><th>WSDL</th><th>Schemas</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
