"""What grouping reads: the runs' configs, and their series turned into a group's curve.

Each run's series comes from its `SeriesReader` (downsampled in SQL, read incrementally: a
redraw while runs write reads only their new rows). Smoothing is applied to each run before
the runs are aggregated, as TensorBoard does; the cross-run mean, std, min and max are then
taken in Python (`groups.aggregate`), over at most a few hundred points per run: the per-run
smoothing has to come first, and SQL cannot do an EMA.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from velora_tui.data.config import flatten
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.groups import Aggregate, Config, Curve, aggregate
from velora_tui.data.records import Key
from velora_tui.data.series import Series, SeriesReader
from velora_tui.data.smoothing import smooth

X_AXES = ("episode", "steps", "time")


def read_configs(
    databases: Mapping[Path, MetricsDatabase], keys: Iterable[Key]
) -> dict[Key, Config | None]:
    """Each run's flattened config; None where it cannot be read or is not a JSON object."""
    configs: dict[Key, Config | None] = {}
    for key in keys:
        database = databases.get(key[0])
        view = database.config(key[1]) if database is not None else None
        ok = view is not None and view.ok and isinstance(view.data, dict | list)
        configs[key] = flatten(view.data) if ok and view is not None else None
    return configs


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


def read_series(readers: Sequence[SeriesReader | None]) -> list[Series]:
    """Every run's series as read so far, reading what is new (a run whose database is gone
    is an empty series)."""
    return [reader.read() if reader is not None else Series() for reader in readers]
