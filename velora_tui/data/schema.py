"""Which file this is: not there yet, not SQLite, SQLite but not velora's, or one of velora's two
schemas (0.1.1 has no `entropy_loss`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import EPISODE_FIELDS

if TYPE_CHECKING:
    from velora_tui.data.files import Readable

SQLITE_HEADER = b"SQLite format 3\x00"
# The columns a file must have to be read as velora's (models.py declares the same tables).
REQUIRED_COLUMNS = {
    "experiment": {"id", "agent", "env", "config", "created_at"},
    "episode": set(EPISODE_FIELDS) - {"entropy_loss"},  # 0.1.1 has none
}


class SchemaError(Exception):
    """The file is SQLite but not a velora metrics database."""


class NotReady(Exception):
    """The file exists but velora has not created its tables yet."""


@dataclass(frozen=True, slots=True)
class Schema:
    has_entropy: bool


def check_header(fd: int, pread: Callable[[int, int, int], bytes] = os.pread) -> None:
    """Raise unless the open file starts like a SQLite database (velora creates the file
    empty, before its tables)."""
    header = pread(fd, len(SQLITE_HEADER), 0)
    if len(header) == 0:
        raise NotReady("file is empty; waiting for training to create the tables")
    if header != SQLITE_HEADER:
        raise SchemaError("not a SQLite database")


def detect_schema(conn: Readable) -> Schema:
    """The schema of a SQLite file, or SchemaError/NotReady saying why it is not velora's."""
    found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    tables = {str(name) for (name,) in found}
    if not tables:
        raise NotReady("no tables yet; waiting for training to create them")
    missing_tables = sorted(set(REQUIRED_COLUMNS) - tables)
    if missing_tables:
        raise SchemaError(
            "not a velora metrics database (no table "
            + ", ".join(missing_tables)
            + "; tables: "
            + clean_text(", ".join(sorted(tables)), 80)
            + ")"
        )
    columns: dict[str, set[str]] = {}
    for table in REQUIRED_COLUMNS:
        rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
        columns[table] = {str(row[1]) for row in rows}
        missing = sorted(REQUIRED_COLUMNS[table] - columns[table])
        if missing:
            raise SchemaError(
                f"not a velora metrics database (table {table} lacks {', '.join(missing)})"
            )
    return Schema(has_entropy="entropy_loss" in columns["episode"])
