"""What the client library raises when something the integrator sent does not pass its checks."""


class AnswerRefused(Exception):
    """The integrator's answer did not pass the client's checks (signature, signer, binding to the request)."""


class CertificateRefused(AnswerRefused):
    """The answer's signing certificate is not one the network's trust anchors vouch for today."""


__all__ = ["AnswerRefused", "CertificateRefused"]
