"""The portal's demo log-ons: fixed fallback credentials for the demo officials (user number, password, a code card
or a TOTP secret: the README lists them) and a demo citizen CA that issues each of them a personal certificate
as the eID's authentication certificate is, the INSZ in the subject's serialNumber (var/pki/citizen/)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrator.config import Settings
from integrator.pki import Identity, create_ca, issue
from repository.credentials import CARD_SIZE, CODE_ALPHABET, CODE_LENGTH, issue_credentials
from repository.models import Official, Organisation
from repository.portal_models import PortalCredential, TokenKind
from services.demo_organisations import ADMINISTRATORS, OFFICIALS, DemoAdministrator, DemoOfficial

Person = DemoOfficial | DemoAdministrator

CITIZEN_CA_NAME = "kruispunt demo citizen CA"
PKCS12_PASSWORD = b"kruispunt"  # of the demo .p12 files, for importing them into a browser


@dataclass(frozen=True)
class DemoLogOn:
    """One demo official's fallback log-on, as the README lists it."""

    official: Person
    user_number: str
    password: str
    kind: TokenKind
    totp_secret: str | None = None

    @property
    def card(self) -> tuple[str, ...]:
        """The demo card's codes (position 1 first), derived from the user number: the same on every machine."""
        if self.kind is not TokenKind.CARD:
            return ()
        codes = []
        for position in range(1, CARD_SIZE + 1):
            digest = hashlib.sha256(f"kruispunt demo card {self.user_number} {position}".encode()).digest()
            codes.append("".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in digest[:CODE_LENGTH]))
        return tuple(codes)

    def code(self, position: int) -> str:
        return self.card[position - 1]


AN, BART, CARINE, DIRK, ELS = OFFICIALS
FIEN, GEERT, HILDE = ADMINISTRATORS
LOG_ONS = (
    DemoLogOn(AN, "10000001", "demo-an-verhoeven", TokenKind.CARD),
    DemoLogOn(BART, "10000002", "demo-bart-smets", TokenKind.TOTP, "KRUISPUNTDEMOBARTSMETSTOTPSECRET"),
    DemoLogOn(CARINE, "10000003", "demo-carine-jacobs", TokenKind.CARD),
    DemoLogOn(DIRK, "10000004", "demo-dirk-peeters", TokenKind.TOTP, "KRUISPUNTDEMODIRKPEETERSTOTPSECR"),
    DemoLogOn(ELS, "10000005", "demo-els-mertens", TokenKind.CARD),
    DemoLogOn(FIEN, "10000006", "demo-fien-de-smet", TokenKind.CARD),
    DemoLogOn(GEERT, "10000007", "demo-geert-wouters", TokenKind.TOTP, "KRUISPUNTDEMOGEERTWOUTERSTOTPSEC"),
    DemoLogOn(HILDE, "10000008", "demo-hilde-claes", TokenKind.CARD),
)


def load(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """The demo officials' credentials (those who have none yet) and their personal certificates."""
    for log_on in LOG_ONS:
        official_id = _official_id(session, log_on.official)
        if session.get(PortalCredential, official_id) is None:
            issue_credentials(session, official_id, log_on.kind, user_number=log_on.user_number,
                              password=log_on.password, card=log_on.card or None, totp_secret=log_on.totp_secret)
    citizen_ca(settings)
    for log_on in LOG_ONS:
        personal_certificate(settings, log_on.official)


def citizen_ca(settings: Settings) -> Identity:
    """The demo citizen CA (made once): the portal's trust anchor for personal certificates."""
    directory = settings.citizen_ca_path.parent
    ca = Identity("ca", settings.citizen_ca_path, directory / "ca.key")
    if not ca.cert_path.exists():
        return create_ca(directory, CITIZEN_CA_NAME)
    return ca


def personal_certificate(settings: Settings, official: Person) -> Identity:
    """The official's personal certificate, var/pki/citizen/<INSZ>.crt/.key and .p12 (made once)."""
    directory = settings.citizen_ca_path.parent
    identity = Identity(official.insz, directory / f"{official.insz}.crt", directory / f"{official.insz}.key")
    if identity.cert_path.exists():
        return identity
    name = official.name.split(" (")[0]
    made = issue(citizen_ca(settings), directory, official.insz, common_name=f"{name} (Authentication)",
                 serial_number=official.insz)
    _write_pkcs12(made, directory / f"{official.insz}.p12", name)
    return made


def _write_pkcs12(identity: Identity, path: Path, name: str) -> None:
    data = pkcs12.serialize_key_and_certificates(name.encode(), identity.load_key(), identity.load_cert(), None,
                                                 BestAvailableEncryption(PKCS12_PASSWORD))
    path.write_bytes(data)
    path.chmod(0o600)


def _official_id(session: Session, official: Person) -> int:
    return session.execute(select(Official.id).join(Organisation, Organisation.id == Official.organisation_id)
                           .where(Organisation.enterprise_number == official.organisation,
                                  Official.insz == official.insz)).scalar_one()
