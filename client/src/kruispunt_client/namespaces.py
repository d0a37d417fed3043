"""XML namespace URIs spoken on the wire, one name each (the integrator uses these same names)."""

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509_TOKEN = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
KP = "urn:kruispunt:common:v1"

WSU_ID = f"{{{WSU}}}Id"


def q(ns: str, local: str) -> str:
    """Clark notation: {ns}local."""
    return f"{{{ns}}}{local}"


__all__ = ["BASE64_BINARY", "DS", "EXC_C14N", "KP", "SOAP_ENV", "WSSE", "WSU", "WSU_ID", "X509_TOKEN", "q"]
