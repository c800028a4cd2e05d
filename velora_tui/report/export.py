"""Writing an experiment's episodes out: csv, json (one array) or jsonl.

An export writes what is stored, not what the monitor makes of it: numbers as they are
(floats bit for bit: 5e-324, -0.0), text as its text even in a number column (`oops` stays
`oops`, a NaN written as text stays `nan`), a time in its stored form and offset, NULL as
null (an empty csv cell). JSON has no inf, NaN or bytes: +-inf are written as the strings
"inf" and "-inf", a blob as the text `x'<hex>'` (SQLite's own notation for one). A csv is
often read in a terminal: its text cells are cleaned of control characters and escape
sequences (json escapes them instead).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO, Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import EPISODE_FIELDS, EpisodeRow, StoredEpisode, json_number

FORMATS = ("csv", "json", "jsonl")

# A csv text cell's longest form (velora's own values are far shorter; a hostile file's text
# is cut here rather than written whole to a terminal).
CSV_TEXT_LIMIT = 10_000


def stored_json(value: Any) -> Any:
    """One stored value as JSON can hold it."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, bytes):
        return f"x'{value.hex()}'"
    return value


def row_data(row: EpisodeRow) -> dict[str, Any]:
    """The row's columns by name: as stored when it was read for an export, else the
    monitor's reading of them."""
    if isinstance(row, StoredEpisode):
        return dict(zip(EPISODE_FIELDS, map(stored_json, row.stored), strict=True))
    return row.to_json()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and not (value.isascii() and value.isprintable()):
        return clean_text(value, CSV_TEXT_LIMIT)  # (velora's own times need no cleaning)
    return value


def write_episodes(out: IO[str], fmt: str, chunks: Iterator[list[EpisodeRow]]) -> int:
    """Write every row of every chunk; returns how many were written."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(EPISODE_FIELDS)
        for chunk in chunks:
            for row in chunk:
                data = row_data(row)
                writer.writerow([_csv_cell(data[f]) for f in EPISODE_FIELDS])
            count += len(chunk)
        return count
    if fmt == "json":
        out.write("[")
    for chunk in chunks:
        for row in chunk:
            if fmt == "json":
                out.write(",\n" if count else "\n")
            out.write(json.dumps(row_data(row)))
            if fmt == "jsonl":
                out.write("\n")
            count += 1
    if fmt == "json":
        out.write("\n]\n")
    return count
