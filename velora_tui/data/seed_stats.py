"""Statistics across the seeds of a group, as Agarwal et al. recommend ("Deep Reinforcement
Learning at the Edge of the Statistical Precipice", NeurIPS 2021; its library is rliable):

- the interquartile mean (IQM) of the runs' values: the mean of the middle half, the values
  sorted and `int(n / 4)` left out at each end (scipy's `trim_mean(x, 0.25)`, rliable's IQM);
  the plain mean for fewer than four runs;
- its 95% confidence interval by the percentile bootstrap: RESAMPLES resamples of the runs
  (with replacement, as many as there are), drawn from a generator seeded with SEED and the
  number of runs, so the same values always give the same interval; the interval runs from
  the 2.5th to the 97.5th percentile of the resamples' IQMs (linear interpolation between
  order statistics, numpy's default). With one env per group, rliable's stratified bootstrap
  (runs resampled within each task) is this one;
- the probability of improvement of X over Y: the chance that a run of X beats a run of Y, ties
  counting a half (the Mann-Whitney U statistic divided by the number of pairs), with its
  percentile bootstrap interval (X's and Y's runs resampled apart, from generators of their
  own).

Values are taken as the rest of the project takes them (`groups.Stat`): only finite numbers
count, and `count` says how many did. No numpy: the groups are small, and the resamples are
computed cheaply (see `_plan`). docs/groups.md says why each choice was made.
"""

from __future__ import annotations

import math
import random
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

from velora_tui.data.records import json_number

RESAMPLES = 1_000
CONFIDENCE = 0.95
SEED = 2021
# Runs from which an interval is no longer called wide: with two, the bootstrap interval of the
# IQM is the two values themselves (the resamples' IQMs are a, (a + b) / 2 and b).
WIDE_BELOW = 3
WIDE_MARK = "†"
WIDE_NOTE = f"{WIDE_MARK} two runs: the interval is wide (it spans both)"
NO_INTERVAL = "—"  # one run: no spread, no interval


