"""Human forms of times, durations and summaries, shared by the command line and the app."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from velora_tui.data.cleaning import clean_text, format_number
from velora_tui.data.records import ExperimentSummary
from velora_tui.data.source_names import source_names

# Shown for an aggregate the scan of a first load has not reached yet.
PENDING = "…"


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(max(delta.total_seconds(), 0))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    if moment > now:
        return "just now"
    return duration(now - moment) + " ago"


def clock(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def shown_path(path: Path) -> str:
    """A path as short as it can be said here: relative to the working directory when it is
    below it (`metrics.db`, `runs/a/metrics.db`), else whole; a remote one as `host:path`."""
    remote = source_names.label(path)
    if remote is not None:
        return remote
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):  # elsewhere, or the working directory is gone
        return str(path)


def db_tag(path: Path) -> str:
    """A database's short name in a list: its folder's name, after its host for a remote one
    (`runs/a/metrics.db` -> `a`, `node03:/runs/a/metrics.db` -> `node03:a`)."""
    remote, host = source_names.label(path), source_names.host(path)
    if remote is None or host is None:
        return path.parent.name
    return f"{host}:{PurePosixPath(remote[len(host) + 1 :]).parent.name}"


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """A plain aligned text table."""
    right = right or set()
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def episode_count(summary: ExperimentSummary, planned: bool = True) -> str:
    """Episodes done (and planned): `~` marks an estimate from the episode numbers of the first
    and last rows, until the scan has counted them."""
    plan = f"/{summary.n_episodes}" if summary.n_episodes and planned else ""
    return f"{'' if summary.scanned else '~'}{summary.episodes}{plan}"


def best_reward(summary: ExperimentSummary) -> str:
    return format_number(summary.best_reward) if summary.scanned else PENDING


def experiment_label(summary: ExperimentSummary) -> str:
    """How an experiment is named wherever it is written out: `#3 NeuroFlow · CartPole-v1`
    (alerts, notifications, the diff's and the comparison's headers), its names cleaned."""
    return f"#{summary.id} {clean_text(summary.agent, 40)} · {clean_text(summary.env, 40)}"
