"""Encryption at rest and the blind index.

``FieldCipher`` encrypts a JSON-able dict with Fernet (AES-128-CBC + HMAC-SHA256, a
timestamped token). ``BlindIndex`` turns an identifier (ID number, phone, email, credit
code) into a keyed HMAC-SHA256 digest of its normalised form, so the store can answer
"how many other clients use this phone?" without holding the phone in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["BlindIndex", "DecryptionError", "FieldCipher", "normalise_identifier"]


class DecryptionError(Exception):
    """The ciphertext was not made with this key (or was tampered with)."""


class FieldCipher:
    def __init__(self, fernet_key: bytes | str) -> None:
        if isinstance(fernet_key, str):
            fernet_key = fernet_key.encode()
        self._fernet = Fernet(fernet_key)

    def encrypt(self, data: dict[str, Any]) -> str:
        if not isinstance(data, dict):
            raise TypeError("FieldCipher encrypts dicts")
        plain = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | bytes) -> dict[str, Any]:
        if isinstance(token, str):
            token = token.encode("ascii")
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise DecryptionError("cannot decrypt: wrong key or damaged ciphertext") from exc
        return json.loads(plain.decode("utf-8"))


_SPACES = re.compile(r"[\s\-()]")


def normalise_identifier(kind: str, value: str) -> str:
    """The canonical form an identifier is digested in.

    id_number / credit_code: no spaces, upper case (a trailing x is X);
    phone: digits only, a leading +86 / 0086 / 86 dropped from mainland mobiles;
    email: trimmed, lower case.
    """
    v = value.strip()
    if kind in ("id_number", "credit_code"):
        return _SPACES.sub("", v).upper()
    if kind == "phone":
        digits = re.sub(r"\D", "", v)
        for prefix in ("0086", "86"):
            if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
                digits = digits[len(prefix) :]
                break
        return digits
    if kind == "email":
        return v.lower()
    raise ValueError(f"unknown identifier kind {kind!r}")


class BlindIndex:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("blind-index key too short")
        self._key = bytes(key)

    def digest(self, kind: str, value: str) -> str:
        """Hex HMAC-SHA256 of ``kind`` and the normalised value."""
        message = kind.encode() + b"\x00" + normalise_identifier(kind, value).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
