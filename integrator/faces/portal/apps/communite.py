"""Communit-e on the portal: an official submits a citizen's application for a disability allowance or a pension
and gets the integrator's signed receipt; fetches a receipt again (its page, or its exact signed bytes to keep);
lists their own receipts with where each delivery stands. Every act and every list is one of Applications v1's
operations (services/applications.py) asked through ask(): authorised, ticketed and audited as the signed SOAP
call is. The receipt's attested fields are read with the client library's verify_receipt, against the
integrator's certificate, as whoever holds the receipt reads them."""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from kruispunt_client.receipt import Receipt, ReceiptInvalid, verify_receipt
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from integrator.faces.portal.apps.operations import Outcome, ServiceOperations, new_message_id, purposes
from integrator.faces.portal.context import PortalContext, visit
from integrator.faces.portal.refusals import http_error
from services.applications import NS
from services.applications import SERVICE as DEFINITION

SERVICE = DEFINITION.name
OPERATIONS = ServiceOperations(DEFINITION, NS)
SLUG = "applications"  # the registry's slug (apps/__init__.py): the blueprint is named after it
# what xsd/Applications/v1/Applications.xsd allows
KINDS = {"DISABILITY_ALLOWANCE": _l("Disability allowance"), "PENSION": _l("Pension")}
RELATIONSHIPS = {"SPOUSE": _l("Spouse"), "PARTNER": _l("Partner"), "CHILD": _l("Child"), "PARENT": _l("Parent"),
                 "OTHER": _l("Other")}
MIME_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "text/plain", "application/xml"})
MAX_DOCUMENTS = 5
MAX_DOCUMENT_BYTES = 524288 // 4 * 3  # ContentType's maxLength is of the base64 text: 512 KiB of it
MAX_NAME = 200
MAX_FILE_NUMBER = 100
DELIVERY_STATES = {"PENDING": _l("forwarding pending"), "DELIVERED": _l("delivered"), "REFUSED": _l("refused")}
FORWARDING = {"FORWARDING_PENDING": _l("forwarding pending"), "DELIVERED": _l("delivered"),
              "REFUSED": _l("refused")}
HOUSEHOLD_ROWS = 3  # the form's member rows (the XSD allows 20)
PAGE_SIZE = 20
APPLICANT_FIELDS = ("kind", "purpose", "insz", "last_name", "first_names", "birth_date", "file_number")
MEMBER_FIELDS = ("insz", "last_name", "first_names", "relationship")


@dataclass(frozen=True)
class Shown:
    """A receipt as a page shows it: what its signature attests, and where its delivery stands now."""

    ticket: str
    receipt: Receipt | None  # None: the bytes did not verify against the integrator's certificate
    delivery: dict[str, Any]


def _signed(outcome: Outcome) -> bytes:
    assert outcome.answer is not None
    return base64.b64decode(outcome.answer["SignedReceipt"])


def shown(context: PortalContext, outcome: Outcome) -> Shown:
    """The receipt of a SubmitApplication or GetReceipt answer, read from its signed bytes."""
    assert outcome.answer is not None
    try:
        receipt: Receipt | None = verify_receipt(_signed(outcome), context.pipeline.signing_key.cert)
    except ReceiptInvalid:
        receipt = None
    return Shown(outcome.answer["Ticket"], receipt, outcome.answer["Delivery"])


def _empty_form() -> dict[str, Any]:
    form: dict[str, Any] = {field: "" for field in APPLICANT_FIELDS}
    form.update(kind=next(iter(KINDS)), message_id=new_message_id(),
                members=[{field: "" for field in MEMBER_FIELDS} for _ in range(HOUSEHOLD_ROWS)])
    return form


def _read_form() -> dict[str, Any]:
    form: dict[str, Any] = {field: request.form.get(field, "").strip() for field in APPLICANT_FIELDS}
    form["message_id"] = request.form.get("message_id", "").strip() or new_message_id()
    form["members"] = [{field: request.form.get(f"member-{row}-{field}", "").strip() for field in MEMBER_FIELDS}
                       for row in range(1, HOUSEHOLD_ROWS + 1)]
    return form


