"""Service discovery (Metadata v1) end to end: the callable services with their endpoints on this integrator, their
operations, the services the calling official may use, and contract documents that never reveal a backend."""

from __future__ import annotations

import base64
import uuid
from datetime import date, timedelta

import pytest
import zeep
from kruispunt_client import KruispuntSignature, Trust, load_certificates
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import select

from integrator.namespaces import KP, q
from repository.catalogue_queries import backend_urls
from repository.documents import DocumentSet
from repository.models import AccessRight, Grant, GrantStatus, Official, Organisation
from services.demo_organisations import KRUISDORP, OFFICIALS, PURPOSE_TAX
from tests.e2e.repository_calls import (
    DISCOVERY,
    METADATA_NS,
    METADATA_PATH,
    OWNER,
    REGISTRATION,
    REPOSITORY_PATH,
    TAX_XSD,
    backend_request,
    brugstede,
    call,
    contract_files,
    grant,
    grant_both_organisations,
    kruisdorp,
    lifecycle,
    refused,
    register,
    register_request,
    unique_name,
)
from tests.support import PROJECT, audit_record

TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
SUNSET = date(2031, 6, 30)


@pytest.fixture(autouse=True)
def _granted(stack) -> None:  # type: ignore[no-untyped-def]
    grant_both_organisations(stack)


def discover(stack, operation: str, data: dict | None = None, caller=None):  # type: ignore[no-untyped-def]
    return call(stack, METADATA_PATH, caller or kruisdorp(stack, DISCOVERY), operation, data or {})


def services_listed(stack) -> dict[tuple[str, str], dict]:  # type: ignore[no-untyped-def]
    answer = discover(stack, "ListServices")
    return {(s["Name"], s["Version"]): s for s in answer.body.get("Service", [])}


def documents_of(answer_body: dict) -> dict[str, bytes]:
    return {d["Path"]: base64.b64decode(d["Content"]) for d in answer_body["Document"]}


# --- ListServices --------------------------------------------------------------------------------------------
def test_list_services_shows_callable_versions_with_their_endpoint_here(stack) -> None:  # type: ignore[no-untyped-def]
    active, deprecated, draft, retired = (unique_name() for _ in range(4))
    for name in (active, deprecated, draft, retired):
        register(stack, name, "1.0", description=f"{name} for tests")
    for name in (active, deprecated, retired):
        lifecycle(stack, name, "1.0", "active")
    lifecycle(stack, deprecated, "1.0", "deprecated", sunset=SUNSET, successor=f"{deprecated}/v2")
    lifecycle(stack, retired, "1.0", "retired")

    listed = services_listed(stack)
    assert listed[(active, "1.0")] == {"Name": active, "Version": "1.0", "Status": "active",
                                       "Description": f"{active} for tests",
                                       "Endpoint": f"{stack.base_url}/soap/{active}/v1", "Origin": "local"}
    assert listed[(deprecated, "1.0")] == {"Name": deprecated, "Version": "1.0", "Status": "deprecated",
                                           "Description": f"{deprecated} for tests",
                                           "Endpoint": f"{stack.base_url}/soap/{deprecated}/v1", "Origin": "local",
                                           "Sunset": SUNSET.isoformat(), "Successor": f"{deprecated}/v2"}
    names = {name for name, _ in listed}
    assert draft not in names and retired not in names


def test_list_services_includes_the_code_backed_services(stack) -> None:  # type: ignore[no-untyped-def]
    listed = services_listed(stack)
    for name in ("TaxExemptionStatus", "Metadata", "Repository"):
        entry = listed[(name, "1.0")]
        assert (entry["Status"], entry["Origin"], entry["Endpoint"]) == (
            "active", "local", f"{stack.base_url}/soap/{name}/v1")
        assert entry["Description"]


def test_list_services_is_audited_with_the_discovery_purpose(stack) -> None:  # type: ignore[no-untyped-def]
    answer = discover(stack, "ListServices")
    record = audit_record(stack.sessions, answer.ticket)
    assert (record.outcome, record.service, record.operation, record.purpose, record.official, record.person) == (
        "OK", "Metadata/v1", "ListServices", DISCOVERY, OWNER.insz, None)


def test_metadata_wsdl_serves_plain_zeep(stack) -> None:  # type: ignore[no-untyped-def]
    trust = Trust.from_files(stack.settings.trust_anchor_paths, stack.settings.crl_path)
    pin = load_certificates([stack.settings.pki_dir / "integrator.crt"])[0]
    client = zeep.Client(f"{stack.base_url}{METADATA_PATH}?wsdl",
                         wsse=KruispuntSignature(stack.pki.kruisdorp, trust, pin))
    caller = build(q(KP, "Caller"), {"Official": OWNER.insz, "Purpose": DISCOVERY, "MessageId": str(uuid.uuid4())})
    result = client.service.ListServices(_soapheaders=[caller])
    assert "Metadata" in {s.Name for s in result.body.Service}
    assert result.header.answer.Ticket.startswith("KP-")


