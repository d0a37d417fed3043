"""Application intake of an institution (disability-allowance administration, pension service).

PLACEHOLDER until the applications service lands: accepts nothing but answers its WSDL, so the stack starts."""

from __future__ import annotations

from pathlib import Path

from spyne import Application, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

NS = "urn:kruispunt:backends:ApplicationIntake:v1"


def make_application(name: str, state_dir: Path) -> WsgiApplication:
    class ApplicationIntake(ServiceBase):
        @rpc(Unicode(min_occurs=1, nillable=False), _returns=Unicode)
        def ping(ctx, text: str):  # type: ignore[no-untyped-def]  # noqa: N805
            return text

    app = Application([ApplicationIntake], tns=NS, name=f"ApplicationIntake_{name.replace('-', '_')}",
                      in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    return WsgiApplication(app)