def finite(values: Iterable[object]) -> list[float]:
    """The finite numbers among `values` (NaN, inf, text and None left out, as `Stat.of`
    leaves them), as floats."""
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean of `values` (numbers; NaN if there are none): sorted, int(n/4)
    left out at each end, the mean of the rest."""
    ordered = sorted(values)
    cut = len(ordered) // 4
    middle = ordered[cut : len(ordered) - cut]
    if not middle:
        return math.nan
    # Within the values it averages (dividing may round 3 equal values' sum one bit away).
    return min(max(math.fsum(middle) / len(middle), middle[0]), middle[-1])


@lru_cache(maxsize=512)
def resamples(n: int, stream: int = 0) -> tuple[tuple[int, ...], ...]:
    """RESAMPLES resamples of n runs: each n indices drawn with replacement, sorted. The same
    for the same n and stream, in every process (a string seed is hashed with SHA-512)."""
    rng = random.Random(f"velora-tui {SEED} {n} {stream}")
    population = range(n)
    return tuple(tuple(sorted(rng.choices(population, k=n))) for _ in range(RESAMPLES))


@dataclass(frozen=True, slots=True)
class Plan:
    """The resamples of n runs as the IQM sees them. A resample's sorted indices point into
    the sorted values, so its IQM is the mean of the values at its middle indices. Where few
    middles are distinct (for five runs, 1,000 resamples have 35), each is kept once with how
    many resamples have it (`counts`); else one field per resample (`counts` None).
    `columns[j]` packs, in field b (FIELD bits each), how often index j is in middle b: the
    sum of q[j] * columns[j] holds every middle's sum of the integers q at once, in n
    big-integer products instead of a loop over the resamples."""

    columns: tuple[int, ...]
    counts: tuple[int, ...] | None
    size: int  # values in a middle: n - 2 * int(n / 4)


# Bits of one middle's sum in the packed integers, read back as unsigned 32-bit integers: the
# sums are kept below 2**30, so that they sort as one-digit Python integers (the fast path).
FIELD = 32
_FIELDS = next(code for code in "IL" if array(code).itemsize * 8 == FIELD)
# Runs up to which the interval is the bootstrap's; above, the trimmed mean's normal interval
# (docs/groups.md: the bootstrap's cost grows with the runs, its difference with them shrinks).
BOOTSTRAP_MAX_RUNS = 64


@lru_cache(maxsize=BOOTSTRAP_MAX_RUNS + 1)
def _plan(n: int) -> Plan:
    cut = n // 4
    drawn = [sample[cut : n - cut] for sample in resamples(n)]
    found = Counter(drawn)
    counts: tuple[int, ...] | None = None
    if len(found) <= RESAMPLES // 2:
        drawn = sorted(found)
        counts = tuple(found[middle] for middle in drawn)
    per_index = [[0] * len(drawn) for _ in range(n)]
    for field, middle in enumerate(drawn):
        for index in middle:
            per_index[index][field] += 1
    columns = tuple(
        int.from_bytes(array(_FIELDS, fields).tobytes(), sys.byteorder) for fields in per_index
    )
    return Plan(columns, counts, n - 2 * cut)


def _bootstrap_interval(ordered: tuple[float, ...]) -> tuple[float, float]:
    """The percentile interval of the RESAMPLES' IQMs of these sorted values (at least two,
    not all equal). The values are put on an integer scale over their range first, of
    2**30 / (values in a middle) steps (the packed sums must not carry into the next field):
    a bound is exact to 1e-7 of the values' range."""
    plan = _plan(len(ordered))
    lowest = ordered[0]
    half = ordered[-1] / 2 - lowest / 2  # halved: the range may overflow where values do not
    if not half:  # two neighbouring subnormals: halving made their range 0
        return lowest, ordered[-1]
    scale = float(1 << (FIELD - 2 - plan.size.bit_length()))
    packed = 0
    for value, column in zip(ordered, plan.columns, strict=True):
        packed += round((value / 2 - lowest / 2) / half * scale) * column
    sums = array(_FIELDS)
    fields = RESAMPLES if plan.counts is None else len(plan.counts)
    sums.frombytes(packed.to_bytes(fields * FIELD // 8, sys.byteorder))
    if plan.counts is None:
        totals: Sequence[float] = sorted(sums)
        counts = None
    else:
        order = sorted(range(fields), key=sums.__getitem__)
        totals, counts = [sums[i] for i in order], [plan.counts[i] for i in order]
    unit = 2 * half / (plan.size * scale)
    tail = (1 - CONFIDENCE) / 2
    return (
        lowest + percentile(totals, counts, tail) * unit,
        lowest + percentile(totals, counts, 1 - tail) * unit,
    )


def _normal_interval(ordered: tuple[float, ...], point: float) -> tuple[float, float]:
    """The trimmed mean's interval for many runs: IQM +- z * its standard error, the
    winsorized standard deviation over (1 - 2 * trimmed share) * sqrt(n) (Tukey and McLaughlin;
    Yuen's interval with the normal quantile, which the t quantile is at these sizes)."""
    n = len(ordered)
    cut = n // 4
    low_edge, high_edge = ordered[cut], ordered[n - cut - 1]
    winsorized = [min(max(v, low_edge), high_edge) for v in ordered]
    mean = math.fsum(winsorized) / n
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in winsorized) / (n - 1))
    error = spread / ((1 - 2 * cut / n) * math.sqrt(n))
    z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
    return point - z * error, point + z * error


def percentile(values: Sequence[float], counts: Sequence[int] | None, q: float) -> float:
    """The q-quantile (0..1) of sorted `values`, each repeated its count (once without
    `counts`): interpolated linearly between the order statistics around q * (N - 1), as
    numpy's default does."""
    total = len(values) if counts is None else sum(counts)
    if not total:
        return math.nan
    position = q * (total - 1)
    below = math.floor(position)
    fraction = position - below
    low = _order_statistic(values, counts, below)
    if not fraction:
        return low
    high = _order_statistic(values, counts, below + 1)
    if high == low or high == math.inf:  # inf - inf is NaN; any share of the way to inf is inf
        return high
    return low + (high - low) * fraction


def _order_statistic(values: Sequence[float], counts: Sequence[int] | None, index: int) -> float:
    if counts is None:
        return values[min(index, len(values) - 1)]
    seen = 0
    for value, count in zip(values, counts, strict=True):
        seen += count
        if index < seen:
            return value
    return values[-1]


