"""What the integrator publishes besides SOAP: the catalogue, the WSDL and XSD documents, health, and the methods
and paths it refuses."""

from __future__ import annotations

import http.client
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import zeep
from lxml import etree

from tests.support import PROJECT, TAX_PATH

WSDL_FILE = PROJECT / "wsdl" / "TaxExemptionStatus-v1.wsdl"
SOAP_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XS_NS = "http://www.w3.org/2001/XMLSchema"
SCHEMA_REFS = (f"{{{XS_NS}}}import", f"{{{XS_NS}}}include")


def get(stack, path: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.get(f"{stack.base_url}{path}", timeout=30, **kwargs)


def raw_get(stack, path: str) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    """GET a path exactly as written (requests would resolve the dot segments before sending)."""
    parts = urlsplit(stack.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_catalogue_page_lists_the_service_with_links_that_answer(stack) -> None:
    reply = get(stack, "/services")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "TaxExemptionStatus" in reply.text
    page = etree.fromstring(reply.content, etree.HTMLParser())
    links = [urljoin(f"{stack.base_url}/services", href) for href in page.xpath("//a/@href")]
    assert f"{stack.base_url}{TAX_PATH}?wsdl" in links
    schemas = {urlsplit(link).path for link in links if link.endswith(".xsd")}
    assert {"/xsd/TaxExemptionStatus/v1/TaxExemptionStatus.xsd", "/xsd/common/v1/common.xsd"} <= schemas
    # the repository's StatusSource v1 (generic dispatch) is listed with its stored schemas and its origin
    assert f"{stack.base_url}/soap/StatusSource/v1?wsdl" in links
    assert "/repository/StatusSource/1.0/xsd/backends/StatusSource/v1/StatusSource.xsd" in schemas
    for link in links:
        answered = requests.get(link, timeout=30)
        assert answered.status_code == 200, link
        etree.fromstring(answered.content)  # each is an XML document


@pytest.mark.parametrize("relative", ["TaxExemptionStatus/v1/TaxExemptionStatus.xsd", "common/v1/common.xsd",
                                      "backends/StatusSource/v1/StatusSource.xsd"])
def test_schemas_are_served_byte_for_byte_as_the_files(stack, relative: str) -> None:
    reply = get(stack, f"/xsd/{relative}")
    assert reply.status_code == 200
    assert reply.content == (PROJECT / "xsd" / relative).read_bytes()


def test_plain_wsdl_list_has_one_absolute_url_a_line_each_loading_in_zeep(stack) -> None:
    reply = get(stack, "/services", params={"formatted": "false", "wsdlList": "true"})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    lines = reply.text.splitlines()
    assert f"{stack.base_url}{TAX_PATH}?wsdl" in lines
    assert f"{stack.base_url}/soap/StatusSource/v1?wsdl" in lines
    for url in lines:
        client = zeep.Client(url)
        addresses = [port.binding_options["address"] for service in client.wsdl.services.values()
                     for port in service.ports.values()]
        assert addresses == [url.removesuffix("?wsdl")]
    assert hasattr(zeep.Client(f"{stack.base_url}{TAX_PATH}?wsdl").service, "GetTaxExemptionStatuses")


def test_wsdl_soap_address_is_the_endpoint_it_was_fetched_from(stack) -> None:
    reply = get(stack, f"{TAX_PATH}?wsdl")
    assert reply.status_code == 200
    addresses = etree.fromstring(reply.content).findall(f".//{{{SOAP_BINDING_NS}}}address")
    assert [a.get("location") for a in addresses] == [f"{stack.base_url}{TAX_PATH}"]


def _canonical(tree: etree._Element) -> str:
    return etree.canonicalize(etree.tostring(tree, encoding="unicode"))


def test_served_wsdl_is_the_file_with_only_addresses_and_schema_locations_made_absolute(stack) -> None:
    served = etree.fromstring(get(stack, f"{TAX_PATH}?wsdl").content)
    original = etree.parse(str(WSDL_FILE)).getroot()
    document_url = f"{stack.base_url}/wsdl/{WSDL_FILE.name}"

    served_refs = [n for n in served.iter(*SCHEMA_REFS) if n.get("schemaLocation")]
    original_refs = [n for n in original.iter(*SCHEMA_REFS) if n.get("schemaLocation")]
    assert len(served_refs) == len(original_refs) > 0
    for mine, theirs in zip(original_refs, served_refs, strict=True):
        assert theirs.get("schemaLocation") == urljoin(document_url, mine.get("schemaLocation"))
        assert requests.get(theirs.get("schemaLocation"), timeout=30).status_code == 200
        mine.set("schemaLocation", "NORMALISED")
        theirs.set("schemaLocation", "NORMALISED")
    for tree in (served, original):
        addresses = list(tree.iter(f"{{{SOAP_BINDING_NS}}}address"))
        assert len(addresses) == 1
        addresses[0].set("location", "NORMALISED")
    assert _canonical(served) == _canonical(original)


def test_wsdl_under_wsdl_path_is_the_same_document_as_query_wsdl(stack) -> None:
    by_query = get(stack, f"{TAX_PATH}?wsdl")
    by_path = get(stack, f"/wsdl/{WSDL_FILE.name}")
    assert by_path.status_code == 200
    assert _canonical(etree.fromstring(by_path.content)) == _canonical(etree.fromstring(by_query.content))


@pytest.mark.parametrize("path", ["/xsd/../setup.cfg", "/xsd/%2e%2e/setup.cfg", "/xsd/..%2fsetup.cfg",
                                  "/wsdl/../setup.cfg", "/xsd/common/../../setup.cfg"])
def test_path_traversal_out_of_the_document_folders_is_not_found(stack, path: str) -> None:
    assert (PROJECT / "setup.cfg").is_file()
    status, body = raw_get(stack, path)
    assert status == 404
    assert b"[metadata]" not in body


def test_liveness_answers_200(stack) -> None:
    reply = get(stack, "/health/live")
    assert reply.status_code == 200


def test_readiness_answers_200_ready(stack) -> None:
    reply = get(stack, "/health/ready")
    assert reply.status_code == 200
    assert reply.text.strip() == "ready"


def test_get_on_a_soap_endpoint_without_wsdl_query_is_method_not_allowed(stack) -> None:
    reply = get(stack, TAX_PATH)
    assert reply.status_code == 405


def test_get_on_an_unknown_soap_path_is_not_found(stack) -> None:
    assert get(stack, "/soap/NoSuchService/v1?wsdl").status_code == 404


def test_post_to_the_catalogue_is_method_not_allowed(stack) -> None:
    reply = requests.post(f"{stack.base_url}/services", data=b"<x/>", timeout=30)
    assert reply.status_code == 405
