"""No answer leaves without its audit record: when the record cannot be written, the caller gets a fault."""

from __future__ import annotations

from lxml import etree
from sqlalchemy import text

from integrator import commands
from integrator.circuit import CircuitBreaker
from integrator.config import Settings
from integrator.database import make_engine, session_factory
from integrator.dispatch import Dispatcher
from integrator.pipeline import Pipeline
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore
from services import PUBLISHED
from tests.support import TAX_PATH

UNSIGNED = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            b'<x:GetTaxExemptionStatusesRequest xmlns:x="urn:kruispunt:TaxExemptionStatus:v1"/></s:Body></s:Envelope>')


def pipeline(pki, database_url: str) -> Pipeline:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({"KRUISPUNT_VAR": str(pki.var_dir), "KRUISPUNT_DATABASE_URL": database_url})
    commands.db_upgrade(settings)
    sessions = session_factory(make_engine(database_url))
    key = SigningKey.from_identity(pki.integrator)
    trust = TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path)
    dispatcher = Dispatcher(sessions, CircuitBreaker(sessions), key, trust, settings.security, settings.limits)
    return Pipeline(settings, PUBLISHED, sessions, key, trust, dispatcher)


def fault_code(body: bytes) -> str:
    return etree.fromstring(body).findtext(".//{urn:kruispunt:common:v1}Code") or ""


def test_refusal_is_answered_when_it_can_be_audited(pki, own_database_url: str) -> None:  # type: ignore[no-untyped-def]
    reply = pipeline(pki, own_database_url).handle(TAX_PATH, UNSIGNED)
    assert (reply.status, fault_code(reply.body)) == (400, "Client.Security.Missing")


def test_answer_is_withheld_when_the_audit_table_is_gone(pki, own_database_url: str) -> None:  # type: ignore[no-untyped-def]
    subject = pipeline(pki, own_database_url)
    with subject.sessions() as session:
        session.execute(text("DROP TABLE audit_records"))
        session.commit()
    reply = subject.handle(TAX_PATH, UNSIGNED)
    assert reply.status == 503
    assert fault_code(reply.body) == "Server.AuditUnavailable"
    assert b"Client.Security.Missing" not in reply.body
