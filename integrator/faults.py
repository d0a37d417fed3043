"""The one fault family: every refusal is a KruispuntFault subclass carrying its stable SOAP fault code. The stages'
faults are here; a service's own faults live with the service (services/*.py), subclasses of the same family."""

from __future__ import annotations

import re

# What XML 1.0 cannot carry (and PostgreSQL text cannot hold: NUL): a reason quotes the caller's input (a
# certificate's subject, a header's name), so what it quotes is written as \uXXXX instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """text with every character XML 1.0 cannot carry written as \\uXXXX."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class KruispuntFault(Exception):
    """A refusal with a stable code, a reason a person can act on, and optionally the source it comes from."""

    CODE = "Server.Internal"
    HTTP_STATUS = 500
    DEFAULT_REASON = "The integrator could not handle the request; quote the ticket to the service desk."

    def __init__(self, reason: str | None = None, *, source: str | None = None) -> None:
        self.reason = printable(reason) if reason else self.DEFAULT_REASON
        self.source = printable(source) if source else source
        super().__init__(self.reason)

    @property
    def code(self) -> str:
        return self.CODE


class ClientFault(KruispuntFault):
    """The caller's mistake: answered with HTTP 400, never 500."""

    CODE = "Client"
    HTTP_STATUS = 400


# --- envelope -------------------------------------------------------------------------------------------
class EnvelopeTooLarge(ClientFault):
    CODE = "Client.Envelope.TooLarge"
    HTTP_STATUS = 413


class EnvelopeMalformed(ClientFault):
    CODE = "Client.Envelope.Malformed"


class EnvelopeForbiddenConstruct(ClientFault):
    CODE = "Client.Envelope.ForbiddenConstruct"


class EnvelopeTooDeep(ClientFault):
    CODE = "Client.Envelope.TooDeep"


class EnvelopeTooManyElements(ClientFault):
    CODE = "Client.Envelope.TooManyElements"


class EnvelopeTooManyAttributes(ClientFault):
    CODE = "Client.Envelope.TooManyAttributes"


class EnvelopeTooManyNamespaces(ClientFault):
    CODE = "Client.Envelope.TooManyNamespaces"


class EnvelopeTagTooLong(ClientFault):
    CODE = "Client.Envelope.TagTooLong"


class EnvelopeTextTooLong(ClientFault):
    CODE = "Client.Envelope.TextTooLong"


class EnvelopeTooManyIds(ClientFault):
    CODE = "Client.Envelope.TooManyIds"


class MustUnderstand(ClientFault):
    """A header the integrator does not understand was marked mustUnderstand: SOAP 1.1's own fault code."""

    CODE = "MustUnderstand"


# --- WS-Security ----------------------------------------------------------------------------------------
class SecurityMissing(ClientFault):
    CODE = "Client.Security.Missing"


class SignatureInvalid(ClientFault):
    CODE = "Client.Security.SignatureInvalid"


class TokenTooLarge(ClientFault):
    CODE = "Client.Security.TokenTooLarge"


class TooManyReferences(ClientFault):
    CODE = "Client.Security.TooManyReferences"


class PrefixListTooLong(ClientFault):
    CODE = "Client.Security.PrefixListTooLong"


class KeyReferenceUnsupported(ClientFault):
    CODE = "Client.Security.KeyReferenceUnsupported"


class CertificateNotRegistered(ClientFault):
    CODE = "Client.Security.CertificateNotRegistered"


class UnsignedContent(ClientFault):
    CODE = "Client.Security.UnsignedContent"


class DuplicateId(ClientFault):
    CODE = "Client.Security.DuplicateId"


class AlgorithmRefused(ClientFault):
    CODE = "Client.Security.AlgorithmRefused"


class TimestampInvalid(ClientFault):
    CODE = "Client.Security.TimestampInvalid"


class TimestampExpired(ClientFault):
    CODE = "Client.Security.TimestampExpired"


class TimestampInFuture(ClientFault):
    CODE = "Client.Security.TimestampInFuture"


class CertificateUntrusted(ClientFault):
    CODE = "Client.Security.CertificateUntrusted"


class CertificateExpired(ClientFault):
    CODE = "Client.Security.CertificateExpired"


class CertificateRevoked(ClientFault):
    CODE = "Client.Security.CertificateRevoked"


class CertificateUsage(ClientFault):
    CODE = "Client.Security.CertificateUsage"


class Replay(ClientFault):
    CODE = "Client.Security.Replay"


# --- contract -------------------------------------------------------------------------------------------
class ServiceUnknown(ClientFault):
    CODE = "Client.Service.Unknown"
    HTTP_STATUS = 404