def _interval(found: Counter[float]) -> tuple[float, float]:
    values = sorted(found)
    counts = [found[v] for v in values]
    tail = (1 - CONFIDENCE) / 2
    return percentile(values, counts, tail), percentile(values, counts, 1 - tail)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A figure over a group's runs (`value`: an IQM, or a probability of improvement) with
    its bootstrap interval [low, high]; `count` values were finite and counted."""

    value: float = math.nan
    low: float = math.nan
    high: float = math.nan
    count: int = 0

    @property
    def has_interval(self) -> bool:
        """One run has no spread: it has no interval."""
        return self.count >= 2

    @property
    def wide(self) -> bool:
        """Two runs (apart): the interval is as wide as they are apart, whatever the truth is."""
        return 2 <= self.count < WIDE_BELOW and self.low < self.high

    def to_json(self) -> dict[str, Any]:
        interval = [json_number(self.low), json_number(self.high)] if self.has_interval else None
        return {"iqm": json_number(self.value), "ci95": interval, "n": self.count}


@lru_cache(maxsize=65_536)
def _iqm_estimate(ordered: tuple[float, ...]) -> Estimate:
    n = len(ordered)
    if n == 0:
        return Estimate()
    point = iqm(ordered)
    if n == 1 or ordered[0] == ordered[-1]:
        return Estimate(point, point, point, n)
    if n > BOOTSTRAP_MAX_RUNS:
        low, high = _normal_interval(ordered, point)
    else:
        low, high = _bootstrap_interval(ordered)
        # Every resample's IQM lies within the values: the integer scale's last bit must not
        # put a bound outside them.
        low, high = max(low, ordered[0]), min(high, ordered[-1])
    # Sums in another order than the point's may differ in the last bit: the interval holds it.
    return Estimate(point, min(low, point), max(high, point), n)


def iqm_interval(values: Iterable[object]) -> Estimate:
    """The IQM of the finite values and its 95% percentile bootstrap interval (reproducible:
    the resamples depend only on the number of values). Remembered for the same values, so
    a redraw of an unchanged group costs a look-up."""
    return _iqm_estimate(tuple(sorted(finite(values))))


def censored_interval(values: Iterable[object]) -> Estimate:
    """The IQM and its 95% bootstrap interval of values that may be +inf: "not reached" (the
    episodes to a target of runs that did not reach it). The runs are ranked as usual, those
    that did not reach it last: the IQM is finite while no more than a quarter did not (the
    quarter cut at the top holds them), else inf; a resample's IQM is inf where its middle
    holds one. NaN, -inf and text are left out; `count` is the runs counted."""
    kept = [v for v in values if isinstance(v, int | float) and not math.isnan(v) and v > -math.inf]
    reached = tuple(sorted(float(v) for v in kept if v < math.inf))
    return _censored_estimate(reached, len(kept) - len(reached))


@lru_cache(maxsize=16_384)
def _censored_estimate(reached: tuple[float, ...], missing: int) -> Estimate:
    if not missing:
        return _iqm_estimate(reached)
    ordered = reached + (math.inf,) * missing
    n = len(ordered)
    point = iqm(ordered)
    if not reached or n == 1:
        return Estimate(point, point, point, n)
    if n > BOOTSTRAP_MAX_RUNS:
        if point == math.inf:
            return Estimate(point, point, point, n)
        low, high = _normal_interval(ordered, point)  # winsorized: inf is the upper edge
        return Estimate(point, min(max(low, reached[0]), point), max(high, point), n)
    plan = _plan(n)
    fields = RESAMPLES if plan.counts is None else len(plan.counts)
    lowest = reached[0]
    half = reached[-1] / 2 - lowest / 2 or 1.0  # equal values: every q is 0
    scale = float(1 << (FIELD - 2 - plan.size.bit_length()))
    packed = missed = 0
    for index, column in enumerate(plan.columns):
        if index < len(reached):
            packed += round((reached[index] / 2 - lowest / 2) / half * scale) * column
        else:
            missed += column  # how many runs that did not reach it each middle holds
    sums, holes = array(_FIELDS), array(_FIELDS)
    sums.frombytes(packed.to_bytes(fields * FIELD // 8, sys.byteorder))
    holes.frombytes(missed.to_bytes(fields * FIELD // 8, sys.byteorder))
    unit = 2 * half / (plan.size * scale)
    found = [
        math.inf if hole else lowest + total * unit for total, hole in zip(sums, holes, strict=True)
    ]
    if plan.counts is None:
        totals: Sequence[float] = sorted(found)
        counts = None
    else:
        order = sorted(range(fields), key=found.__getitem__)
        totals, counts = [found[i] for i in order], [plan.counts[i] for i in order]
    tail = (1 - CONFIDENCE) / 2
    low = max(percentile(totals, counts, tail), lowest)
    high = percentile(totals, counts, 1 - tail)
    return Estimate(point, min(low, point), max(high, point), n)


def improvement(xs: Sequence[float], ys: Sequence[float]) -> float:
    """P(a run of X beats a run of Y), ties counting a half: U / (nx * ny). NaN when either
    is empty. `ys` must be sorted."""
    if not xs or not ys:
        return math.nan
    wins = sum(bisect_left(ys, x) + bisect_right(ys, x) for x in xs)  # twice (below + ties/2)
    return wins / (2 * len(xs) * len(ys))


@lru_cache(maxsize=4_096)
def _improvement_estimate(xs: tuple[float, ...], ys: tuple[float, ...]) -> Estimate:
    point = improvement(xs, ys)
    if not xs or not ys:
        return Estimate()
    count = min(len(xs), len(ys))
    if max(len(xs), len(ys)) > BOOTSTRAP_MAX_RUNS:
        low, high = _improvement_normal(point, len(xs), len(ys))
        return Estimate(point, low, high, count)
    x_samples, y_samples = resamples(len(xs), 1), resamples(len(ys), 2)
    found: Counter[float] = Counter()
    for x_sample, y_sample in zip(x_samples, y_samples, strict=True):
        found[improvement([xs[i] for i in x_sample], [ys[j] for j in y_sample])] += 1
    low, high = _interval(found)
    return Estimate(point, min(low, point), max(high, point), count)


def _improvement_normal(point: float, nx: int, ny: int) -> tuple[float, float]:
    """For many runs: point +- z * the standard error of the Mann-Whitney probability (Hanley
    and McNeil, 1982), kept within [0, 1]."""
    q1, q2 = point / (2 - point), 2 * point * point / (1 + point)
    variance = (
        point * (1 - point) + (nx - 1) * (q1 - point * point) + (ny - 1) * (q2 - point * point)
    ) / (nx * ny)
    error = math.sqrt(max(0.0, variance))
    z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
    return max(0.0, point - z * error), min(1.0, point + z * error)


def improvement_interval(x_values: Iterable[object], y_values: Iterable[object]) -> Estimate:
    """The probability that a run of X beats a run of Y (finite values only; ties a half), with
    its 95% percentile bootstrap interval (each group's runs resampled apart). `count` is the
    smaller group's number of runs: one run on either side has no interval."""
    return _improvement_estimate(tuple(sorted(finite(x_values))), tuple(sorted(finite(y_values))))


# -- as text -----------------------------------------------------------------------------------


def interval_text(estimate: Estimate, number: Any) -> str:
    """`452.10 [380.20, 495.00]`, `464.27 —` for one run, `-` for none; the wide mark after
    the interval of two runs. `number` formats one number (the caller's own format)."""
    if not estimate.count:
        return "-"
    if not estimate.has_interval:
        return f"{number(estimate.value)} {NO_INTERVAL}"
    text = f"{number(estimate.value)} [{number(estimate.low)}, {number(estimate.high)}]"
    return text + WIDE_MARK if estimate.wide else text


def episodes_text(value: float) -> str:
    """An episode count: whole (an IQM may fall between two); ∞ for not reached."""
    return "∞" if value == math.inf else f"{value:.0f}"


def to_target_text(estimate: Estimate | None, reached: int) -> str:
    """`812 [640, 1020] (5/5)`: the IQM of the episodes to the target, its interval, and how
    many of the runs reached it (∞: more than a quarter did not; `not reached` where even the
    interval's low end did not; `-`: no target known)."""
    if estimate is None or not estimate.count:
        return "-"
    if estimate.low == math.inf:
        return f"not reached ({reached}/{estimate.count})"
    return f"{interval_text(estimate, episodes_text)} ({reached}/{estimate.count})"
