"""Groups on the command line: `ls --group` / `--group-by KEY` and `export --group`.

The same grouping and aggregation as the app (`data/groups.py`, `data/group_reads.py`); only
the text, JSON and CSV forms are made here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from velora_tui.data.cleaning import clean_text, format_number
from velora_tui.data.group_reads import group_curve, read_configs
from velora_tui.data.groups import Aggregate, Group, Stat, group_runs, sort_groups
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import ExperimentSummary, RunStatus, json_number
from velora_tui.data.series import SeriesReader
from velora_tui.data.source_names import source_names
from velora_tui.report.format import duration, table

EXPORT_POINTS = 1_000


def group_keys(seeds: bool, keys: Sequence[str]) -> list[str] | None:
    """The keys asked for (`--group-by a,b --group-by c`), [] for seed grouping, None for no
    grouping."""
    chosen = [part.strip() for key in keys for part in key.split(",") if part.strip()]
    if chosen:
        return chosen
    return [] if seeds else None


def make_groups(
    monitor: Monitor, summaries: Sequence[ExperimentSummary], keys: Sequence[str], now: datetime
) -> list[Group]:
    configs = read_configs(monitor.databases, [s.key for s in summaries])
    return sort_groups(group_runs(summaries, configs, keys), now)


def stat_text(stat: Stat) -> str:
    if not stat.count:
        return "-"
    return f"{format_number(stat.mean)} ± {format_number(stat.std)}"


def groups_table(groups: Sequence[Group], now: datetime) -> str:
    headers = ["GROUP", "RUNS", "RUNNING", "FINISHED", "EPISODES", "FINAL", "BEST", "ETA"]
    rows = []
    for group in groups:
        counts = group.counts(now)
        low, high = group.episodes()
        eta = group.eta(now)
        rows.append(
            [
                clean_text(group.label(), 80),
                str(len(group.runs)),
                str(counts[RunStatus.RUNNING]),
                str(counts[RunStatus.FINISHED]),
                f"{low}" if low == high else f"{low}-{high}",
                stat_text(group.final()),
                stat_text(group.best()),
                "-" if eta is None else duration(eta),
            ]
        )
    return table(headers, rows, right={1, 2, 3, 4, 5, 6})


def groups_json(groups: Sequence[Group], now: datetime) -> str:
    return json.dumps([group.to_json(now) for group in groups], indent=2, ensure_ascii=False)


def group_curves(
    monitor: Monitor,
    groups: Sequence[Group],
    *,
    axis: str,
    smoothing: float,
    points: int,
    metric: str = "reward",
) -> list[Aggregate]:
    """Each group's curve from every row of its runs (read in short reads, downsampled in SQL
    to `points` buckets a run at most)."""
    found = []
    for group in groups:
        series = []
        for run in group.runs:
            database = monitor.databases.get(run.db)
            if database is not None:
                reader = SeriesReader(database, run.id, max_points=points)
                series.append(reader.read(metrics=("reward",)))
        found.append(group_curve(series, points, metric=metric, axis=axis, smoothing=smoothing))
    return found


POINT_FIELDS = ("x", "runs", "mean", "std", "min", "max")


def _points(curve: Aggregate) -> list[list[Any]]:
    return [
        [json_number(x), n, json_number(mean), json_number(std), json_number(low), json_number(hi)]
        for x, n, mean, std, low, hi in zip(
            curve.x, curve.count, curve.mean, curve.std, curve.low, curve.high, strict=True
        )
    ]


def write_group_curves(
    out: IO[str],
    fmt: str,
    groups: Sequence[Group],
    curves: Sequence[Aggregate],
    *,
    axis: str,
    smoothing: float,
) -> int:
    """csv: one row per group and point (the group's varied values as columns); json: one
    object per group with its points; jsonl: one object per point. Returns the points written."""
    keys = list(dict.fromkeys(key for group in groups for key, _ in group.name))
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        # Text from the configs, cleaned: a CSV is often read in a terminal.
        writer.writerow(["group", *(clean_text(k, 200) for k in keys), "x_axis", *POINT_FIELDS])
        for group, curve in zip(groups, curves, strict=True):
            values = dict(group.name)
            label = clean_text(group.label(), 400)
            cells = [clean_text(values.get(k, ""), 200) for k in keys]
            for point in _points(curve):
                writer.writerow([label, *cells, axis, *point])
                count += 1
        return count
    if fmt == "jsonl":
        for group, curve in zip(groups, curves, strict=True):
            for point in _points(curve):
                data = {"group": group.label(), "values": dict(group.name), "x_axis": axis}
                out.write(json.dumps(data | dict(zip(POINT_FIELDS, point, strict=True))) + "\n")
                count += 1
        return count
    documents = []
    for group, curve in zip(groups, curves, strict=True):
        points = [dict(zip(POINT_FIELDS, p, strict=True)) for p in _points(curve)]
        count += len(points)
        documents.append(
            {
                "group": group.label(),
                "values": dict(group.name),
                "experiments": [
                    {"db": source_names.name(run.db), "id": run.id} for run in group.runs
                ],
                "x_axis": axis,
                "smoothing": smoothing,
                "exact": curve.exact,
                "points": points,
            }
        )
    out.write(json.dumps(documents, indent=2, ensure_ascii=False) + "\n")
    return count
