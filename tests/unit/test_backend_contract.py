"""The reference backends (spyne) speak exactly the StatusSource contract the integrator validates against."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from lxml import etree
from spyne.server.wsgi import WsgiApplication

from integrator.config import PROJECT_ROOT
from services.backends import national_register
from services.backends.status_source import SOURCES, make_application

XS = "http://www.w3.org/2001/XMLSchema"


def spyne_schema(app: WsgiApplication | None = None) -> etree._Element:
    app = app or make_application(SOURCES[0])
    environ = {"REQUEST_METHOD": "GET", "QUERY_STRING": "wsdl", "PATH_INFO": "/", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": BytesIO()}
    body = b"".join(app(environ, lambda status, headers: None))
    return etree.fromstring(body).find(f".//{{{XS}}}schema")


def structure(schema: etree._Element) -> dict[str, list[tuple[str, ...]]]:
    """Each complex type as its sequence: name, type (namespace resolved), occurs and nillable."""
    types = {}
    for node in schema.findall(f"{{{XS}}}complexType"):
        members = []
        for element in node.iter(f"{{{XS}}}element"):
            prefix, _, local = element.get("type", "").rpartition(":")
            members.append((element.get("name", ""), element.nsmap.get(prefix or None, ""), local,
                            element.get("minOccurs", "1"), element.get("maxOccurs", "1"),
                            element.get("nillable", "false")))
        types[node.get("name", "")] = members
    return types


def test_spyne_generated_types_match_the_published_xsd() -> None:
    published = etree.parse(str(PROJECT_ROOT / "xsd/backends/StatusSource/v1/StatusSource.xsd")).getroot()
    generated = structure(spyne_schema())
    assert structure(published) == generated
    assert set(generated) == {"StatusPeriod", "StatusPeriodArray", "get_statuses", "get_statusesResponse"}


def test_national_register_spyne_types_match_the_published_xsd(tmp_path: Path) -> None:
    published = etree.parse(str(PROJECT_ROOT / "xsd/backends/NationalRegister/v1/NationalRegister.xsd")).getroot()
    generated = structure(spyne_schema(national_register.make_application("national-register", tmp_path)))
    assert structure(published) == generated
    assert {"get_person", "get_personResponse", "update_person", "update_personResponse", "NrPerson", "NrAddress",
            "NrUpdate"} <= set(generated)
