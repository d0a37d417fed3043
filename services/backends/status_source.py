"""One spyne application per authentic source: get_statuses(insz, reference_date) -> its status periods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import spyne.const
from spyne import Application, Array, ComplexModel, Date, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from services.backends.persons import periods_for

NS = "urn:kruispunt:backends:StatusSource:v1"
# spyne runs a full gc.collect() after requests (at most once a second): in a busy backend that froze the
# worker for 130-260 ms a second and cost ~40% of its CPU (bench/README.md). Python's own GC is enough.
spyne.const.MIN_GC_INTERVAL = float("inf")


@dataclass(frozen=True)
class SourceSpec:
    """A reference authentic source: its name in the repository, the status it knows, its demo port."""

    name: str
    code: str
    port: int
    title: str


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("health-insurance", "INCREASED_REIMBURSEMENT", 8091, "Health insurance (mutualities)"),
    SourceSpec("social-integration", "SOCIAL_INTEGRATION_INCOME", 8092, "Public social-welfare centres"),
    SourceSpec("pension-service", "INCOME_GUARANTEE_ELDERLY", 8093, "Federal pension service"),
    SourceSpec("disability", "DISABILITY_ALLOWANCE", 8094, "Persons with a disability administration"),
)


class StatusPeriod(ComplexModel):
    __namespace__ = NS
    _type_info: ClassVar = [
        ("code", Unicode(min_occurs=1, nillable=False)),
        ("start", Date(min_occurs=1, nillable=False)),
        ("end", Date),
    ]


def make_application(spec: SourceSpec) -> WsgiApplication:
    """A spyne WSGI application serving one source's statuses."""

    class StatusSource(ServiceBase):
        @rpc(Unicode(min_occurs=1, nillable=False), Date(min_occurs=1, nillable=False),
             _returns=Array(StatusPeriod))
        def get_statuses(ctx, insz: str, reference_date):  # type: ignore[no-untyped-def]  # noqa: N805
            return [StatusPeriod(code=p.code, start=p.start, end=p.end) for p in periods_for(insz, spec.code)]

    app = Application([StatusSource], tns=NS, name=f"StatusSource_{spec.name.replace('-', '_')}",
                      in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    return WsgiApplication(app)


def for_name(name: str, _state_dir: object = None) -> WsgiApplication:
    """The backend catalogue's factory: status sources keep no state."""
    return make_application(source(name))


def source(name: str) -> SourceSpec:
    for spec in SOURCES:
        if spec.name == name:
            return spec
    raise KeyError(f"no reference source named {name!r}; known: {', '.join(s.name for s in SOURCES)}")
