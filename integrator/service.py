"""What a published service declares to the pipeline: its contract files and its operations' handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from repository.queries import OrganisationView

if TYPE_CHECKING:  # the pipeline builds the context from these; importing them here would be circular
    from lxml import etree

    from integrator.config import Settings
    from integrator.outbox import Forwarder
    from integrator.wssec.sign import SigningKey


@dataclass(frozen=True)
class CallContext:
    """What a handler knows about the transaction it serves."""

    ticket: str
    received_at: datetime
    organisation: OrganisationView
    official: str
    purpose: str
    message_id: str
    backends: Any  # integrator.dispatch.BoundDispatcher: call_all(contract, payload)
    session: Session  # the request's transaction: its effects commit with the audit record; never commit it
    after_commit: Callable[[Callable[[], None]], None]  # work that runs only once that commit succeeded
    base_url: str = ""  # how the caller reaches this integrator, e.g. http://127.0.0.1:8080
    integrator_name: str = "kruispunt"  # this integrator's name towards its peers
    forwarder: Forwarder | None = None  # store-and-forward deliveries to backends
    signing_key: SigningKey | None = None  # for documents the integrator signs (receipts)
    settings: Settings | None = None
    payload: etree._Element | None = None  # the request as received and verified (what the signature covered)
    services: tuple[ServiceDefinition, ...] = ()  # the code-backed services this integrator publishes

    def deliver_after_commit(self, entry_id: int) -> None:
        """Once the request's transaction committed, try its outbox entry at once (an after-commit step; the
        background forwarders owe the delivery anyway, should this attempt fail or the worker die)."""
        forwarder = self.forwarder
        if forwarder is not None:
            self.after_commit(lambda: forwarder.deliver(entry_id))


@dataclass
class HandlerResult:
    """A handler's answer as plain data; outcome PARTIAL when a source could not be consulted."""

    body: dict[str, Any]
    outcome: str = "OK"
    detail: str | None = None


Handler = Callable[[dict[str, Any], CallContext], HandlerResult]


@dataclass(frozen=True)
class Operation:
    name: str
    request: str  # Clark name of the request element
    response: str  # Clark name of the response element
    handler: Handler
    person_field: str | None = None  # field of the request that names the person concerned
    person_in_files: bool = False  # refuse unless the person is in the caller's files (reference directory)
    soap_action: str = ""
    audience: str = "officials"  # officials: grant checked; peers: only registered peer integrators
    retry_safe: bool = False  # the caller's MessageId is an idempotency key: a retry gets the first outcome,
    #                           so only a re-sent signature is a replay, not a re-used MessageId
    access: str | None = None  # the access right and grant this operation needs, when not the service's own


def operation(namespace: str, name: str, handler: Handler, **settings: Any) -> Operation:
    """An operation by the project's naming: <name>Request answered by <name>Response, SOAPAction ns:name."""
    return Operation(name=name, request=f"{{{namespace}}}{name}Request", response=f"{{{namespace}}}{name}Response",
                     handler=handler, soap_action=f"{namespace}:{name}", **settings)


@dataclass(frozen=True)
class ServiceDefinition:
    """A published service version: contract files (relative to xsd/ and wsdl/) and operations."""

    name: str
    version: str
    title: str
    wsdl: str
    xsd: str
    operations: tuple[Operation, ...]
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def path(self) -> str:
        return f"/soap/{self.name}/{self.version}"

    def operation_for(self, tag: str) -> Operation | None:
        return next((op for op in self.operations if op.request == tag), None)


def access_names(services: tuple[ServiceDefinition, ...] | list[ServiceDefinition]) -> frozenset[str]:
    """What access rights and grants may name among code-backed services: each service's name, and the rights
    some of their operations need of their own (Operation.access, e.g. BisRegister.Update)."""
    return frozenset({s.name for s in services} | {op.access for s in services for op in s.operations if op.access})
