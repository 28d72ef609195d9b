"""Pure crypto helpers (no database)."""

from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet

from launch.store import BlindIndex, DecryptionError, FieldCipher, normalise_identifier


def test_field_cipher_round_trip_and_wrong_key():
    key = Fernet.generate_key()
    data = {"principal": {"id_number": "44010619900101123X", "phone": "13812345678"}, "name": "张三"}
    token = FieldCipher(key).encrypt(data)
    assert "13812345678" not in token and "张三" not in token
    assert FieldCipher(key).decrypt(token) == data
    assert FieldCipher(key.decode()).decrypt(token.encode()) == data
    with pytest.raises(DecryptionError):
        FieldCipher(Fernet.generate_key()).decrypt(token)


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        ("phone", "13812345678", "+86 138-1234-5678"),
        ("phone", "13812345678", "008613812345678"),
        ("id_number", "44010619900101123x", " 44010619900101123X "),
        ("email", "Zhang.San@Example.com", "zhang.san@example.com"),
        ("credit_code", "91440101mA59abcd1x", "91440101MA59ABCD1X"),
    ],
)
def test_blind_index_normalises(kind, a, b):
    index = BlindIndex(os.urandom(32))
    assert index.digest(kind, a) == index.digest(kind, b)
    assert len(index.digest(kind, a)) == 64


def test_blind_index_is_keyed_and_kind_separated():
    key = os.urandom(32)
    assert BlindIndex(key).digest("phone", "13812345678") != BlindIndex(os.urandom(32)).digest("phone", "13812345678")
    assert BlindIndex(key).digest("phone", "13812345678") != BlindIndex(key).digest("id_number", "13812345678")
    with pytest.raises(ValueError):
        normalise_identifier("passport", "x")
