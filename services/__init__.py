"""The published services: each module declares its contract and handlers; PUBLISHED lists them."""

from integrator.service import ServiceDefinition
from services.tax_exemption import SERVICE as TAX_EXEMPTION

PUBLISHED: list[ServiceDefinition] = [TAX_EXEMPTION]
