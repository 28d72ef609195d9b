"""Read Prefect's own database as a test would audit it."""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from pathlib import Path


def dump_text(db: Path) -> str:
    """Every text-ish cell of every table of Prefect's SQLite database, as one string."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        parts = []
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in con.execute(f'select * from "{table}"'):
                for cell in row:
                    if isinstance(cell, bytes):
                        parts.append(cell.decode("utf-8", "replace"))
                    elif cell is not None:
                        parts.append(str(cell))
        return "\n".join(parts)
    finally:
        con.close()


def results_text(folder: Path) -> str:
    """Every result file under `folder`, with base64-encoded (pickled) results decoded too."""
    parts: list[str] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and len(value) >= 16:
            try:
                # results are pickled, base64 with line breaks
                parts.append(base64.b64decode("".join(value.split()), validate=True).decode("utf-8", "replace"))
            except (binascii.Error, ValueError):
                pass

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        parts.append(raw.decode("utf-8", "replace"))
        try:
            walk(json.loads(raw))
        except ValueError:
            pass
    return "\n".join(parts)
