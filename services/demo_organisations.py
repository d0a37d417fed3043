"""The demo network's organisations and officials, and the purposes they act for: what services/demo.py loads and
the demo modules of the municipal services (services/demo_*.py) build on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.backends.persons import make_insz
from services.tax_exemption import SERVICE as TAX_EXEMPTION

PURPOSE_TAX = "MUNICIPAL_TAX_EXEMPTION"
GENERIC = "StatusSource"
PURPOSE_DISCOVERY = "SERVICE_DISCOVERY"
PURPOSE_REGISTRATION = "SERVICE_REGISTRATION"
PURPOSE_FILES = "FILE_MANAGEMENT"
DIRECTORY = "ReferenceDirectory"
RIGHTS = (TAX_EXEMPTION.name, GENERIC, "Metadata", "Repository", DIRECTORY)  # every demo organisation may use

def enterprise_number(first8: int) -> str:
    """A syntactically valid enterprise number (check digits mod 97) for synthetic organisations."""
    digits = f"{first8:08d}"
    return f"{digits}{97 - int(digits) % 97:02d}"


@dataclass(frozen=True)
class DemoOrganisation:
    enterprise_number: str
    name: str
    kind: str
    nis_code: str | None


@dataclass(frozen=True)
class DemoOfficial:
    organisation: str
    insz: str
    name: str
    grants: tuple[str, ...]  # services granted for PURPOSE_TAX; every demo official may also discover services


KRUISDORP = DemoOrganisation(enterprise_number(2071234), "Gemeente Kruisdorp", "municipality", "44021")
BRUGSTEDE = DemoOrganisation(enterprise_number(2079876), "Stad Brugstede", "municipality", "31005")
OCMW = DemoOrganisation(enterprise_number(2125555), "OCMW Kruisdorp", "pcsw", None)
INSTITUTION = DemoOrganisation(enterprise_number(2409001), "Sociale Verzekeringsinstelling Demo", "institution", None)
ORGANISATIONS = (KRUISDORP, BRUGSTEDE, OCMW, INSTITUTION)

OFFICIALS = (
    DemoOfficial(KRUISDORP.enterprise_number, make_insz(date(1975, 4, 12), 145), "An Verhoeven (tax office)",
                 (TAX_EXEMPTION.name, GENERIC)),
    DemoOfficial(KRUISDORP.enterprise_number, make_insz(date(1982, 9, 3), 212), "Bart Smets (population office)",
                 ()),
    DemoOfficial(BRUGSTEDE.enterprise_number, make_insz(date(1969, 1, 27), 89), "Carine Jacobs (tax office)",
                 (TAX_EXEMPTION.name,)),
    DemoOfficial(OCMW.enterprise_number, make_insz(date(1991, 12, 5), 33), "Dirk Peeters (social worker)",
                 (TAX_EXEMPTION.name,)),
    DemoOfficial(INSTITUTION.enterprise_number, make_insz(date(1980, 3, 3), 77), "Els Mertens (file handler)",
                 ()),
)


@dataclass(frozen=True)
class DemoAdministrator:
    organisation: str
    insz: str
    name: str
    department: str
    role: str  # repository.models.AdministratorRole: local | co


ADMINISTRATORS = (  # designated by the service desk; services/demo_access.py loads them
    DemoAdministrator(KRUISDORP.enterprise_number, make_insz(date(1977, 6, 21), 118), "Fien De Smet",
                      "personnel (local administrator)", "local"),
    DemoAdministrator(KRUISDORP.enterprise_number, make_insz(date(1985, 11, 2), 64), "Geert Wouters",
                      "ICT (co-administrator)", "co"),
    DemoAdministrator(BRUGSTEDE.enterprise_number, make_insz(date(1972, 2, 9), 156), "Hilde Claes",
                      "personnel (local administrator)", "local"),
)