# --- ListOperations ------------------------------------------------------------------------------------------
def test_list_operations_of_a_registered_service_come_from_its_documents(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    register(stack, name, "1.0")
    lifecycle(stack, name, "1.0", "active")
    answer = discover(stack, "ListOperations", {"Name": name, "Major": 1})
    assert answer.body == {"Name": name, "Version": "1.0", "Operation": [{
        "Name": "GetTaxExemptionStatuses",
        "Request": {"Namespace": TAX_NS, "LocalName": "GetTaxExemptionStatusesRequest"},
        "Response": {"Namespace": TAX_NS, "LocalName": "GetTaxExemptionStatusesResponse"},
        "SoapAction": f"{TAX_NS}:GetTaxExemptionStatuses"}]}


def test_list_operations_of_a_code_backed_service(stack) -> None:  # type: ignore[no-untyped-def]
    answer = discover(stack, "ListOperations", {"Name": "Metadata", "Major": 1})
    assert answer.body["Version"] == "1.0"
    assert [(op["Name"], op["Request"]["Namespace"], op["Request"]["LocalName"]) for op in answer.body["Operation"]] \
        == [(op, METADATA_NS, f"{op}Request") for op in ("ListServices", "ListOperations", "ListAllowedServices",
                                                         "GetWsdl")]


@pytest.mark.parametrize("major", [1, 7])
def test_list_operations_of_an_unknown_or_draft_only_service_is_service_unknown(stack, major: int) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    register(stack, name, "1.0")  # a draft: nothing is served at /soap/{name}/v1 yet
    seen = refused(stack, METADATA_PATH, kruisdorp(stack, DISCOVERY), "ListOperations", {"Name": name, "Major": major},
                   "Client.Service.Unknown", 404)
    assert f"{name} v{major} has no published version" in seen.reason


# --- ListAllowedServices -------------------------------------------------------------------------------------
def allowed(stack, caller=None) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    answer = discover(stack, "ListAllowedServices", caller=caller)
    return {s["Name"]: s["Purpose"] for s in answer.body.get("Service", [])}


def test_list_allowed_services_reflects_the_officials_grants(stack) -> None:  # type: ignore[no-untyped-def]
    kruisdorp_number, today = KRUISDORP.enterprise_number, date.today()
    granted, revoked_right, colleagues = unique_name("Granted"), unique_name("NoRight"), unique_name("Colleague")
    grant(stack, kruisdorp_number, OWNER.insz, granted, "PURPOSE_B")
    grant(stack, kruisdorp_number, OWNER.insz, granted, "PURPOSE_A")
    grant(stack, kruisdorp_number, OWNER.insz, granted, "EXPIRED", valid_until=today - timedelta(days=1))
    grant(stack, kruisdorp_number, OWNER.insz, granted, "NOT_YET", valid_from=today + timedelta(days=1))
    grant(stack, kruisdorp_number, OWNER.insz, revoked_right, "PURPOSE_A")
    grant(stack, kruisdorp_number, OFFICIALS[1].insz, colleagues, "PURPOSE_A")  # a colleague's grant
    with stack.sessions() as session:  # the organisation loses its right: the official's grant no longer counts
        org = session.execute(select(Organisation).where(Organisation.enterprise_number == kruisdorp_number)
                              ).scalar_one()
        session.delete(session.execute(select(AccessRight).where(AccessRight.organisation_id == org.id,
                                                                 AccessRight.service == revoked_right)).scalar_one())
        session.commit()

    mine = allowed(stack)
    assert mine[granted] == ["PURPOSE_A", "PURPOSE_B"]
    assert mine["Metadata"] == [DISCOVERY]
    assert mine["Repository"] == [REGISTRATION]
    assert mine["TaxExemptionStatus"] == [PURPOSE_TAX]
    assert revoked_right not in mine and colleagues not in mine

    with stack.sessions() as session:  # a grant withdrawn disappears
        official = session.execute(select(Official).join(Organisation).where(
            Official.insz == OWNER.insz, Organisation.enterprise_number == kruisdorp_number)).scalar_one()
        for row in session.execute(select(Grant).where(Grant.official_id == official.id,
                                                       Grant.service == granted)).scalars():
            row.status = GrantStatus.REVOKED
        session.commit()
    assert granted not in allowed(stack)


def test_list_allowed_services_is_per_organisation(stack) -> None:  # type: ignore[no-untyped-def]
    theirs = allowed(stack, caller=brugstede(stack, DISCOVERY))
    assert theirs["Metadata"] == [DISCOVERY]
    assert not any(name.startswith("Granted") for name in theirs)


# --- GetWsdl -------------------------------------------------------------------------------------------------
def test_get_wsdl_addresses_this_integrator_and_never_the_backend(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    backend_url = f"http://backend-{uuid.uuid4().hex[:8]}.internal.example:9443/hidden/{name}"
    wsdl, files = contract_files(name, address=backend_url)  # the owner's WSDL names its own backend
    files[wsdl] = files[wsdl].replace(b"<wsdl:documentation>",
                                      f"<wsdl:documentation>Served by {backend_url}/ today. ".encode(), 1)
    call(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterServiceVersion", register_request(name, "1.0", wsdl, files))
    lifecycle(stack, name, "1.0", "active")
    pem = next(stack.settings.pki_dir.glob("backend-*.crt")).read_text()
    call(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterBackend",
         backend_request(f"{name}/v1", "primary", backend_url, pem))

    for asked in ({"Name": name}, {"Name": name, "Version": "1.0"}):
        answer = discover(stack, "GetWsdl", asked)
        endpoint = f"{stack.base_url}/soap/{name}/v1"
        assert (answer.body["Name"], answer.body["Version"], answer.body["Endpoint"], answer.body["Wsdl"]) == (
            name, "1.0", endpoint, wsdl)
        assert answer.body["Document"][0]["Path"] == wsdl
        served = documents_of(answer.body)
        assert set(served) == set(files)
        for path, content in served.items():
            assert backend_url.encode() not in content, path
            assert b"backend-" not in content, path
        addresses = etree.fromstring(served[wsdl]).iter(SOAP_ADDRESS)
        assert [a.get("location") for a in addresses] == [endpoint]
        assert {p: c for p, c in served.items() if p != wsdl} == {p: c for p, c in files.items() if p != wsdl}
        assert set(DocumentSet(wsdl, served).compile().operations) == {"GetTaxExemptionStatuses"}


def test_get_wsdl_of_a_code_backed_service_holds_its_schemas(stack) -> None:  # type: ignore[no-untyped-def]
    answer = discover(stack, "GetWsdl", {"Name": "TaxExemptionStatus"})
    served = documents_of(answer.body)
    assert answer.body["Wsdl"] == "wsdl/TaxExemptionStatus-v1.wsdl"
    assert set(served) == {"wsdl/TaxExemptionStatus-v1.wsdl", "xsd/common/v1/common.xsd", TAX_XSD}
    assert served[TAX_XSD] == (PROJECT / TAX_XSD).read_bytes()
    addresses = etree.fromstring(served["wsdl/TaxExemptionStatus-v1.wsdl"]).iter(SOAP_ADDRESS)
    assert [a.get("location") for a in addresses] == [f"{stack.base_url}/soap/TaxExemptionStatus/v1"]
    with stack.sessions() as session:  # the reference status sources are this service's backends
        hidden = backend_urls(session, "TaxExemptionStatus/v1")
    assert hidden
    for content in served.values():
        assert not any(url.rstrip("/").encode() in content for url in hidden)
    assert set(DocumentSet(answer.body["Wsdl"], served).compile().operations) == {"GetTaxExemptionStatuses"}


def test_get_wsdl_of_a_draft_only_for_its_owner(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    register(stack, name, "1.0")
    assert discover(stack, "GetWsdl", {"Name": name, "Version": "1.0"}).body["Version"] == "1.0"
    seen = refused(stack, METADATA_PATH, brugstede(stack, DISCOVERY), "GetWsdl", {"Name": name, "Version": "1.0"},
                   "Client.Service.Unknown", 404)
    assert f"{name} 1.0" in seen.reason
    seen = refused(stack, METADATA_PATH, kruisdorp(stack, DISCOVERY), "GetWsdl", {"Name": name},
                   "Client.Service.Unknown", 404)  # without a version: only active or deprecated ones
    assert name in seen.reason


def test_get_wsdl_of_an_unknown_service_is_service_unknown(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    seen = refused(stack, METADATA_PATH, kruisdorp(stack, DISCOVERY), "GetWsdl", {"Name": name, "Version": "3.1"},
                   "Client.Service.Unknown", 404)
    assert f"{name} 3.1" in seen.reason


def test_discovery_needs_a_grant_for_the_purpose(stack) -> None:  # type: ignore[no-untyped-def]
    refused(stack, METADATA_PATH, kruisdorp(stack, "SOMETHING_ELSE"), "ListServices", {},
            "Client.Caller.GrantMissing", 403)
