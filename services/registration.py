"""Registration over SOAP: an organisation registers versions of its services with their WSDL and schemas, moves
them through their lifecycle and registers the backends that serve them. Only the owner may change a service."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from integrator.faults import AccessDenied, ClientFault
from integrator.service import CallContext, HandlerResult, Operation, ServiceDefinition
from repository import backends
from repository.catalogue_queries import versions_named
from repository.documents import DocumentSet, InvalidDocuments
from repository.models import ServiceVersion
from repository.registry import (
    BreakingChangesRefused,
    RegistrationRefused,
    documents,
    find_version,
    register_version,
    set_lifecycle,
)
from services.metadata import code_backed, operation_entry

NS = "urn:kruispunt:Repository:v1"


# --- RegisterServiceVersion -----------------------------------------------------------------------------------


# --- this service's faults (one fault family: integrator/faults.py) ---------------------------------------
class RepositoryRefused(ClientFault):
    CODE = "Client.Repository.Refused"
    HTTP_STATUS = 422


class BreakingChange(ClientFault):
    CODE = "Client.Repository.BreakingChange"
    HTTP_STATUS = 422


def register_service_version(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """Store a new draft version owned by the calling organisation, once its documents compile and it breaks
    nothing in the previous minor version."""
    name, version = str(request["Name"]), str(request["Version"])
    owner = ctx.organisation.enterprise_number
    docs = DocumentSet(str(request["Wsdl"]), _files(request.get("Document") or []))
    session = ctx.session
    _claim_name(ctx, name, owner)
    try:
        row, compiled = register_version(session, name, version, docs, owner=owner,
                                         description=request.get("Description") or "",
                                         federated=bool(request["Federated"]))
    except BreakingChangesRefused as exc:
        raise BreakingChange(
            f"{name} {version} would break clients of the previous minor version of {name} "
            f"v{version.partition('.')[0]}; publish it as a new major version or remove these "
            f"{len(exc.changes)} breaking change(s): " + "; ".join(str(c) for c in exc.changes)
        ) from None
    except (InvalidDocuments, RegistrationRefused) as exc:
        raise RepositoryRefused(f"{name} {version} cannot be registered: " + "; ".join(exc.problems)) from None
    body = {"Name": row.name, "Version": row.version, "Status": row.status, "Owner": row.owner,
            "Federated": row.federated,
            "Operation": [operation_entry(op.name, op.request, op.response, op.soap_action)
                          for op in compiled.operations.values()]}
    return HandlerResult(body)


def _files(documents_: list[dict[str, Any]]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for document in documents_:
        path = str(document["Path"])
        if path in files:
            raise RepositoryRefused(f"The document {path} is submitted twice; send every path once.")
        try:
            files[path] = base64.b64decode(str(document.get("Content") or ""))
        except (binascii.Error, ValueError):
            raise RepositoryRefused(f"The content of document {path} is not valid base64.") from None
    return files


def _claim_name(ctx: CallContext, name: str, owner: str) -> None:
    """A service name belongs to the organisation that registered it first, on this integrator."""
    session = ctx.session
    if code_backed(ctx, name) is not None:
        raise RepositoryRefused(f"{name} is the name of a service built into this integrator; choose another name.")
    for row in versions_named(session, name):
        if row.origin_peer_id is not None:
            raise RepositoryRefused(f"{name} belongs to integrator {row.origin}; register its versions there.")
        if row.owner != owner:
            raise AccessDenied(f"{name} is owned by organisation {row.owner}; organisation {owner} cannot register "
                               "versions of it. Choose another service name.")


# --- ChangeLifecycle ------------------------------------------------------------------------------------------
def change_lifecycle(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """draft → active → deprecated (with a sunset date) → retired, by the owning organisation only."""
    name, version, status = str(request["Name"]), str(request["Version"]), str(request["Status"])
    sunset = request.get("Sunset")
    session = ctx.session
    row = find_version(session, name, version)
    if row is None:
        raise RepositoryRefused(f"{name} {version} is not registered; register it first.")
    _require_owner(row, ctx)
    try:
        row = set_lifecycle(session, name, version, status, sunset=sunset, successor=request.get("Successor"))
    except RegistrationRefused as exc:
        raise RepositoryRefused("; ".join(exc.problems)) from None
    body = {"Name": row.name, "Version": row.version, "Status": row.status, "Sunset": row.sunset,
            "Successor": row.successor}
    return HandlerResult(body)


def _require_owner(row: ServiceVersion, ctx: CallContext) -> None:
    caller = ctx.organisation.enterprise_number
    if row.origin_peer_id is None and row.owner != caller:
        raise AccessDenied(f"{row.name} {row.version} is owned by organisation {row.owner}; only its owner may "
                           f"change it, not organisation {caller}.")


# --- RegisterBackend ------------------------------------------------------------------------------------------
def register_backend(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """Register (or update) a backend of a major version of a service the caller owns."""
    key, backend_name, url = str(request["Service"]), str(request["Name"]), str(request["Url"]).strip()
    name, _, major_text = key.rpartition("/v")
    major = int(major_text)
    idempotent = [str(op) for op in request.get("IdempotentOperation") or []]
    pem = str(request["Certificate"]).strip() + "\n"
    session = ctx.session
    versions = versions_named(session, name, major)
    if not versions:
        raise RepositoryRefused(f"No version of {key} is registered; register the service version first.")
    newest = versions[-1]
    if newest.origin_peer_id is not None:
        raise RepositoryRefused(f"{key} belongs to integrator {newest.origin}; its backends are registered there.")
    _require_owner(newest, ctx)
    operations = set(documents(session, newest).compile().operations)
    unknown = [op for op in idempotent if op not in operations]
    if unknown:
        raise RepositoryRefused(f"{', '.join(unknown)} is not an operation of {key} {newest.version} "
                                f"(its operations: {', '.join(sorted(operations))}).")
    try:
        _, created = backends.register_backend(session, key, backend_name, url, pem.encode(),
                                      float(request["TimeoutSeconds"]), priority=int(request["Priority"]),
                                      weight=int(request["Weight"]), security=str(request["Security"]),
                                      idempotent=idempotent)
    except backends.BackendRefused as refused:
        raise RepositoryRefused(f"Backend {backend_name} of {key}: {refused}.") from None
    return HandlerResult({"Service": key, "Name": backend_name, "Created": created})


SERVICE = ServiceDefinition(
    name="Repository",
    version="v1",
    title="Service registration",
    description=(
        "Register a version of your service with its WSDL and schemas, move it from draft to active, deprecated "
        "and retired, and register the backends that serve it. Only the organisation that owns a service may "
        "change it."
    ),
    wsdl="Repository-v1.wsdl",
    xsd="Repository/v1/Repository.xsd",
    operations=(
        Operation(name="RegisterServiceVersion", request=f"{{{NS}}}RegisterServiceVersionRequest",
                  response=f"{{{NS}}}RegisterServiceVersionResponse", handler=register_service_version,
                  soap_action=f"{NS}:RegisterServiceVersion"),
        Operation(name="ChangeLifecycle", request=f"{{{NS}}}ChangeLifecycleRequest",
                  response=f"{{{NS}}}ChangeLifecycleResponse", handler=change_lifecycle,
                  soap_action=f"{NS}:ChangeLifecycle"),
        Operation(name="RegisterBackend", request=f"{{{NS}}}RegisterBackendRequest",
                  response=f"{{{NS}}}RegisterBackendResponse", handler=register_backend,
                  soap_action=f"{NS}:RegisterBackend"),
    ),
)
