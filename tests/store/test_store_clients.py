from __future__ import annotations

import glob
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from launch.store import DuplicateClientCode, NotFound

ID_NUMBER = "44010619900101123X"
PHONE = "13812345678"
EMERGENCY = "13987654321"
EMAIL = "owner@acme.example"


def intake() -> dict:
    return {
        "subject": {"name": "广州某某科技有限公司", "credit_code": "91440101MA59ABCD1X"},
        "principal": {"name": "张三", "id_number": ID_NUMBER, "phone": PHONE},
        "emergency": {"phone": EMERGENCY},
        "email": EMAIL,
    }


def add(store, code="acme", identifiers=None, **kw):
    identifiers = (
        identifiers
        if identifiers is not None
        else {"id_number": [ID_NUMBER], "phone": [PHONE, EMERGENCY], "email": [EMAIL]}
    )
    return store.add_client(code, "Acme Ltd", "Acme Shop", "广东", "enterprise", "standalone", intake(), identifiers, **kw)


def test_add_get_list_clients(store):
    client_id = add(store)
    assert client_id.startswith("c-") and len(client_id) == 12
    assert all(ch in "0123456789abcdef" for ch in client_id[2:])
    client = store.get_client(client_id)
    assert client.code == "acme" and client.province == "广东" and client.registration_path == "standalone"
    assert client.created_at.tzinfo is not None and client.created_at.utcoffset().total_seconds() == 0
    assert store.get_client_by_code("acme") == client
    assert store.get_client("c-0000000000") is None
    add(store, "beta", identifiers={})
    assert [c.code for c in store.list_clients()] == ["acme", "beta"]


def test_duplicate_code_is_a_clear_error(store):
    add(store)
    with pytest.raises(DuplicateClientCode, match="acme"):
        add(store)
    assert len(store.list_clients()) == 1


def test_bad_code_and_kind_refused(store):
    with pytest.raises(ValueError):
        add(store, code="Acme Ltd")
    with pytest.raises(ValueError, match="identifier kind"):
        add(store, identifiers={"passport": ["E123"]})


def test_intake_is_encrypted_at_rest(store):
    client_id = add(store)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM clients")).all()
        identifiers = conn.execute(text("SELECT * FROM client_identifiers")).all()
    raw = repr(rows) + repr(identifiers)
    for secret in (ID_NUMBER, PHONE, EMERGENCY, EMAIL, "张三", "91440101MA59ABCD1X"):
        assert secret not in raw
    assert len(identifiers) == 4
    assert all(len(r.digest) == 64 for r in identifiers)
    assert store.client_intake(client_id) == intake()
    with pytest.raises(NotFound):
        store.client_intake("c-0000000000")


def test_no_clear_identifiers_anywhere_in_the_database(store):
    """SQLite: the database files' bytes. PostgreSQL: every row of every table as text."""
    add(store)
    if store.dialect == "sqlite":
        store.close()  # checkpoint the WAL into the main file
        path = store.engine.url.database
        blob = b"".join(Path(p).read_bytes() for p in glob.glob(path + "*") if os.path.isfile(p))
    else:
        with store.engine.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).scalars().all()
            blob = "".join(
                str(conn.exec_driver_sql(f'SELECT coalesce(string_agg(t::text, chr(10)), \'\') FROM "{name}" t').scalar())
                for name in tables
            ).encode()
    assert b"acme" in blob  # the slug is in the clear: the check does read the data
    for secret in (ID_NUMBER, PHONE, EMERGENCY, EMAIL):
        assert secret.encode() not in blob


def test_identifier_usage_counts_other_clients(store):
    first = add(store, "first")
    add(store, "second", identifiers={"phone": [PHONE], "id_number": [ID_NUMBER.lower()]})
    add(store, "third", identifiers={"phone": ["+86 138 1234 5678"]})
    query = {"phone": [PHONE, EMERGENCY, "13000000000"], "id_number": [ID_NUMBER], "email": [EMAIL]}

    everyone = store.identifier_usage(query)
    assert everyone == {
        "phone": {PHONE: 3, EMERGENCY: 1, "13000000000": 0},
        "id_number": {ID_NUMBER: 2},
        "email": {EMAIL: 1},
    }
    others = store.identifier_usage(query, exclude_client_id=first)
    assert others == {
        "phone": {PHONE: 2, EMERGENCY: 0, "13000000000": 0},
        "id_number": {ID_NUMBER: 1},
        "email": {EMAIL: 0},
    }
    # Raw input values come back as given, even in another spelling.
    assert store.identifier_usage({"phone": ["138-1234-5678"]}) == {"phone": {"138-1234-5678": 3}}
    assert store.identifier_usage({}) == {}


def test_update_client_intake_replaces_identifiers(store):
    client_id = add(store)
    new = intake() | {"email": "new@acme.example"}
    store.update_client_intake(client_id, new, {"email": ["new@acme.example"], "phone": [PHONE]})
    assert store.client_intake(client_id)["email"] == "new@acme.example"
    assert store.identifier_usage({"email": [EMAIL, "new@acme.example"]}) == {
        "email": {EMAIL: 0, "new@acme.example": 1}
    }


def test_explicit_created_at_comes_back_in_utc(store):
    from zoneinfo import ZoneInfo

    at = datetime(2025, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    client_id = add(store, created_at=at)
    got = store.get_client(client_id).created_at
    assert got == at and got.tzinfo == UTC and got.hour == 1
