"""Groups on the command line: `ls --group` / `--group-by KEY` and `export --group`.

The same grouping and aggregation as the app (`data/groups.py`, `data/group_reads.py`); only
the text, JSON and CSV forms are made here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import IO, Any

from velora_tui.data.cleaning import clean_text, format_number
from velora_tui.data.group_reads import ReachedReader, group_curve, read_configs
from velora_tui.data.groups import Aggregate, Group, Stat, group_runs, sort_groups
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import ExperimentSummary, RunStatus, json_number
from velora_tui.data.seed_stats import WIDE_NOTE, Estimate, interval_text, to_target_text
from velora_tui.data.series import SeriesReader
from velora_tui.data.source_names import source_names
from velora_tui.data.targets import target_for
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
    monitor: Monitor,
    summaries: Sequence[ExperimentSummary],
    keys: Sequence[str],
    now: datetime,
    targets: Mapping[str, float] | None = None,
) -> list[Group]:
    """The groups, sorted, each with its runs' episodes to their env's target (`targets`: the
    user's, over Gymnasium's: data/targets.py)."""
    configs = read_configs(monitor.databases, [s.key for s in summaries])
    groups = sort_groups(group_runs(summaries, configs, keys), now)
    per_run = {
        s.key: target for s in summaries if (target := target_for(s.env, targets)) is not None
    }
    reached = ReachedReader().read(
        monitor.databases, [(s, per_run[s.key]) for s in summaries if s.key in per_run]
    )
    for group in groups:
        group.set_reached(reached, per_run)
    return groups


def stat_text(stat: Stat) -> str:
    """`450.03 ± 52.25`; one run has no spread: its value alone."""
    if not stat.count:
        return "-"
    if stat.count == 1:
        return format_number(stat.mean)
    return f"{format_number(stat.mean)} ± {format_number(stat.std)}"


def iqm_text(estimate: Estimate) -> str:
    """`448.10 [402.30, 480.00]`; `464.27 —` for one run; the wide mark for two."""
    return interval_text(estimate, format_number)


TO_TARGET_NOTE = (
    "TO TARGET: episodes until a run's moving average reached its env's target (settings,"
    " --target, else Gymnasium's): IQM [95% CI] (runs that reached it / runs); ∞: not reached"
)
COMPARE_NOTE = (
    "P(#1 BEATS): the probability that a run of the first group ends above a run of this one"
    " (final reward, ties count 1/2), with its 95% bootstrap interval"
)
IQM_NOTE = "IQM: interquartile mean over the runs, [95% bootstrap interval]; — one run, no interval"


def groups_table(groups: Sequence[Group], now: datetime, compare: bool = False) -> str:
    headers = [
        "GROUP",
        "RUNS",
        "RUNNING",
        "FINISHED",
        "EPISODES",
        "FINAL",
        "FINAL IQM [95% CI]",
        "BEST",
        "BEST IQM [95% CI]",
        "ETA",
    ]
    targets = any(group.reached for group in groups)
    if targets:
        headers.insert(-1, "TO TARGET")
    if compare:
        headers.append("P(#1 BEATS)")
    rows = []
    wide = False
    for index, group in enumerate(groups):
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
                iqm_text(final := group.final_iqm()),
                stat_text(group.best()),
                iqm_text(best := group.best_iqm()),
                "-" if eta is None else duration(eta),
            ]
        )
        wide = wide or final.wide or best.wide
        if targets:
            rows[-1].insert(-1, to_target_text(group.to_target(), group.reached_count()))
        if compare:
            beats = groups[0].beats(group) if index else None
            rows[-1].append(_probability_text(beats))
            wide = wide or (beats is not None and beats.wide)
    notes = [IQM_NOTE]
    if wide:
        notes.append(WIDE_NOTE)
    if targets:
        notes.append(TO_TARGET_NOTE)
    if compare:
        notes.append(COMPARE_NOTE)
    # The notes after a blank line: the table's lines stay the table's.
    right = set(range(1, len(headers))) - {headers.index("ETA")}
    return "\n".join([table(headers, rows, right=right), "", *notes])


def _probability_text(estimate: Estimate | None) -> str:
    if estimate is None:
        return "-"
    return interval_text(estimate, lambda p: f"{p:.2f}")


def groups_json(groups: Sequence[Group], now: datetime, compare: bool = False) -> str:
    documents = []
    for index, group in enumerate(groups):
        document = group.to_json(now)
        if compare:
            document["first_beats_this"] = (
                _probability_json(groups[0].beats(group), groups[0]) if index else None
            )
        documents.append(document)
    return json.dumps(documents, indent=2, ensure_ascii=False)


def _probability_json(estimate: Estimate, first: Group) -> dict[str, Any]:
    found = estimate.to_json()
    return {
        "first": first.label(),
        "probability": found["iqm"],
        "ci95": found["ci95"],
        "n": found["n"],
    }


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
# The group's own figures, repeated on each of its rows in csv and jsonl (as its values are).
FIGURE_FIELDS = (
    "final_iqm",
    "final_ci_low",
    "final_ci_high",
    "best_iqm",
    "best_ci_low",
    "best_ci_high",
    "to_target_iqm",
    "to_target_ci_low",
    "to_target_ci_high",
)


def _figures(group: Group) -> list[Any]:
    """The IQM and 95% interval of the final and best rewards (no interval for one run)."""
    cells: list[Any] = []
    for estimate in (group.final_iqm(), group.best_iqm(), group.to_target() or Estimate()):
        interval = estimate.has_interval
        cells += [
            json_number(estimate.value) if estimate.count else None,
            json_number(estimate.low) if interval else None,
            json_number(estimate.high) if interval else None,
        ]
    return cells


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
        writer.writerow(
            [
                "group",
                *(clean_text(k, 200) for k in keys),
                "x_axis",
                *POINT_FIELDS,
                *FIGURE_FIELDS,
            ]
        )
        for group, curve in zip(groups, curves, strict=True):
            values = dict(group.name)
            label = clean_text(group.label(), 400)
            cells = [clean_text(values.get(k, ""), 200) for k in keys]
            blanks = ["" if cell is None else cell for cell in _figures(group)]
            for point in _points(curve):
                writer.writerow([label, *cells, axis, *point, *blanks])
                count += 1
        return count
    if fmt == "jsonl":
        for group, curve in zip(groups, curves, strict=True):
            figures = dict(zip(FIGURE_FIELDS, _figures(group), strict=True))
            for point in _points(curve):
                data = {"group": group.label(), "values": dict(group.name), "x_axis": axis}
                data |= dict(zip(POINT_FIELDS, point, strict=True)) | figures
                out.write(json.dumps(data) + "\n")
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
                "final_reward": group.final().to_json() | group.final_iqm().to_json(),
                "best_reward": group.best().to_json() | group.best_iqm().to_json(),
                "episodes_to_target": group.to_target_json(),
                "points": points,
            }
        )
    out.write(json.dumps(documents, indent=2, ensure_ascii=False) + "\n")
    return count
