"""Reference backends: real SOAP services (spyne) standing in for the authentic sources, with synthetic data."""