def _member(row: int, member: dict[str, str], problems: list[str]) -> dict[str, Any] | None:
    """A household row as the XSD's Member: by INSZ, or by name without one; None for a blank row."""
    if not any(member[field] for field in ("insz", "last_name", "first_names")):
        return None
    if member["relationship"] not in RELATIONSHIPS:
        problems.append(_("Household member %(row)d: choose the relationship to the applicant.", row=row))
    if member["insz"]:
        return {"Insz": member["insz"], "Relationship": member["relationship"]}
    if not (member["last_name"] and member["first_names"]):
        problems.append(_("Household member %(row)d: give the INSZ, or else the last name and first names.",
                          row=row))
    elif max(len(member["last_name"]), len(member["first_names"])) > MAX_NAME:
        problems.append(_("Household member %(row)d: a name is longer than %(most)d characters.", row=row,
                          most=MAX_NAME))
    return {"LastName": member["last_name"], "FirstNames": member["first_names"],
            "Relationship": member["relationship"]}


def _document(upload: FileStorage, problems: list[str]) -> dict[str, Any] | None:
    """An uploaded file as the XSD's Document (its content base64), or None with the problem said."""
    name = upload.filename or ""
    mime_type = mimetypes.guess_type(name)[0] or upload.mimetype
    content = upload.stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(content) > MAX_DOCUMENT_BYTES:
        problems.append(_("The document %(name)s is larger than %(most)d KiB, the most a document may be.",
                          name=name, most=MAX_DOCUMENT_BYTES // 1024))
    elif not content:
        problems.append(_("The document %(name)s is empty.", name=name))
    elif mime_type not in MIME_TYPES:
        problems.append(_("The document %(name)s is not a PDF, JPEG, PNG, text or XML file.", name=name))
    elif len(name) > MAX_NAME:
        problems.append(_("The name of a document is longer than %(most)d characters.", most=MAX_NAME))
    else:
        return {"Name": name, "MimeType": mime_type, "Content": base64.b64encode(content).decode()}
    return None


def _documents(problems: list[str]) -> list[dict[str, Any]]:
    uploads = [upload for upload in request.files.getlist("documents") if upload.filename]
    if len(uploads) > MAX_DOCUMENTS:
        problems.append(_("At most %(most)d documents go with an application; you chose %(chosen)d.",
                          most=MAX_DOCUMENTS, chosen=len(uploads)))
        return []
    documents = [_document(upload, problems) for upload in uploads]
    return [document for document in documents if document is not None]


def _application(form: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The SubmitApplicationRequest's values from the form; what the page can tell is wrong goes to problems
    (the service's contract and rules judge the rest)."""
    try:
        born: date | None = date.fromisoformat(form["birth_date"])
    except ValueError:
        born = None
        problems.append(_("The birth date is not a date (YYYY-MM-DD)."))
    if form["kind"] not in KINDS:
        problems.append(_("Choose the kind of application."))
    if max(len(form["last_name"]), len(form["first_names"])) > MAX_NAME:
        problems.append(_("A name is longer than %(most)d characters.", most=MAX_NAME))
    if len(form["file_number"]) > MAX_FILE_NUMBER:
        problems.append(_("The file number is longer than %(most)d characters.", most=MAX_FILE_NUMBER))
    members = [m for row, member in enumerate(form["members"], start=1)
               if (m := _member(row, member, problems)) is not None]
    return {"Kind": form["kind"], "Insz": form["insz"], "LastName": form["last_name"],
            "FirstNames": form["first_names"], "BirthDate": born, "FileNumber": form["file_number"],
            "Household": {"Member": members} if members else None, "Document": _documents(problems)}


def _page(context: PortalContext, form: dict[str, Any], problems: list[str], outcome: Outcome | None = None,
          status: int = 200) -> tuple[str, int]:
    choices = purposes(context, SERVICE, date.today())
    if not form["purpose"] and choices:
        form["purpose"] = choices[0]
    receipt = shown(context, outcome) if outcome is not None and outcome.fault is None else None
    return render_template("apps/communite.html", form=form, purposes=choices, problems=problems, outcome=outcome,
                           shown=receipt, kinds=KINDS, relationships=RELATIONSHIPS, limits=_limits(),
                           forwarding=FORWARDING, states=DELIVERY_STATES), status


def _limits() -> dict[str, int]:
    return {"documents": MAX_DOCUMENTS, "document_kib": MAX_DOCUMENT_BYTES // 1024,
            "form_kib": (request.max_content_length or 0) // 1024}


def _page_number(value: str | None) -> int:
    try:
        return max(1, int(value or "1"))
    except ValueError:
        return 1


def blueprint(context: PortalContext) -> Blueprint:
    pages = Blueprint(SLUG, __name__)

    @pages.route("/", methods=["GET", "POST"])
    def submit() -> tuple[str, int]:
        """The application form; sent, the application and its signed receipt (or the refusal)."""
        if request.method == "GET":
            return _page(context, _empty_form(), [])
        form = _read_form()
        problems: list[str] = []
        values = _application(form, problems)
        if problems:
            return _page(context, form, problems)
        outcome = OPERATIONS.ask(context, "SubmitApplication", values, form["message_id"], purpose=form["purpose"])
        if outcome.fault is None:  # the next application is a new message
            form = dict(_empty_form(), purpose=form["purpose"])
        return _page(context, form, [], outcome)

    @pages.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> Any:
        """The form was larger than the portal accepts (its body is not read): the form again, saying so."""
        if visit().official is None or not any(a.slug == SLUG for a in visit().granted):
            return http_error(error)
        limits = _limits()
        return _page(context, _empty_form(), [_(
            "The form with its documents was larger than the %(most)d KiB the portal accepts: nothing was sent. "
            "Choose fewer or smaller documents (at most %(documents)d, each at most %(document)d KiB).",
            most=limits["form_kib"], documents=limits["documents"], document=limits["document_kib"])], status=413)

    @pages.route("/receipts")
    def receipts() -> str:
        """The official's own receipts, newest first, a page at a time (of one kind with ?kind=)."""
        kind = request.args.get("kind", "")
        kind = kind if kind in KINDS else ""
        page = _page_number(request.args.get("page"))
        listed = OPERATIONS.ask(context, "ListReceipts", {"Kind": kind or None, "Page": page, "PageSize": PAGE_SIZE})
        return render_template("apps/communite_receipts.html", listed=listed, kind=kind, page=page, kinds=KINDS,
                               states=DELIVERY_STATES)

    @pages.route("/receipts/<ticket>.xml")
    def download(ticket: str) -> Response | tuple[str, int]:
        """The receipt's exact signed bytes, to keep (a ticket not the official's: the refusal)."""
        outcome = OPERATIONS.ask(context, "GetReceipt", {"Ticket": ticket})
        if outcome.fault is not None:
            return _receipt_page(context, ticket, outcome)
        # the ticket matched the contract's TicketType to be found: safe in a header
        return Response(_signed(outcome), mimetype="application/xml",
                        headers={"Content-Disposition": f'attachment; filename="receipt-{ticket}.xml"'})

    @pages.route("/receipts/<ticket>")
    def receipt(ticket: str) -> tuple[str, int]:
        """One receipt: its attested fields, where its delivery stands, its download."""
        return _receipt_page(context, ticket, OPERATIONS.ask(context, "GetReceipt", {"Ticket": ticket}))

    return pages


def _receipt_page(context: PortalContext, ticket: str, outcome: Outcome) -> tuple[str, int]:
    """The receipt's page, or the refusal (its reason, code and ticket) with the fault's status."""
    found = shown(context, outcome) if outcome.fault is None else None
    status = outcome.fault.HTTP_STATUS if outcome.fault is not None else 200
    return render_template("apps/communite_receipt.html", ticket=ticket, outcome=outcome, shown=found, kinds=KINDS,
                           forwarding=FORWARDING, states=DELIVERY_STATES), status