class OperationUnknown(ClientFault):
    CODE = "Client.Contract.OperationUnknown"


class ContractViolation(ClientFault):
    CODE = "Client.Contract.Invalid"


class InszInvalid(ClientFault):
    CODE = "Client.Contract.InszInvalid"


class ServiceRetired(ClientFault):
    CODE = "Client.Service.Retired"
    HTTP_STATUS = 410


# --- caller ---------------------------------------------------------------------------------------------
class CallerHeaderMissing(ClientFault):
    CODE = "Client.Caller.HeaderMissing"


class OrganisationUnknown(ClientFault):
    CODE = "Client.Caller.OrganisationUnknown"
    HTTP_STATUS = 403


class OrganisationMismatch(ClientFault):
    CODE = "Client.Caller.OrganisationMismatch"
    HTTP_STATUS = 403


class OfficialUnknown(ClientFault):
    CODE = "Client.Caller.OfficialUnknown"
    HTTP_STATUS = 403


class AccessDenied(ClientFault):
    CODE = "Client.Caller.AccessDenied"
    HTTP_STATUS = 403


class PersonNotInFiles(ClientFault):
    CODE = "Client.Caller.PersonNotInFiles"
    HTTP_STATUS = 403


class GrantMissing(ClientFault):
    CODE = "Client.Caller.GrantMissing"
    HTTP_STATUS = 403


# --- federation -----------------------------------------------------------------------------------------
class PeerUnknown(ClientFault):
    CODE = "Client.Federation.PeerUnknown"
    HTTP_STATUS = 403


class FederationLoop(ClientFault):
    CODE = "Client.Federation.Loop"
    HTTP_STATUS = 400  # the forwarding integrator's mistake, not ours: 508 would say we looped


class HopLimit(ClientFault):
    CODE = "Client.Federation.HopLimit"


class PeerUnavailable(KruispuntFault):
    CODE = "Server.Federation.PeerUnavailable"
    HTTP_STATUS = 502


class PeerInvalidAnswer(KruispuntFault):
    CODE = "Server.Federation.PeerInvalidAnswer"
    HTTP_STATUS = 502


class PeerRefused(KruispuntFault):
    """A peer's refusal passed on: the caller sees the peer's own code, reason and ticket."""

    CODE = "Server.Federation.PeerRefused"
    HTTP_STATUS = 502

    def __init__(self, reason: str, *, source: str, remote_code: str, remote_status: int,
                 tickets: tuple[str, ...] = ()) -> None:
        super().__init__(reason, source=source)
        self.remote_code = remote_code
        self.tickets = tickets  # the peer's ticket, then those of the integrators behind it
        self.HTTP_STATUS = remote_status if 400 <= remote_status < 600 else 502

    @property
    def code(self) -> str:
        return self.remote_code


# --- services: shared by those that take a MessageId as idempotency key -------------------------------------
class IdempotencyConflict(ClientFault):
    """A MessageId used again for a different request: a retry must repeat the request unchanged."""

    CODE = "Client.Idempotency.Conflict"
    HTTP_STATUS = 409


# --- access management: administrators, officials, grants (repository/administrators.py, officials.py, grants.py;
# every face — AccessManagement v1, the portal's administration pages, the operator CLI — raises these) ---------
class NotAdministrator(ClientFault):
    """The actor may not do this: not an active (co-)administrator of the organisation, or not the service desk
    where only the service desk may act."""

    CODE = "Client.Access.NotAdministrator"
    HTTP_STATUS = 403


class OutsideRights(ClientFault):
    CODE = "Client.Access.OutsideRights"
    HTTP_STATUS = 403


class SelfGrant(ClientFault):
    CODE = "Client.Access.SelfGrant"
    HTTP_STATUS = 403


class SameApprover(ClientFault):
    CODE = "Client.Access.SameApprover"
    HTTP_STATUS = 403


class GrantUnknown(ClientFault):
    CODE = "Client.Access.GrantUnknown"
    HTTP_STATUS = 404


class GrantState(ClientFault):
    """The grant is not in a state that allows the act (approving an active grant, revoking a revoked one, a
    second open grant for the same service and purpose)."""

    CODE = "Client.Access.GrantState"
    HTTP_STATUS = 409


class AccessOfficialUnknown(ClientFault):
    CODE = "Client.Access.OfficialUnknown"
    HTTP_STATUS = 404


class OfficialInactive(ClientFault):
    CODE = "Client.Access.OfficialInactive"
    HTTP_STATUS = 409


