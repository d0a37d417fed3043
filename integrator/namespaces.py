"""XML namespace URIs spoken on the wire, one name each: the client library's (kruispunt_client.namespaces), so
the integrator and its callers cannot disagree on one."""

from kruispunt_client.namespaces import BASE64_BINARY, DS, EXC_C14N, KP, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q

__all__ = ["BASE64_BINARY", "DS", "EXC_C14N", "KP", "SOAP_ENV", "WSSE", "WSU", "WSU_ID", "X509_TOKEN", "q"]
