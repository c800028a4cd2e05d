"""`velora-tui tail [-f]`: the latest episodes; with -f, each new one as it is committed."""

from __future__ import annotations

import heapq
import json
import sys
from datetime import datetime
from pathlib import Path

import click

from velora_tui.cli.common import JSON, POLL, SOURCES, load_to_follow
from velora_tui.cli.follow import follow
from velora_tui.data.cleaning import format_number
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import EPISODE_COLUMNS, EpisodeRow, Update
from velora_tui.data.source_names import source_names
from velora_tui.report.format import clock


@click.command("tail")
@SOURCES
@click.option(
    "-e", "--experiment", "experiments", type=int, multiple=True, help="Only this id (repeatable)."
)
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Episodes to show first.",
)
@click.option(
    "-f",
    "--follow",
    "following",
    is_flag=True,
    help="Keep printing episodes as they are committed.",
)
@JSON
@POLL
def command(
    sources: tuple[Path | str, ...],
    experiments: tuple[int, ...],
    count: int,
    following: bool,
    as_json: bool,
    poll: bool,
) -> None:
    """Print the latest episodes; with -f, every new one as it is committed."""
    monitor = load_to_follow(sources, following)
    wanted = set(experiments)
    printer = EpisodePrinter(monitor, as_json, several=len(monitor.databases) > 1)
    for path, row in latest_episodes(monitor, wanted, count):
        printer.print(path, row)
    if not following:
        return

    async def show(updates: list[Update]) -> None:
        for update in updates:
            for row in update.episodes:
                if not wanted or row.experiment_id in wanted:
                    printer.print(update.db, row)

    follow(monitor, poll, show)


def latest_episodes(
    monitor: Monitor, wanted: set[int], count: int
) -> list[tuple[Path, EpisodeRow]]:
    """The last `count` episodes committed (of the `wanted` experiments, or all), oldest
    first. In a database, commit order is the row id (times step back with the clock, or do
    not parse); databases have no common order, so theirs are interleaved by time, each one's
    rows kept in its own commit order."""
    if count <= 0:
        return []
    per_database: list[list[tuple[datetime, Path, EpisodeRow]]] = []
    for path in sorted(monitor.databases, key=str):
        database = monitor.databases[path]
        if wanted:
            each = [database.latest_episodes(exp, count) for exp in sorted(wanted)]
            rows = list(heapq.merge(*each, key=lambda row: row.id))[-count:]
        else:
            rows = database.latest_episodes(None, count)
        moment = datetime.min  # a row without a readable time sorts with the one before it
        timed = []
        for row in rows:
            moment = row.created_at or moment
            timed.append((moment, path, row))
        per_database.append(timed)
    # heapq.merge keeps each input's order even where its times go back (a clock step).
    merged = heapq.merge(*per_database, key=lambda item: item[0])
    return [(path, row) for _, path, row in merged][-count:]


class EpisodePrinter:
    COLUMNS = [
        "EXP",
        "EPISODE",
        *(column.label.split()[0].upper() for column in EPISODE_COLUMNS),
        "TIME",
        "RUN",
    ]

    def __init__(self, monitor: Monitor, as_json: bool, several: bool) -> None:
        self.monitor = monitor
        self.as_json = as_json
        self.several = several
        self.header_done = False

    def print(self, db: Path, row: EpisodeRow) -> None:
        summary = self.monitor.summary((db, row.experiment_id))
        agent, env = (summary.agent, summary.env) if summary else ("?", "?")
        if self.as_json:
            data = {
                "db": source_names.name(db),
                **row.to_json(),
                "agent": agent,
                "env": env,
                "host": source_names.host(db),
            }
            line = json.dumps(data)
        else:
            if not self.header_done:
                self.header_done = True
                self._write(self._format(self.COLUMNS))
            cells = [
                str(row.experiment_id),
                "-" if row.episode_num is None else str(row.episode_num),
                *(format_number(getattr(row, c.name), c.digits) for c in EPISODE_COLUMNS),
                clock(row.created_at),
                f"{agent}/{env}" + (f" ({source_names.name(db)})" if self.several else ""),
            ]
            line = self._format(cells)
        self._write(line)

    @staticmethod
    def _format(cells: list[str]) -> str:
        widths = [4, 8, 10, 7, 10, 9, 9, 9, 9, 19, 0]
        return "  ".join(
            c.rjust(w) if i < 9 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    @staticmethod
    def _write(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
