"""Put a personal certificate and its key where Chromium on Linux looks for client certificates: an NSS database
($HOME/.pki/nssdb), written through libnss3 itself (Chromium's own dependency), so the tests need no certutil."""

from __future__ import annotations

import ctypes
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from integrator.pki import Identity

KU_ALL = 0xFF


class _Item(ctypes.Structure):
    _fields_ = (("type", ctypes.c_int), ("data", ctypes.c_void_p), ("len", ctypes.c_uint))


def _item(data: bytes) -> _Item:
    buffer = ctypes.create_string_buffer(data, len(data))
    item = _Item(0, ctypes.cast(buffer, ctypes.c_void_p), len(data))
    item._buffer = buffer  # type: ignore[attr-defined]  # kept alive with the item
    return item


def import_identity(home: Path, identity: Identity, nickname: str) -> Path:
    """Create home/.pki/nssdb (empty password) holding the identity's certificate and private key."""
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True, exist_ok=True)
    nss = ctypes.CDLL("libnss3.so")
    nss.NSS_InitReadWrite.argtypes = [ctypes.c_char_p]
    nss.PK11_GetInternalKeySlot.restype = ctypes.c_void_p
    nss.PK11_NeedUserInit.argtypes = [ctypes.c_void_p]
    nss.PK11_InitPin.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    nss.PK11_ImportDERPrivateKeyInfoAndReturnKey.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(_Item), ctypes.POINTER(_Item), ctypes.POINTER(_Item), ctypes.c_int,
        ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    nss.PK11_ImportDERCert.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Item), ctypes.c_ulong, ctypes.c_char_p,
                                       ctypes.c_int]
    nss.PK11_FreeSlot.argtypes = [ctypes.c_void_p]
    nss.SECKEY_DestroyPrivateKey.argtypes = [ctypes.c_void_p]
    if nss.NSS_InitReadWrite(f"sql:{database}".encode()) != 0:
        raise RuntimeError(f"NSS could not open {database}")
    slot = nss.PK11_GetInternalKeySlot()
    try:
        if nss.PK11_NeedUserInit(slot) and nss.PK11_InitPin(slot, None, b"") != 0:
            raise RuntimeError("NSS: could not set the database's (empty) password")
        key = _item(identity.load_key().private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()))
        name = _item(nickname.encode())
        handle = ctypes.c_void_p()
        if nss.PK11_ImportDERPrivateKeyInfoAndReturnKey(slot, ctypes.byref(key), ctypes.byref(name), None, 1, 1,
                                                        KU_ALL, ctypes.byref(handle), None) != 0:
            raise RuntimeError("NSS: the private key was not imported")
        nss.SECKEY_DestroyPrivateKey(handle)
        cert = _item(identity.load_cert().public_bytes(Encoding.DER))
        if nss.PK11_ImportDERCert(slot, ctypes.byref(cert), 0, nickname.encode(), 0) != 0:
            raise RuntimeError("NSS: the certificate was not imported")
    finally:
        nss.PK11_FreeSlot(slot)
        nss.NSS_Shutdown()
    return database
