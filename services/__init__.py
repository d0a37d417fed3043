"""The published services: each module declares its contract and handlers; PUBLISHED lists them."""

from integrator.service import ServiceDefinition
from services.access_management import SERVICE as ACCESS_MANAGEMENT
from services.applications import SERVICE as APPLICATIONS
from services.bis_register import SERVICE as BIS_REGISTER
from services.creabis import SERVICE as CREABIS
from services.directory import SERVICE as REFERENCE_DIRECTORY
from services.federation import SERVICE as FEDERATION
from services.metadata import SERVICE as METADATA
from services.proposals import SERVICE as UPDATE_PROPOSALS
from services.registration import SERVICE as REPOSITORY
from services.tax_exemption import SERVICE as TAX_EXEMPTION

PUBLISHED: list[ServiceDefinition] = [TAX_EXEMPTION, REFERENCE_DIRECTORY, METADATA, REPOSITORY, FEDERATION,
                                   UPDATE_PROPOSALS, APPLICATIONS, CREABIS, BIS_REGISTER, ACCESS_MANAGEMENT]