class AccessServiceUnknown(ClientFault):
    CODE = "Client.Access.ServiceUnknown"
    HTTP_STATUS = 404


class PeriodInvalid(ClientFault):
    CODE = "Client.Access.PeriodInvalid"


class ReasonMissing(ClientFault):
    CODE = "Client.Access.ReasonMissing"


class EmailInvalid(ClientFault):
    CODE = "Client.Access.EmailInvalid"


class LocalAdministratorTaken(ClientFault):
    CODE = "Client.Access.LocalAdministratorTaken"
    HTTP_STATUS = 409


# --- end of access management -----------------------------------------------------------------------------


# --- portal: log-on and sessions (integrator/faces/portal) ----------------------------------------------------
# Shown as pages, not SOAP faults: the portal translates each reason (its refusals module) and logs the code.
class PortalLogOnFailed(ClientFault):
    """The user number, password or code is not right (which one is never said)."""

    CODE = "Client.Portal.LogOnFailed"
    HTTP_STATUS = 401
    DEFAULT_REASON = "The user number, password or code is not right; try again."


class PortalLocked(ClientFault):
    """Too many failed log-ons for the user number, or from the client's address: locked for a while."""

    CODE = "Client.Portal.Locked"
    HTTP_STATUS = 429
    DEFAULT_REASON = "Locked after too many failed log-ons; try again later or ask your local administrator."


class PortalSessionExpired(ClientFault):
    CODE = "Client.Portal.SessionExpired"
    HTTP_STATUS = 401
    DEFAULT_REASON = "Your session has ended; log on again."


class PortalCsrfRefused(ClientFault):
    """A form sent without the session's CSRF token (or with another one)."""

    CODE = "Client.Portal.CsrfRefused"
    HTTP_STATUS = 403
    DEFAULT_REASON = "The form was not sent from this portal's page; open the page again and resend it."


class PortalCertificateRefused(ClientFault):
    """No personal certificate, one not issued by the citizen CA, expired, without an INSZ, or of nobody's."""

    CODE = "Client.Portal.CertificateRefused"
    HTTP_STATUS = 403
    DEFAULT_REASON = "Your certificate cannot log you on; insert your eID or use your token."


class PortalApplicationNotGranted(ClientFault):
    CODE = "Client.Portal.ApplicationNotGranted"
    HTTP_STATUS = 403
    DEFAULT_REASON = "You hold no grant for this application; ask your local administrator for one."


# --- end of portal ------------------------------------------------------------------------------------------


# --- server side ----------------------------------------------------------------------------------------
class InternalError(KruispuntFault):
    CODE = "Server.Internal"


class AuditUnavailable(KruispuntFault):
    CODE = "Server.AuditUnavailable"
    HTTP_STATUS = 503
    DEFAULT_REASON = "The transaction could not be audited, so it was not answered; try again later."


class DatabaseUnavailable(KruispuntFault):
    CODE = "Server.DatabaseUnavailable"
    HTTP_STATUS = 503
    DEFAULT_REASON = "The integrator's database cannot be reached; nothing of the request was stored; retry later."


class TransactionConflict(KruispuntFault):
    CODE = "Server.TransactionConflict"
    HTTP_STATUS = 503
    DEFAULT_REASON = "The transaction kept conflicting with concurrent ones and was not stored; retry it."


class BackendUnavailable(KruispuntFault):
    CODE = "Server.Backend.Unavailable"
    HTTP_STATUS = 502
    request_sent = True  # False when the connection was refused: safe to try another endpoint


class CircuitOpen(BackendUnavailable):
    """The backend failed repeatedly: it is not called until its cool-down has passed (then one trial call)."""

    CODE = "Server.Backend.CircuitOpen"
    request_sent = False


class BackendTimeout(KruispuntFault):
    CODE = "Server.Backend.Timeout"
    HTTP_STATUS = 504


class BackendInvalidAnswer(KruispuntFault):
    CODE = "Server.Backend.InvalidAnswer"
    HTTP_STATUS = 502


class BackendFault(KruispuntFault):
    CODE = "Server.Backend.Fault"
    HTTP_STATUS = 502


class BackendNotRegistered(KruispuntFault):
    CODE = "Server.Backend.NotRegistered"
    HTTP_STATUS = 503


def all_fault_classes() -> list[type[KruispuntFault]]:
    """Every concrete fault class, for the README table and its test."""
    seen: list[type[KruispuntFault]] = []
    pending: list[type[KruispuntFault]] = [KruispuntFault]
    while pending:
        cls = pending.pop()
        if cls not in (KruispuntFault, ClientFault):
            seen.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: c.CODE)
