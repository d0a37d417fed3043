"""The baseline of bench/lookup.py: a bare spyne service with one trivial, unsigned operation.

Same SOAP stack as the reference backends (spyne, Soap11 with lxml validation) and, under bench/lookup.py, the same
gunicorn settings as the integrator (gunicorn.conf.py), but no WS-Security, no database, no outgoing calls.
"""

from __future__ import annotations

from spyne import Application, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

NS = "urn:kruispunt:bench:Echo:v1"


class Echo(ServiceBase):
    @rpc(Unicode(min_occurs=1, nillable=False), _returns=Unicode)
    def echo(ctx, text: str) -> str:  # type: ignore[no-untyped-def]  # noqa: N805
        return text


application = WsgiApplication(Application([Echo], tns=NS, name="BenchEcho", in_protocol=Soap11(validator="lxml"),
                                          out_protocol=Soap11()))


def request_body(text: str = "kruispunt-bench") -> bytes:
    """The one request the baseline phase sends, over and over."""
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:e="{NS}"><soapenv:Body><e:echo><e:text>{text}</e:text></e:echo></soapenv:Body></soapenv:Envelope>'
    ).encode()
