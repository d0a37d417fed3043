"""Federation over real sockets: three integrators, separate processes and databases (social-security on
PostgreSQL), a sync and a call through two hops."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import select

from integrator.audit import AuditRecord
from integrator.namespaces import KP, q
from repository.models import ServiceVersion
from services.backends.persons import PERSONS
from services.demo_organisations import OFFICIALS
from tests.federation import SERVICE, Integrator
from tests.support import Request, post

SS = "urn:kruispunt:backends:StatusSource:v1"


def sync(integrator: Integrator, peer: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "integrator.faces.cli", "peer", "sync", peer, "--quiet"],
                          env=integrator.env, capture_output=True, text=True, timeout=120, check=False)


class StatusRequest(Request):
    """A signed get_statuses request (the StatusSource contract) instead of the tax lookup."""

    def envelope(self):  # type: ignore[no-untyped-def]
        root, caller = super().envelope()
        body = root[1]
        body.remove(body[0])
        body.append(build(f"{{{SS}}}get_statuses", {"insz": self.insz, "reference_date": self.on}))
        return root, caller


def test_call_at_the_regional_integrator_is_answered_by_the_federal_backend_through_two_hops(federation) -> None:
    for local, peer in ((federation.social, "federal"), (federation.regional, "social-security")):
        done = sync(local, peer)
        assert done.returncode == 0, done.stderr
    with federation.regional.sessions() as session:
        row = session.execute(select(ServiceVersion).where(ServiceVersion.name == SERVICE)).scalar_one()
        assert (row.origin, row.status) == ("federal", "active")
    person = PERSONS[0]
    request = StatusRequest(federation.regional_identity, OFFICIALS[0].insz, person.insz, date(2026, 1, 1))
    reply = post(federation.regional.base_url, request.signed(), path=f"/soap/{SERVICE}/v1")
    assert reply.status_code == 200, reply.text
    answer = etree.fromstring(reply.content)
    codes = sorted(c.text for c in answer.iter(f"{{{SS}}}code"))
    assert codes == ["INCREASED_REIMBURSEMENT"]  # the federal backend is the health-insurance source
    header = answer.find(f".//{q(KP, 'Answer')}")
    ticket = header.findtext(q(KP, "Ticket"))
    upstream = [t.text for t in header.iterfind(q(KP, "UpstreamTicket"))]
    assert len(upstream) == 2  # social-security's, then federal's
    records = {}
    for integrator, own in ((federation.regional, ticket), (federation.social, upstream[0]),
                            (federation.federal, upstream[1])):
        with integrator.sessions() as session:
            records[integrator.name] = session.get(AuditRecord, own)
    assert all(r is not None and r.outcome == "OK" for r in records.values())
    assert records["social-security"].organisation == records["federal"].organisation == "0207123407"
    assert records["federal"].official == OFFICIALS[0].insz
    middle = records["social-security"]
    assert (middle.came_from, middle.came_from_ticket) == ("regional", ticket)
    assert (middle.forwarded_to, middle.forwarded_tickets) == ("federal", upstream[1])
    assert (records["federal"].came_from, records["federal"].came_from_ticket) == ("social-security", upstream[0])
    assert records["federal"].forwarded_to is None
    assert (records["regional"].forwarded_to, records["regional"].forwarded_tickets) == (
        "social-security", " ".join(upstream))
    assert records["regional"].came_from is None
