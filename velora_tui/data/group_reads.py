"""What grouping reads: the runs' configs, and their series turned into a group's curve.

Each run's series comes from its `SeriesReader` (downsampled in SQL, read incrementally: a
redraw while runs write reads only their new rows). Smoothing is applied to each run before
the runs are aggregated, as TensorBoard does; the cross-run mean, std, min and max are then
taken in Python (`groups.aggregate`), over at most a few hundred points per run: the per-run
smoothing has to come first, and SQL cannot do an EMA.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velora_tui.data import statements
from velora_tui.data.config import flatten, parse_config
from velora_tui.data.connection import Fetch
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.groups import Aggregate, Config, Curve, aggregate
from velora_tui.data.records import ExperimentSummary, Key
from velora_tui.data.schema import Schema
from velora_tui.data.series import Series, SeriesReader
from velora_tui.data.smoothing import smooth
from velora_tui.data.targets import SOLVED_WINDOW

X_AXES = ("episode", "steps", "time")


# Configs per read: the read lock is let go between statements (a few ms each at most).
CONFIG_CHUNK = 500


def read_configs(
    databases: Mapping[Path, MetricsDatabase], keys: Iterable[Key]
) -> dict[Key, Config | None]:
    """Each run's flattened config; None where it cannot be read or is not a JSON object.
    Read by id ranges, CONFIG_CHUNK a statement, from each database."""
    wanted: dict[Path, set[int]] = {}
    for db, exp_id in keys:
        wanted.setdefault(db, set()).add(exp_id)
    configs: dict[Key, Config | None] = {}
    for db, ids in wanted.items():
        database = databases.get(db)
        found = _stored_configs(database, ids) if database is not None else {}
        for exp_id in ids:
            view = parse_config(found[exp_id]) if exp_id in found else None
            ok = view is not None and view.ok and isinstance(view.data, dict | list)
            configs[(db, exp_id)] = flatten(view.data) if ok and view is not None else None
    return configs


def _stored_configs(database: MetricsDatabase, ids: set[int]) -> dict[int, object]:
    """The stored config text of these experiments (those that have a row), read in chunks
    from the lowest wanted id; stops early where the file cannot be read."""
    found: dict[int, object] = {}
    after, last = min(ids) - 1, max(ids)
    while after < last:

        def query(fetch: Fetch, schema: Schema, after: int = after) -> Sequence[Any]:

            return fetch(statements.configs_after(), after=after, limit=CONFIG_CHUNK)

        rows = database.run_locked(query)
        if not rows:
            break
        for row in rows:
            exp_id = int(row[0])
            if exp_id in ids:
                found[exp_id] = row[1]
        after = int(rows[-1][0])
    return found


def x_of(series: Series, axis: str) -> list[float]:
    """The series' x values on an axis: episode number, cumulative environment steps, or
    seconds since its first episode."""
    if axis == "steps":
        return series.steps
    if axis == "time":
        return series.seconds
    return series.episode


def curves(series: Sequence[Series], metric: str, axis: str, smoothing: float) -> list[Curve]:
    """Each run's (x, y) of `metric`, smoothed run by run (weight 0: as it is; non-finite
    values become NaN, which aggregation leaves out)."""
    return [(x_of(one, axis), smooth(one.bands[metric].mean, smoothing)) for one in series]


def group_curve(
    series: Sequence[Series],
    points: int,
    *,
    metric: str = "reward",
    axis: str = "episode",
    smoothing: float = 0.0,
) -> Aggregate:
    """The group's curve of `metric` over its runs' series. Exact only where every run's
    series is (each point one episode) and their x values fit in `points`."""
    found = aggregate(curves(series, metric, axis, smoothing), points)
    found.exact = found.exact and all(one.exact for one in series)
    return found


def read_series(
    readers: Sequence[SeriesReader | None],
    budget: float | None = None,
    metrics: Collection[str] = ("reward",),
) -> list[Series]:
    """Every run's series of `metrics` as read so far, reading what is new (a run whose
    database is gone is an empty series). `budget`: seconds for all of them (each reads at
    least one chunk); a series left incomplete says so (`complete`)."""
    each = None if budget is None else budget / max(1, len(readers))
    return [reader.read(each, metrics) if reader is not None else Series() for reader in readers]


# -- episodes to the target ----------------------------------------------------------------------

# Ids one statement looks through at most (the other runs' rows in between count too): a run's
# rows are read on its index, and the read lock is let go between statements.
REACHED_ID_SPAN = 50_000


@dataclass(slots=True)
class Reached:
    """What is known of a run against its target: the rows up to id `upto` were looked
    through; `episode`: the episode number at which its moving average first reached it."""

    target: float
    upto: int = 0
    episode: float | None = None


class ReachedReader:
    """Where each run's moving average (velora's, over `train_params.window_size` episodes:
    Gymnasium's definition of solved when that is 100) first reached its env's target. A run
    that reached it is never read again; one that has not, only for its new rows."""

    def __init__(self) -> None:
        self.known: dict[Key, Reached] = {}

    def read(
        self,
        databases: Mapping[Path, MetricsDatabase],
        runs: Iterable[tuple[ExperimentSummary, float]],
    ) -> dict[Key, float]:
        """Each run's (with its target) episode of reaching it, or inf: not reached (yet) in
        the rows it has. A run whose file cannot be read now is left out. The runs of one file
        are looked through together: a remote host answers several of their reads at once."""
        wanted = list(runs)
        looking: dict[Path, list[tuple[ExperimentSummary, Reached]]] = {}
        for run, target in wanted:
            known = self.known.get(run.key)
            if known is None or known.target != target:
                known = self.known[run.key] = Reached(target, (run.first_id or 1) - 1)
            if known.episode is None and run.last_id is not None and run.db in databases:
                looking.setdefault(run.db, []).append((run, known))
        unread: set[Key] = set()
        for db, items in looking.items():
            unread |= _look_through(databases[db], items)
        found: dict[Key, float] = {}
        for run, _ in wanted:
            known = self.known[run.key]
            if run.key in unread:
                continue
            if known.episode is not None or run.last_id is None or run.db in databases:
                found[run.key] = math.inf if known.episode is None else known.episode
        return found


def _look_through(
    database: MetricsDatabase, items: Sequence[tuple[ExperimentSummary, Reached]]
) -> set[Key]:
    """Look through each run's rows after `known.upto` up to its last id, REACHED_ID_SPAN ids
    a statement, the runs' next statements asked together; the runs that could not be read
    now (the file's state says why)."""
    undone = list(items)
    while True:
        # Each run still to look through, with its next span of ids: (run, known, after, upto).
        spans = [
            (run, known, known.upto, min(run.last_id, known.upto + REACHED_ID_SPAN))
            for run, known in undone
            if known.episode is None and run.last_id is not None and known.upto < run.last_id
        ]
        if not spans:
            return set()
        reads = [
            (
                statements.first_reaching(),
                {
                    "exp_id": run.id,
                    "after": after,
                    "upto": upto,
                    "target": known.target,
                    "window": SOLVED_WINDOW,
                },
            )
            for run, known, after, upto in spans
        ]
        answers = database.fetch_each(reads)
        if answers is None:
            return {run.key for run, _, _, _ in spans}
        for (_, known, _, upto), rows in zip(spans, answers, strict=True):
            if rows:
                known.episode = _episode_number(rows[0][0])
            known.upto = upto
        undone = [(run, known) for run, known, _, _ in spans]


def _episode_number(value: object) -> float:
    """An episode number as stored (text in a number column too); inf when it is none."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.inf
    return number if math.isfinite(number) else math.inf
