"""The services repository: organisations, officials and grants, services and their backends. No HTTP, no SOAP."""
