"""Runs grouped into seeds and sweeps, and their curves aggregated: mean, std, min and max.

A group is the runs whose configs are equal except for seed keys (any key named `seed`, at any
depth, and `device`): the seeds of one configuration. Or, when keys are chosen, the runs with
the same values of those keys (`model_details.actor_neurons`, `cfg.` in front allowed).
Grouping takes summaries and flattened configs (`config.flatten`) from any number of sources:
it never looks at where a run is stored.

The figures of a group (docs/groups.md says why each is defined so):
- final reward of a run: velora's own moving average of its last `train_params.window_size`
  episodes (100 by default), as the run's last row holds it (`reward_moving_avg`);
- mean and std over runs: std is the population standard deviation (0 for a single run), of
  the runs whose value is finite;
- ETA: to the planned end (`train_params.n_episodes`) of the run that will end last.

Nothing here imports Textual; nothing here raises on what a database holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from velora_tui.data.config import part_name, path_parts
from velora_tui.data.records import ExperimentSummary, Key, RunStatus, json_number
from velora_tui.data.seed_stats import (
    Estimate,
    censored_interval,
    improvement_interval,
    iqm_interval,
)
from velora_tui.data.source_names import source_names

# Config keys that tell seeds of one configuration apart (a dotted key with any part so named).
SEED_KEYS = frozenset({"seed", "device"})
CONFIG_PREFIX = "cfg."
# Keys that are not in a config but every run has (grouping by them needs no config).
SUMMARY_KEYS: dict[str, Callable[[ExperimentSummary], str]] = {
    "agent": lambda s: s.agent,
    "env": lambda s: s.env,
    "db": lambda s: source_names.name(s.db),
}
MISSING = "-"  # a chosen key the run's config does not have
# The experiment's fields that are part of every seed grouping key.
SEED_KEY_BASE = frozenset({"agent", "env"})
UNREADABLE = "(config unreadable)"
# The width of a group's sparkline, in points.
SPARK_POINTS = 60

Config = Mapping[str, Any]
GroupKey = tuple[tuple[str, str], ...]


@lru_cache(maxsize=65_536)
def is_seed_key(key: str) -> bool:
    """`seed`, `env_params.seed`, `torch.device`, `seed.0` (a list of seeds)...: a part of the
    path is so named (a quoted key `"run.seed"` is one part, not named `seed`)."""
    return any(part_name(part).lower() in SEED_KEYS for part in path_parts(key))


def normalize_key(key: str) -> str:
    """A key as typed: surrounding space and a `cfg.` prefix (the filter's) removed."""
    key = key.strip()
    if key[: len(CONFIG_PREFIX)].lower() == CONFIG_PREFIX:
        key = key[len(CONFIG_PREFIX) :]
    return key


def value_text(value: Any) -> str:
    """A config value as one comparable text: the value as JSON, but a string as it is unless
    it would read as another value (`"128"`, `"true"`, `"-"` quoted): one text per value, so
    that 128 and "128" group apart, and a name still shows `CartPole-v1`, not quoted."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if _reads_as_other(value) else value
    # What json.dumps gives for these, without its cost (grouping calls this per config key).
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


# What a JSON text (other than a string's) can start with, blanks stripped.
_JSON_STARTS = frozenset('-0123456789"[{tfnNI')


def _reads_as_other(text: str) -> bool:
    """Whether `text` as it is would be the text of another value: JSON (a number, true,
    null, a list, a quoted string; NaN and Infinity as Python writes them) or MISSING."""
    if text == MISSING:
        return True
    if text.strip()[:1] not in _JSON_STARTS:
        return False
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def lookup(config: Config | None, summary: ExperimentSummary, key: str) -> str:
    """The text of `key` for a run: from its config (exact key, else case-insensitively),
    else agent/env/db from its summary; MISSING when it has none."""
    if config is not None:
        if key in config:
            return value_text(config[key])
        folded = key.lower()
        for name, value in config.items():
            if str(name).lower() == folded:
                return value_text(value)
    pick = SUMMARY_KEYS.get(key.lower())
    if pick is not None:
        return pick(summary)
    return MISSING


def seed_key(summary: ExperimentSummary, config: Config | None) -> GroupKey:
    """Everything that is not a seed: the experiment's agent and env, and every other config
    key with its value. A run whose config cannot be read is a group of its own."""
    base = {"agent": summary.agent, "env": summary.env}
    if config is None:
        base[UNREADABLE] = f"{summary.db}#{summary.id}"
        return tuple(sorted(base.items()))
    items = [
        (_config_key(str(key)), value_text(value))
        for key, value in config.items()
        if not is_seed_key(str(key)) and not _says_again(base, str(key), value)
    ]
    items += base.items()
    return tuple(sorted(items))


def _says_again(base: dict[str, str], key: str, value: object) -> bool:
    """A config's own `agent` or `env` that names the experiment's (velora writes both there):
    it would only repeat them, quoted, in every group's name."""
    return key in SEED_KEY_BASE and value == base[key]


@lru_cache(maxsize=65_536)
def _config_key(key: str) -> str:
    """A config key as a part of a group key: a config's own top-level `agent` or `env` is
    written quoted (`"agent"`, a form flatten never gives that key), apart from the
    experiment's agent and env, which it must not stand in for."""
    return json.dumps(key) if key in SEED_KEY_BASE else key


def chosen_key(summary: ExperimentSummary, config: Config | None, keys: Sequence[str]) -> GroupKey:
    return tuple((key, lookup(config, summary, key)) for key in keys)


def population_std(values: Sequence[float], mean: float) -> float:
    """sqrt(mean of squared deviations), scaled by the largest deviation first so that tiny
    deviations do not square to 0 nor huge ones to inf."""
    scale = max(abs(v - mean) for v in values)
    if scale == 0 or not math.isfinite(scale):
        return scale
    return scale * math.sqrt(math.fsum(((v - mean) / scale) ** 2 for v in values) / len(values))


@dataclass(frozen=True, slots=True)
class Stat:
    """Mean and (population) std of the finite values among `n` runs; `count` were finite."""

    mean: float = math.nan
    std: float = math.nan
    count: int = 0

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
        if not finite:
            return cls()
        mean = math.fsum(finite) / len(finite)
        return cls(mean, population_std(finite, mean), len(finite))

    def to_json(self) -> dict[str, Any]:
        return {"mean": json_number(self.mean), "std": json_number(self.std), "n": self.count}


@dataclass(slots=True)
class Group:
    """The runs of one configuration (or of one set of chosen key values)."""

    key: GroupKey
    runs: list[ExperimentSummary] = field(default_factory=list)
    # The key=value pairs that tell this group from the others (all of `key` for chosen keys).
    name: tuple[tuple[str, str], ...] = ()
    # Each run with a target: the episode at which its moving average first reached it, inf
    # where it has not (group_reads.ReachedReader); `target`: theirs, when they share one.
    reached: dict[Key, float] = field(default_factory=dict)
    target: float | None = None

    @property
    def ident(self) -> str:
        """A stable text id of the group (for table rows and marks)."""
        return json.dumps(self.key, ensure_ascii=False)

    @property
    def keys(self) -> list[Key]:
        return [run.key for run in self.runs]

    def label(self, width: int = 0) -> str:
        """`actor_neurons=20 batch_size=64`: the varied values, by the last part of their key
        when that is unambiguous; else agent · env."""
        if not self.name:
            first = self.runs[0] if self.runs else None
            text = f"{first.agent} · {first.env}" if first else "(no runs)"
        else:
            shorts = short_keys([k for k, _ in self.name])
            text = " ".join(f"{shorts[k]}={v}" for k, v in self.name)
        return text if not width or len(text) <= width else text[: max(0, width - 1)] + "…"

    def counts(self, now: datetime) -> dict[RunStatus, int]:
        counted = dict.fromkeys(RunStatus, 0)
        for run in self.runs:
            counted[run.status(now)] += 1
        return counted

    def running(self, now: datetime) -> int:
        return self.counts(now)[RunStatus.RUNNING]

    def finished(self, now: datetime) -> int:
        return self.counts(now)[RunStatus.FINISHED]

    def episodes(self) -> tuple[int, int]:
        counts = [run.episodes for run in self.runs]
        return (min(counts), max(counts)) if counts else (0, 0)

    def final(self) -> Stat:
        """Each run's final reward (velora's moving average at its last episode), over runs."""
        return Stat.of(run.reward_moving_avg for run in self.runs)

    def best(self) -> Stat:
        return Stat.of(run.best_reward for run in self.runs if run.scanned)

    def finals(self) -> list[float]:
        return [run.reward_moving_avg for run in self.runs]

    def final_iqm(self) -> Estimate:
        """The IQM of the runs' final rewards and its 95% bootstrap interval (seed_stats)."""
        return iqm_interval(self.finals())

    def best_iqm(self) -> Estimate:
        return iqm_interval(run.best_reward for run in self.runs if run.scanned)

    def set_reached(self, reached: Mapping[Key, float], targets: Mapping[Key, float]) -> None:
        """Take this group's runs' episodes to their targets from `reached` (by run)."""
        self.reached = {run.key: reached[run.key] for run in self.runs if run.key in reached}
        shared = {targets[key] for key in self.reached if key in targets}
        self.target = shared.pop() if len(shared) == 1 else None

    def to_target(self) -> Estimate | None:
        """The IQM of the episodes its runs took to reach their target, with its 95% bootstrap
        interval (runs that did not reach it rank last: seed_stats.censored_interval); None
        when no run has a target."""
        if not self.reached:
            return None
        return censored_interval(self.reached.values())

    def reached_count(self) -> int:
        return sum(1 for value in self.reached.values() if math.isfinite(value))

    def beats(self, other: Group) -> Estimate:
        """The probability that a run of this group ends above a run of `other` (final
        reward, ties a half), with its 95% bootstrap interval."""
        return improvement_interval(self.finals(), other.finals())

    @property
    def scanned(self) -> bool:
        return all(run.scanned for run in self.runs)

    def eta(self, now: datetime) -> timedelta | None:
        """Until the last run's planned end: the longest ETA of the runs still running (a
        stalled run is not counted: it may never end). None when none is running, or a
        running one's pace or plan is not known."""
        longest: timedelta | None = None
        for run in self.runs:
            if run.status(now) is not RunStatus.RUNNING:
                continue
            eta = run.eta()
            if eta is None:
                return None
            longest = eta if longest is None else max(longest, eta)
        return longest

    def figures(self, now: datetime) -> dict[str, float]:
        """The figures the filter's group terms look at (filtering.GROUP_FIELDS)."""
        final, best = self.final(), self.best()
        return {
            "final": final.mean,
            "final_std": final.std,
            "best": best.mean,
            "best_std": best.std,
            "runs": len(self.runs),
            "running": self.running(now),
            "episodes": self.episodes()[1],
        }

    def to_target_json(self) -> dict[str, Any] | None:
        """`episodes_to_target`: the target, how many runs reached it, the IQM and interval
        (inf, as "inf", for runs that did not), n; None when no run has a target."""
        return _to_target_json(self)

    def to_json(self, now: datetime) -> dict[str, Any]:
        low, high = self.episodes()
        eta = self.eta(now)
        return {
            "group": self.label(),
            "values": dict(self.name),
            "runs": len(self.runs),
            "status": {str(k): v for k, v in self.counts(now).items() if v},
            "episodes": {"min": low, "max": high},
            "final_reward": self.final().to_json() | _iqm_json(self.final_iqm()),
            "best_reward": self.best().to_json() | _iqm_json(self.best_iqm()),
            "episodes_to_target": self.to_target_json(),
            "eta_seconds": None if eta is None else round(eta.total_seconds(), 1),
            "experiments": [{"db": source_names.name(run.db), "id": run.id} for run in self.runs],
        }


def _to_target_json(group: Group) -> dict[str, Any] | None:
    found = group.to_target()
    if found is None:
        return None
    return {"target": group.target, "reached": group.reached_count()} | found.to_json()


def _iqm_json(estimate: Estimate) -> dict[str, Any]:
    """The IQM and its interval, beside the mean and std (n is the same count)."""
    found = estimate.to_json()
    found.pop("n", None)
    return found


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each key by its last part (as the path writes it: a quoted part stays quoted) when no
    other key of `keys` ends the same way."""
    lasts = [(path_parts(key) or [key])[-1] for key in keys]
    return {
        key: last if lasts.count(last) == 1 else key for key, last in zip(keys, lasts, strict=True)
    }


def group_runs(
    summaries: Iterable[ExperimentSummary],
    configs: Mapping[Key, Config | None],
    keys: Sequence[str] = (),
    cache: dict[Key, GroupKey] | None = None,
) -> list[Group]:
    """Groups of the runs, in the order of their first run. `keys` empty: seed grouping
    (`configs` maps each run's key to its flattened config, None or absent when unreadable);
    else the runs with the same values of those keys. `cache`: each run's group key, kept by
    a caller that groups the same runs by the same keys again (a config never changes)."""
    chosen = [normalize_key(k) for k in keys if normalize_key(k)]
    groups: dict[GroupKey, Group] = {}
    for summary in summaries:
        key = cache.get(summary.key) if cache is not None else None
        if key is None:
            config = configs.get(summary.key)
            key = chosen_key(summary, config, chosen) if chosen else seed_key(summary, config)
            if cache is not None:
                cache[summary.key] = key
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key)
        group.runs.append(summary)
    found = list(groups.values())
    if chosen:
        for group in found:
            group.name = group.key
    else:
        name_groups(found)
    return found


def take_in_runs(shown: Sequence[Group], now: Iterable[Group]) -> bool:
    """Add to each group shown the runs that joined it since (in `now`, the same runs grouped
    by the same keys again: a group is the same by its ident); whether any did. A group's
    name stays as it was shown."""
    fresh = {group.ident: group for group in now}
    joined = False
    for group in shown:
        same = fresh.get(group.ident)
        if same is None:
            continue
        known = set(group.keys)
        new = [run for run in same.runs if run.key not in known]
        if new:
            group.runs.extend(new)
            joined = True
    return joined


# The runs grouped now, by the keys the groups shown were made with, and the runs whose configs
# are still being read (the app's list makes them).
Regroup = Callable[[], tuple[Sequence[Group], Sequence[Key]]]


class Joining:
    """Runs that join groups shown after they were made (a new seed of a config): a run seen
    changing outside them is grouped again with the others, until its config is read; one
    grouped elsewhere is never looked at again (a config never changes)."""

    def __init__(self, regroup: Regroup | None) -> None:
        self.regroup = regroup
        self.outside: set[Key] = set()
        self.elsewhere: set[Key] = set()

    def take_in(self, shown: Sequence[Group], touched: Iterable[Key], every: bool = False) -> bool:
        """Whether runs joined `shown` (added to them): of the runs `touched` (and those still
        waiting for their configs), or of any run (`every`: what changed is not known)."""
        if self.regroup is None:
            return False
        mine = {key for group in shown for key in group.keys}
        self.outside |= set(touched) - mine - self.elsewhere
        if not self.outside and not every:
            return False
        groups, unread = self.regroup()
        joined = take_in_runs(shown, groups)
        mine = {key for group in shown for key in group.keys}
        self.elsewhere |= self.outside - set(unread) - mine
        self.outside &= set(unread)
        return joined


def name_groups(groups: Sequence[Group]) -> None:
    """Name each group by the keys whose values are not the same in every group."""
    if len(groups) < 2:
        return
    tables = [dict(group.key) for group in groups]
    every = sorted({key for table in tables for key in table})
    varied = [key for key in every if len({table.get(key, MISSING) for table in tables}) > 1]
    for group, table in zip(groups, tables, strict=True):
        group.name = tuple((key, table.get(key, MISSING)) for key in varied)


def varied_keys(configs: Iterable[Config | None], limit: int = 200) -> list[str]:
    """The config keys whose values differ among these configs (or that some lack), seed keys
    left out: what a user may want to group by. The most common keys first."""
    seen: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    total = 0
    for config in configs:
        if config is None:
            continue
        total += 1
        for key, value in config.items():
            name = str(key)
            if is_seed_key(name):
                continue
            seen.setdefault(name, set()).add(value_text(value))
            present[name] = present.get(name, 0) + 1
    varied = [k for k, values in seen.items() if len(values) > 1 or present[k] < total]
    varied.sort(key=lambda k: (-present[k], k))
    return varied[:limit]


# -- sorting ---------------------------------------------------------------------------------

# What the group rows can be sorted by: name, and a function giving each group's sort value.
SORTS: tuple[tuple[str, Callable[[Group, datetime], Any]], ...] = (
    ("final reward", lambda g, now: _desc(g.final().mean)),
    ("best reward", lambda g, now: _desc(g.best().mean)),
    ("runs", lambda g, now: -len(g.runs)),
    ("episodes", lambda g, now: -g.episodes()[1]),
    ("running", lambda g, now: -g.running(now)),
    ("name", lambda g, now: g.label().lower()),
)


def _desc(value: float) -> tuple[int, float]:
    """Highest first, NaN last."""
    return (1, 0.0) if math.isnan(value) else (0, -value)


def sort_groups(groups: Iterable[Group], now: datetime, by: str = "final reward") -> list[Group]:
    pick = dict(SORTS).get(by, SORTS[0][1])
    return sorted(groups, key=lambda g: (pick(g, now), g.label()))


# -- curves ----------------------------------------------------------------------------------

Curve = tuple[Sequence[float], Sequence[float]]  # x ascending, y (any float)


@dataclass(slots=True)
class Aggregate:
    """Per point: x, how many runs have a finite value there (`count`), and the mean,
    population std, min and max of those values. `exact`: each point is one x of the runs (no
    binning)."""

    x: list[float] = field(default_factory=list)
    count: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    exact: bool = True
    # The x where each run's curve ends (its last finite point), in run order.
    ends: list[float] = field(default_factory=list)
    # Each point's values (one per run, or more where runs repeat the x), for its interval.
    values: list[tuple[float, ...]] = field(default_factory=list)
    _intervals: tuple[list[float], list[float], list[float]] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def intervals(self) -> tuple[list[float], list[float], list[float]]:
        """Per point, the IQM of the runs' values and its 95% bootstrap interval (seed_stats;
        a point of one run: its value, as both bounds). Computed once, when first asked for:
        the chart asks only when its band is the interval."""
        if self._intervals is None:
            found = [iqm_interval(values) for values in self.values]
            self._intervals = (
                [e.value for e in found],
                [e.low for e in found],
                [e.high for e in found],
            )
        return self._intervals

    def add(self, x: float, values: Sequence[float], runs: int | None = None) -> None:
        """A point of `values` (one per run, or more where runs repeat the x: `runs`)."""
        n = len(values)
        mean = math.fsum(values) / n
        self.x.append(x)
        self.count.append(n if runs is None else runs)
        self.mean.append(mean)
        self.std.append(population_std(values, mean))
        self.low.append(min(values))
        self.high.append(max(values))
        self.values.append(tuple(values))


def aggregate(curves: Sequence[Curve], points: int) -> Aggregate:
    """Mean, std, min and max over the runs at each x.

    When the runs' x values, taken together, are at most `points` distinct values, each is a
    point, over every y there (a run that repeats an x, as a resumed run repeats episode
    numbers, counts each of its ys: `SELECT avg(y) ... GROUP BY x`), `count` the runs there:
    exact. Otherwise [lowest x, highest x] is cut into `points` bins of equal width; a run's
    value in a bin is the mean of its finite ys whose x falls in it, and the point's x is the
    bin's middle. A run counts at a point only where it has a finite value: non-finite values
    and points with a non-finite x are left out.
    """
    runs = [
        [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(x) and math.isfinite(y)]
        for xs, ys in curves
    ]
    out = Aggregate(ends=[run[-1][0] if run else math.nan for run in runs])
    distinct = {x for run in runs for x, _ in run}
    if not distinct:
        return out
    points = max(1, points)
    if len(distinct) <= points:
        per_x: dict[float, list[float]] = {}
        runs_at: dict[float, int] = {}
        for run in runs:
            for x, y in run:
                per_x.setdefault(x, []).append(y)
            for x in {x for x, _ in run}:
                runs_at[x] = runs_at.get(x, 0) + 1
        for x in sorted(per_x):
            out.add(x, per_x[x], runs_at[x])
        return out
    out.exact = False
    low, high = min(distinct), max(distinct)
    bins: list[list[float]] = [[] for _ in range(points)]
    for run in runs:
        sums = [0.0] * points
        counts = [0] * points
        for x, y in run:
            index = bin_of(x, low, high, points)
            sums[index] += y
            counts[index] += 1
        for index, n in enumerate(counts):
            if n:
                bins[index].append(sums[index] / n)
    for index, values in enumerate(bins):
        if values:
            out.add(bin_middle(index, low, high, points), values)
    return out


def bin_of(x: float, low: float, high: float, points: int) -> int:
    """The bin of `x` among `points` equal bins over [low, high] (the last one closed)."""
    # Halved first: high - low may overflow where both are finite. Halving may also make a range
    # of two neighbouring subnormals (0 and 5e-324) empty: then there is one bin's worth of room.
    width = high / 2 - low / 2
    if width <= 0:
        return 0 if x <= low else points - 1
    share = (x / 2 - low / 2) / width
    if not math.isfinite(share):
        return 0 if x <= low else points - 1
    return max(0, min(points - 1, int(share * points)))


def bin_middle(index: int, low: float, high: float, points: int) -> float:
    return low + (high / 2 - low / 2) * 2 * (index + 0.5) / points


def spark_curve(
    sparks: Sequence[tuple[int, Sequence[float]]], points: int = SPARK_POINTS
) -> list[float]:
    """A group's sparkline from its runs' sparklines (each `points` values spread evenly over a
    run of `episodes`): each value placed at its episode, then averaged over the runs in
    `points` bins across the longest run. An approximation for a row of the list; the group's
    chart reads every run's series."""
    curves: list[Curve] = []
    for episodes, values in sparks:
        n = len(values)
        if not n or episodes <= 0:
            continue
        curves.append(([episodes * (i + 1) / n for i in range(n)], values))
    return aggregate(curves, points).mean
