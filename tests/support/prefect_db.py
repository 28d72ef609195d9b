"""Read Prefect's own database as a test would audit it."""

from __future__ import annotations

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
