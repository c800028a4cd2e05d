"""Writing an experiment's episodes out: csv, json (one array) or jsonl."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO

from velora_tui.data.records import EPISODE_FIELDS, EpisodeRow

FORMATS = ("csv", "json", "jsonl")


def write_episodes(out: IO[str], fmt: str, chunks: Iterator[list[EpisodeRow]]) -> int:
    """Write every row of every chunk; returns how many were written."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(EPISODE_FIELDS)
        for chunk in chunks:
            for row in chunk:
                data = row.to_json()
                writer.writerow(["" if data[f] is None else data[f] for f in EPISODE_FIELDS])
            count += len(chunk)
        return count
    if fmt == "json":
        out.write("[")
    for chunk in chunks:
        for row in chunk:
            if fmt == "json":
                out.write(",\n" if count else "\n")
            out.write(json.dumps(row.to_json()))
            if fmt == "jsonl":
                out.write("\n")
            count += 1
    if fmt == "json":
        out.write("\n]\n")
    return count
