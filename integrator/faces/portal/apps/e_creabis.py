"""e-Creabis on the portal: an official searches a person in the National Register and the BIS register (the
candidates ranked by similarity); when nobody matches well enough, creates a BIS number with the identity document
as evidence; and lists the BIS numbers they created. Every act and every list is one of Creabis v1's operations
(services/creabis.py) asked through ask(): authorised, ticketed and audited as the signed SOAP call is; the rules
(what a birth date may be, an exact match, the right to create) are the service's, never the page's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from integrator.faces.portal.apps.operations import Outcome, ServiceOperations, new_message_id
from integrator.faces.portal.context import PortalContext
from services.creabis import NS
from services.creabis import SERVICE as DEFINITION

SERVICE = DEFINITION.name
SLUG = "e-creabis"  # the registry's slug (apps/__init__.py): the blueprint is named after it
PURPOSE = "IDENTIFICATION"  # what the demo grants Creabis for (services/demo_creabis.py); else the first held
OPERATIONS = ServiceOperations(DEFINITION, NS, PURPOSE)
WELL_ENOUGH = Decimal(90)  # a candidate scoring this much is the person: no creation offered
PAGE_SIZE = 20
LAST_PAGE = 100_000  # a page number beyond any list (the database's offset stays small)
# what xsd/Creabis/v1/Creabis.xsd allows
GENDERS = {"M": _l("Male"), "F": _l("Female")}
DOCUMENTS = {"PASSPORT": _l("Passport"), "IDENTITY_CARD": _l("Identity card"),
             "RESIDENCE_PERMIT": _l("Residence permit"), "BIRTH_CERTIFICATE": _l("Birth certificate"),
             "DRIVING_LICENCE": _l("Driving licence"), "OTHER": _l("Other document")}
SOURCES = {"NATIONAL_REGISTER": _l("National Register"), "BIS_REGISTER": _l("BIS register")}
SEARCH_FIELDS = ("last_name", "first_names", "birth_date", "gender", "nationality")
CREATE_FIELDS = (*SEARCH_FIELDS, "document_type", "document_number", "issuing_country", "street", "house_number",
                 "postcode", "municipality", "country")
CODES = ("gender", "nationality", "issuing_country", "country")  # codes the contract wants in capitals


def _form(fields: tuple[str, ...], prefix: str = "") -> dict[str, str]:
    values = {field: request.form.get(prefix + field, "").strip() for field in fields}
    return {field: value.upper() if field in CODES else value for field, value in values.items()}


def _search_request(form: dict[str, str]) -> dict[str, Any]:
    return {"LastName": form["last_name"], "FirstNames": form["first_names"] or None,
            "BirthDate": form["birth_date"] or None, "Gender": form["gender"] or None,
            "Nationality": form["nationality"] or None}


def _create_request(form: dict[str, str]) -> dict[str, Any]:
    """CreateBisNumber's request from the create form: the address only when any of it is filled in."""
    address = {"Street": form["street"], "HouseNumber": form["house_number"], "Postcode": form["postcode"],
               "Municipality": form["municipality"], "Country": form["country"]}
    return {"Person": {"LastName": form["last_name"], "FirstNames": form["first_names"],
                       "BirthDate": form["birth_date"] or None, "Gender": form["gender"] or None,
                       "Nationality": form["nationality"]},
            "Evidence": {"DocumentType": form["document_type"], "DocumentNumber": form["document_number"],
                         "IssuingCountry": form["issuing_country"]},
            "Address": address if any(address.values()) else None}


def _offer_creation(found: Outcome) -> bool:
    """A complete search on which nobody matches well enough: the person may need a BIS number."""
    answer = found.answer
    if answer is None or not answer["Complete"]:
        return False
    return all(Decimal(str(c["Score"])) < WELL_ENOUGH for c in answer.get("Candidate") or [])


def _page() -> int:
    page = request.args.get("page", "1")
    return min(int(page), LAST_PAGE) if page.isdigit() and int(page) > 0 else 1


def blueprint(context: PortalContext) -> Blueprint:
    pages = Blueprint(SLUG, __name__)

    @pages.route("/", methods=["GET", "POST"])
    def search() -> str:
        """Search; the candidates, ranked; when nobody matches well enough, create a BIS number."""
        search_form = dict.fromkeys(SEARCH_FIELDS, "")
        create_form = dict.fromkeys(CREATE_FIELDS, "") | {"message_id": new_message_id()}
        found = created = None
        if request.method == "POST" and request.form.get("action") == "create":
            create_form = _form(CREATE_FIELDS, "new-") | {"message_id": request.form.get("message_id", "")}
            created = OPERATIONS.ask(context, "CreateBisNumber", _create_request(create_form),
                                     create_form["message_id"])
            if created.fault is None:  # the next creation is a new message; this one is done
                create_form = dict.fromkeys(CREATE_FIELDS, "") | {"message_id": new_message_id()}
            else:
                search_form = {field: create_form[field] for field in SEARCH_FIELDS}
        elif request.method == "POST":
            search_form = _form(SEARCH_FIELDS)
            found = OPERATIONS.ask(context, "SearchPersons", _search_request(search_form))
            create_form.update(search_form)
        offer = (found is not None and _offer_creation(found)) or (created is not None and created.fault is not None)
        return render_template("apps/e_creabis.html", search=search_form, create=create_form, found=found,
                               created=created, offer=offer, genders=GENDERS, documents=DOCUMENTS,
                               sources=SOURCES)

    @pages.route("/created")
    def created() -> str:
        """The BIS numbers the official created, newest first, a page at a time."""
        page = _page()
        listed = OPERATIONS.ask(context, "ListCreatedBisNumbers", {"Page": page, "PageSize": PAGE_SIZE})
        total = listed.answer["Total"] if listed.answer else 0
        pages_count = max(1, -(-total // PAGE_SIZE))
        return render_template("apps/e_creabis_created.html", listed=listed, page=page, pages=pages_count,
                               genders=GENDERS)

    return pages
