"""Federation v1: a peer integrator pulls this integrator's repository changes since its cursor."""

from __future__ import annotations

from typing import Any

from integrator.federation import FD, PAGE, PAGE_BYTES, change_entry
from integrator.service import CallContext, HandlerResult, Operation, ServiceDefinition
from repository.registry import changes_since


def get_changes(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """Versions open to federation changed after the peer's cursor, oldest first, at most Limit of them."""
    limit = min(int(request.get("Limit") or PAGE), 1000)
    session = ctx.session
    items, head = changes_since(session, int(request["Cursor"]), limit)
    changes, size = [], 0
    for item in items:  # a page also stops at PAGE_BYTES of documents (always at least one change)
        size += sum(len(content) for content in item.docs.files.values())
        if changes and size > PAGE_BYTES:
            break
        changes.append(change_entry(item, ctx.integrator_name))
    return HandlerResult({"Head": head, "Change": changes},
                         detail=f"{len(changes)} change(s) after {request['Cursor']} of {head}")


SERVICE = ServiceDefinition(
    name="Federation",
    version="v1",
    title="Federation between integrators",
    description="A peer integrator pulls the services open to federation that changed since its cursor.",
    wsdl="Federation-v1.wsdl",
    xsd="Federation/v1/Federation.xsd",
    operations=(
        Operation(
            name="GetChanges",
            request=f"{{{FD}}}GetChangesRequest",
            response=f"{{{FD}}}GetChangesResponse",
            handler=get_changes,
            soap_action=f"{FD}:GetChanges",
            audience="peers",
        ),
    ),
)
