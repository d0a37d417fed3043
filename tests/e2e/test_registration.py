"""Registration over SOAP (Repository v1) end to end: versions registered as drafts owned by the caller, breaking
minor versions refused with every change named, incomplete document sets refused, the lifecycle moved by the owner
alone, backends registered by the owner alone; every refusal audited."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from repository.models import Backend, ServiceDocument
from repository.registry import find_version
from services.demo_organisations import BRUGSTEDE, KRUISDORP
from tests.e2e.repository_calls import (
    COMMON_XSD,
    END,
    REPOSITORY_PATH,
    TAX_XSD,
    backend_request,
    brugstede,
    call,
    changed_schema,
    contract_files,
    grant_both_organisations,
    kruisdorp,
    lifecycle,
    refused,
    register,
    register_request,
    unique_name,
    with_request_element,
)
from tests.support import audit_record

TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
OPERATION = "GetTaxExemptionStatuses"
SUNSET = date(2031, 12, 31)


@pytest.fixture(autouse=True)
def _granted(stack) -> None:  # type: ignore[no-untyped-def]
    grant_both_organisations(stack)


def active_service(stack, name: str | None = None) -> str:  # type: ignore[no-untyped-def]
    name = name or unique_name()
    register(stack, name, "1.0")
    lifecycle(stack, name, "1.0", "active")
    return name


def test_registered_version_is_a_draft_owned_by_the_calling_organisation(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    wsdl, files = contract_files(name)
    answer = register(stack, name, "1.0", files, federated=True, description="Statuses, registered over SOAP")
    assert answer.body == {
        "Name": name, "Version": "1.0", "Status": "draft", "Owner": KRUISDORP.enterprise_number, "Federated": True,
        "Operation": [{"Name": OPERATION,
                       "Request": {"Namespace": TAX_NS, "LocalName": "GetTaxExemptionStatusesRequest"},
                       "Response": {"Namespace": TAX_NS, "LocalName": "GetTaxExemptionStatusesResponse"},
                       "SoapAction": f"{TAX_NS}:{OPERATION}"}],
    }
    with stack.sessions() as session:
        row = find_version(session, name, "1.0")
        assert row is not None
        assert (row.status, row.owner, row.federated, row.origin, row.wsdl, row.description) == (
            "draft", KRUISDORP.enterprise_number, True, "local", wsdl, "Statuses, registered over SOAP")
        stored = {d.path: bytes(d.content) for d in session.execute(
            select(ServiceDocument).where(ServiceDocument.version_id == row.id)).scalars()}
    assert stored == files  # byte for byte, as submitted
    record = audit_record(stack.sessions, answer.ticket)
    assert (record.outcome, record.service, record.operation, record.organisation, record.purpose) == (
        "OK", "Repository/v1", "RegisterServiceVersion", KRUISDORP.enterprise_number, "SERVICE_REGISTRATION")


def test_breaking_minor_version_is_refused_naming_every_breaking_change(stack) -> None:  # type: ignore[no-untyped-def]
    name = active_service(stack)
    wsdl, files = contract_files(name)
    breaking = with_request_element(changed_schema(files, END, ""),
                                    '<xs:element name="Municipality" type="kp:NisCodeType"/>')
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterServiceVersion",
                   register_request(name, "1.1", wsdl, breaking), "Client.Repository.BreakingChange", 422)
    assert f"{name} 1.1" in seen.reason
    assert f"element removed: {OPERATION}/GetTaxExemptionStatusesResponse/Status/End" in seen.reason
    assert f"required element added: {OPERATION}/GetTaxExemptionStatusesRequest/Municipality" in seen.reason
    assert "2 breaking change(s)" in seen.reason
    with stack.sessions() as session:
        assert find_version(session, name, "1.1") is None


def test_compatible_minor_version_with_an_optional_element_is_accepted(stack) -> None:  # type: ignore[no-untyped-def]
    name = active_service(stack)
    _, files = contract_files(name)
    compatible = with_request_element(files, '<xs:element name="Municipality" type="kp:NisCodeType" minOccurs="0"/>')
    answer = register(stack, name, "1.1", compatible)
    assert (answer.body["Version"], answer.body["Status"]) == ("1.1", "draft")
    with stack.sessions() as session:
        row = find_version(session, name, "1.1")
        assert row is not None and row.status == "draft"


def test_a_new_major_version_may_break_the_previous_one(stack) -> None:  # type: ignore[no-untyped-def]
    name = active_service(stack)
    _, files = contract_files(name)
    breaking = with_request_element(files, '<xs:element name="Municipality" type="kp:NisCodeType"/>')
    assert register(stack, name, "2.0", breaking).body["Status"] == "draft"


def test_document_set_with_an_import_that_is_not_in_the_set_is_refused_naming_it(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    wsdl, files = contract_files(name)
    del files[COMMON_XSD]
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterServiceVersion",
                   register_request(name, "1.0", wsdl, files), "Client.Repository.Refused", 422)
    assert f"{wsdl}: imports ../xsd/common/v1/common.xsd, which is not one of the submitted documents" in seen.reason
    assert f"{TAX_XSD}: imports ../../common/v1/common.xsd" in seen.reason
    with stack.sessions() as session:
        assert find_version(session, name, "1.0") is None


def test_wsdl_that_is_not_among_the_documents_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    _, files = contract_files(name)
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterServiceVersion",
                   register_request(name, "1.0", "wsdl/Elsewhere.wsdl", files), "Client.Repository.Refused", 422)
    assert "wsdl/Elsewhere.wsdl is not among the documents" in seen.reason


def test_a_version_cannot_be_registered_twice(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    register(stack, name, "1.0")
    wsdl, files = contract_files(name)
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterServiceVersion",
                   register_request(name, "1.0", wsdl, files), "Client.Repository.Refused", 422)
    assert f"{name} 1.0 is already registered" in seen.reason


def test_another_organisation_cannot_register_versions_of_a_service_it_does_not_own(stack) -> None:  # type: ignore[no-untyped-def]
    name = active_service(stack)
    wsdl, files = contract_files(name)
    seen = refused(stack, REPOSITORY_PATH, brugstede(stack), "RegisterServiceVersion",
                   register_request(name, "1.1", wsdl, files), "Client.Caller.AccessDenied", 403)
    assert KRUISDORP.enterprise_number in seen.reason
    assert audit_record(stack.sessions, seen.ticket).organisation == BRUGSTEDE.enterprise_number


@pytest.mark.parametrize("name", ["Metadata", "Repository", "TaxExemptionStatus"])
def test_the_name_of_a_built_in_service_cannot_be_registered(stack, name: str) -> None:  # type: ignore[no-untyped-def]
    wsdl, files = contract_files(name)
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterServiceVersion",
                   register_request(name, "9.0", wsdl, files), "Client.Repository.Refused", 422)
    assert f"{name} is the name of a service built into this integrator" in seen.reason


def test_lifecycle_goes_from_draft_to_active_to_deprecated_with_a_sunset_to_retired(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    register(stack, name, "1.0")
    assert lifecycle(stack, name, "1.0", "active").body == {"Name": name, "Version": "1.0", "Status": "active"}

    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "ChangeLifecycle",
                   {"Name": name, "Version": "1.0", "Status": "deprecated"}, "Client.Repository.Refused", 422)
    assert "needs a sunset date" in seen.reason

    deprecated = lifecycle(stack, name, "1.0", "deprecated", sunset=SUNSET, successor=f"{name}/v2")
    assert deprecated.body == {"Name": name, "Version": "1.0", "Status": "deprecated", "Sunset": SUNSET.isoformat(),
                               "Successor": f"{name}/v2"}
    retired = lifecycle(stack, name, "1.0", "retired")
    assert (retired.body["Status"], retired.body["Successor"]) == ("retired", f"{name}/v2")

    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "ChangeLifecycle",
                   {"Name": name, "Version": "1.0", "Status": "active"}, "Client.Repository.Refused", 422)
    assert "cannot go from retired to active" in seen.reason
    with stack.sessions() as session:
        row = find_version(session, name, "1.0")
        assert row is not None and (row.status, row.successor) == ("retired", f"{name}/v2")


def test_lifecycle_of_an_unregistered_version_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "ChangeLifecycle",
                   {"Name": name, "Version": "1.0", "Status": "active"}, "Client.Repository.Refused", 422)
    assert f"{name} 1.0 is not registered" in seen.reason


def test_another_organisation_cannot_change_the_lifecycle(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    register(stack, name, "1.0")
    seen = refused(stack, REPOSITORY_PATH, brugstede(stack), "ChangeLifecycle",
                   {"Name": name, "Version": "1.0", "Status": "active"}, "Client.Caller.AccessDenied", 403)
    assert f"{name} 1.0 is owned by organisation {KRUISDORP.enterprise_number}" in seen.reason
    assert BRUGSTEDE.enterprise_number in seen.reason
    assert audit_record(stack.sessions, seen.ticket).organisation == BRUGSTEDE.enterprise_number
    with stack.sessions() as session:
        row = find_version(session, name, "1.0")
        assert row is not None and row.status == "draft"


def test_owner_registers_and_updates_a_backend(stack) -> None:  # type: ignore[no-untyped-def]
    name = active_service(stack)
    pem = any_backend_pem(stack)
    url = f"http://127.0.0.1:9/{name}/"
    answer = call(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterBackend",
                  backend_request(f"{name}/v1", "primary", url, pem, Priority=2, Weight=3, TimeoutSeconds="2.5",
                                  Security="none", IdempotentOperation=[OPERATION]))
    assert answer.body == {"Service": f"{name}/v1", "Name": "primary", "Created": True}
    with stack.sessions() as session:
        row = session.execute(select(Backend).where(Backend.service == f"{name}/v1")).scalar_one()
        assert (row.name, row.url, row.priority, row.weight, row.timeout_seconds, row.security, row.idempotent,
                row.active) == ("primary", url, 2, 3, 2.5, "none", OPERATION, True)
        assert row.certificate_pem.strip() == pem.strip()
    again = call(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterBackend",
                 backend_request(f"{name}/v1", "primary", url + "v2", pem))
    assert again.body["Created"] is False
    with stack.sessions() as session:
        row = session.execute(select(Backend).where(Backend.service == f"{name}/v1")).scalar_one()
        assert (row.url, row.priority, row.weight, row.security, row.idempotent) == (url + "v2", 0, 1, "x509", "")


def any_backend_pem(stack) -> str:  # type: ignore[no-untyped-def]
    return next(stack.settings.pki_dir.glob("backend-*.crt")).read_text()


def test_another_organisation_cannot_register_a_backend(stack) -> None:  # type: ignore[no-untyped-def]
    name = active_service(stack)
    seen = refused(stack, REPOSITORY_PATH, brugstede(stack), "RegisterBackend",
                   backend_request(f"{name}/v1", "intruder", "http://127.0.0.1:9/", any_backend_pem(stack)),
                   "Client.Caller.AccessDenied", 403)
    assert f"owned by organisation {KRUISDORP.enterprise_number}" in seen.reason
    with stack.sessions() as session:
        assert session.execute(select(Backend).where(Backend.service == f"{name}/v1")).first() is None


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"IdempotentOperation": ["NoSuchOperation"]}, "NoSuchOperation is not an operation of"),
    ({"Certificate": "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----"}, "not a PEM X.509"),
    ({"Url": "ftp://127.0.0.1/backend"}, "must be an absolute http:// or https:// URL"),
])
def test_backend_registration_is_refused_with_a_reason(stack, overrides: dict, expected: str) -> None:  # type: ignore[no-untyped-def]
    name = active_service(stack)
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterBackend",
                   backend_request(f"{name}/v1", "primary", "http://127.0.0.1:9/", any_backend_pem(stack),
                                   **overrides), "Client.Repository.Refused", 422)
    assert expected in seen.reason


def test_backend_of_a_service_without_registered_versions_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    seen = refused(stack, REPOSITORY_PATH, kruisdorp(stack), "RegisterBackend",
                   backend_request(f"{name}/v1", "primary", "http://127.0.0.1:9/", any_backend_pem(stack)),
                   "Client.Repository.Refused", 422)
    assert f"No version of {name}/v1 is registered" in seen.reason
