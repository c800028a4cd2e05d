"""An experiment's metrics for charts, downsampled in SQL so spikes survive.

Rows are grouped into at most N buckets by id (the index on experiment_id carries the rowid, so
no sort is needed); each bucket keeps the min, max and mean of every metric, so the global
extremes of a series are always among the points plotted. Rows the change feed has just read
are folded into the buckets here (`fold`), as SQLite would have added them up, instead of being
read again.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from velora_tui.data import statements
from velora_tui.data.cleaning import as_float, parse_timestamp
from velora_tui.data.connection import Fetch
from velora_tui.data.database import FAR_READS, MetricsDatabase, RowBatch
from velora_tui.data.records import EPISODE_METRICS, EpisodeRow
from velora_tui.data.schema import Schema


@dataclass(slots=True)
class Band:
    """One metric: per point the mean, and the min and max of what the point stands for."""

    mean: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)

    def has_data(self) -> bool:
        return any(math.isfinite(v) for v in self.mean)


@dataclass(slots=True)
class Series:
    episode: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    rows: int = 0
    exact: bool = True
    # False while a read with a time budget has rows of the experiment left to read.
    complete: bool = True
    bands: dict[str, Band] = field(default_factory=lambda: {m: Band() for m in EPISODE_METRICS})

    def __len__(self) -> int:
        return len(self.episode)


LENGTH = EPISODE_METRICS.index("length")
# Ids per read: each statement aggregates at most this many rows, so a writer waiting to commit
# never waits long; the read lock is let go between statements.
CHUNK_IDS = 1_000
# ... or, where the experiment's rows are spread among other runs' (runs written at once into
# one file), as many ids as should hold about CHUNK_IDS of its rows, going by the reads so far
# (at most twice the last span, and at most MAX_SPAN ids: a run that turns dense mid-way costs
# one read of at most MAX_SPAN rows). A statement reads only its experiment's rows (the index on
# experiment_id), so the ids in between cost nothing: 20 interleaved runs are read in ~1/16 of
# the statements.
MAX_SPAN = 16 * CHUNK_IDS
MAX_POINTS = 2_000
# Buckets of a database whose answers cross a link (a remote host's): about twice a wide
# terminal's plot, each bucket ~550 bytes of JSON before ssh's compression.
FAR_POINTS = 500


@dataclass(slots=True)
class _Bucket:
    """Aggregates of the rows whose ids fall in one bucket; two buckets merge exactly. The
    lowest and highest episode numbers and the latest time are kept as stored, compared as
    SQLite's min() and max() compare them (text above numbers), so that a bucket is the same
    whichever way its rows were split between reads."""

    first_num: Any
    last_num: Any
    rows: int
    latest: Any
    stamp: datetime | None  # the latest time, parsed
    sums: list[float]
    counts: list[int]
    lows: list[float]
    highs: list[float]

    def middle(self, index: int) -> float:
        """Where the bucket sits on the episode axis: the middle of its episode numbers (its
        one episode when it holds one row), as its values are the mean of those episodes'.
        Labelled at its first episode, a bucket of episodes 1-2 showed their mean at 1."""
        first, last = _finite(self.first_num), _finite(self.last_num)
        if not math.isfinite(first):
            return float(index + 1)
        if not math.isfinite(last) or last <= first:
            return first
        return first / 2 + last / 2  # halved first: first + last may overflow

    def merge(self, other: _Bucket) -> None:
        if _takes_min(self.first_num, other.first_num):
            self.first_num = other.first_num
        if _takes_max(self.last_num, other.last_num):
            self.last_num = other.last_num
        self.rows += other.rows
        if _takes_max(self.latest, other.latest):
            self.latest, self.stamp = other.latest, other.stamp
        for i in range(len(EPISODE_METRICS)):
            self.sums[i] += other.sums[i]
            self.counts[i] += other.counts[i]
            self.lows[i] = _lowest(self.lows[i], other.lows[i])
            self.highs[i] = _highest(self.highs[i], other.highs[i])


def _rank(value: object) -> int:
    """Where SQLite orders a stored value: NULL (none), then numbers, text, blobs."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    if isinstance(value, int | float):
        return 1
    return 2 if isinstance(value, str) else 3


def _below(a: Any, b: Any) -> bool:
    """Whether SQLite orders stored value `a` before `b` (neither NULL): numbers compare as
    numbers, text and blobs byte by byte (UTF-8 keeps the order of code points)."""
    ranked_a, ranked_b = _rank(a), _rank(b)
    if ranked_a != ranked_b:
        return ranked_a < ranked_b
    if ranked_a == 3:
        return isinstance(a, bytes) and isinstance(b, bytes) and a < b
    return bool(a < b)


def _takes_min(current: Any, new: Any) -> bool:
    """Whether SQLite's min() takes `new` over `current` (NULL never; the first of equals)."""
    return _rank(new) != 0 and (_rank(current) == 0 or _below(new, current))


def _takes_max(current: Any, new: Any) -> bool:
    """Whether SQLite's max() takes `new` over `current` (NULL never; the first of equals)."""
    return _rank(new) != 0 and (_rank(current) == 0 or _below(current, new))


def _lowest(a: float, b: float) -> float:
    return b if math.isnan(a) or b < a else a


def _highest(a: float, b: float) -> float:
    return b if math.isnan(a) or b > a else a


class SeriesReader:
    """One experiment's series, kept up to date by reading only rows it has not seen.

    Rows are grouped by id into at most `max_points` buckets of `width` ids; when the
    experiment outgrows them, neighbouring buckets merge and the width doubles. Each bucket
    keeps the count, sum, min and max of the finite values of every metric, so merging loses
    nothing and the global extremes are always plotted. With a width of one id, every row is
    its own point (`exact`). Widths are powers of two, doubled only when needed, so the buckets
    are the same however the rows were read: all at once or a few at a time. Thread-safe; reads
    run in the caller's thread.
    """

    def __init__(self, database: MetricsDatabase, exp_id: int, max_points: int = MAX_POINTS):
        self.database = database
        self.exp_id = exp_id
        self.max_points = max(1, max_points)
        self._lock = threading.Lock()
        self._start_over(None)
        database.keep_new_rows(self)  # the rows the change feed reads, folded in (fold)

    def _start_over(self, base: int | None) -> None:
        self.base = base
        self.span = CHUNK_IDS  # ids a read covers (MAX_SPAN)
        self.width = 1
        self.mark = 0  # every row of the experiment up to this id is in the buckets
        self.top = 0  # the highest id read from the file (a file rewritten: read again)
        self.keys: list[int] = []
        self.buckets: list[_Bucket] = []

    def unread(self) -> int:
        """About how many of the experiment's rows this reader has yet to read."""
        summary = self.database.summaries.get(self.exp_id)
        if summary is None or summary.first_id is None:
            return 0
        if summary.first_id != self.base:
            return summary.episodes
        return max(0, (summary.last_id or 0) - self.mark)

    def read(
        self, budget: float | None = None, metrics: Collection[str] = EPISODE_METRICS
    ) -> Series:
        """The series of every row read so far, reading what is new first: all of it, or with
        a `budget` (seconds) as much as fits (`complete` says whether that was all). Only the
        bands of `metrics` are filled (building them all is most of a read's time when little
        is new)."""
        deadline = None if budget is None else time.monotonic() + budget
        with self._lock:
            summary = self.database.summaries.get(self.exp_id)
            first, last = (summary.first_id, summary.last_id) if summary else (None, None)
            if first is None or last is None:
                self._start_over(None)
                return Series()
            if first != self.base or last < self.top:  # a new experiment, or a new file
                self._start_over(first)
                self.mark = first - 1
                assert summary is not None
                self.span = _span(CHUNK_IDS, summary.episodes, last - self.mark)
                # A bucket holds at most `width` rows: no smaller width can fit them all.
                assert summary is not None
                while summary.episodes > self.width * self.max_points:
                    self.width *= 2
            # Rows the change feed has read are folded in, not read again: a read of the file is a
            # read lock that a commit may meet (docs/performance.md, The writer beside the app).
            kept = self.database.new_rows()
            while self.mark < last:
                batch = next((b for b in kept if b.after <= self.mark < b.last), None)
                if batch is not None:
                    self.fold(batch)
                    continue
                ahead = min((b.after for b in kept if b.after > self.mark), default=last)
                if not self._read_next(min(last, ahead)):  # the file failed; its state says why
                    last = self.mark  # nothing more to read now: complete as far as it goes
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            series = self._series(metrics)
            series.complete = self.mark >= last
            return series

    def fold(self, batch: RowBatch) -> None:
        """Add the experiment's rows of `batch` above the mark to the buckets, as a read of
        them would have (the mark must be within the batch: `batch.after <= mark`)."""
        assert self.base is not None
        assert batch.after <= self.mark
        found = buckets_of(batch.rows, self.exp_id, self.mark, batch.last, self.base, self.width)
        self._add(found)
        self.mark = max(self.mark, batch.last)

    def _read_next(self, last: int) -> bool:
        """The next CHUNK_IDS ids up to `last` (a far host: the next FAR_READS such chunks, asked
        at once); False when the file cannot be read now."""
        spans: list[tuple[int, int]] = []
        low = self.mark
        while low < last and len(spans) < (FAR_READS if self.database.far else 1):
            spans.append((low, min(last, low + self.span)))
            low = spans[-1][1]
        schema = self.database.schema
        if len(spans) == 1 or schema is None:
            found = self.database.run_locked(self._query(*spans[0]))
            if found is None:
                return False
            self._add(found)
            self._pace(found, *spans[0])
            self.mark = self.top = spans[0][1]
            return True
        statement, width = statements.series_buckets(schema), self.width
        answers = self.database.fetch_each(
            [(statement, self._parameters(low, high)) for low, high in spans]
        )
        if answers is None:
            return False
        for (low, high), found in zip(spans, answers, strict=True):
            self._add(found)
            self._pace(found, low, high)
            self.mark = self.top = high
            if self.width != width:
                break  # buckets merged: the later answers are of narrower ones, read again
        return True

    def _pace(self, found: Sequence[Any], low: int, high: int) -> None:
        """The next reads' span, by the density of the experiment's rows in this one."""
        rows = sum(int(row[3] or 0) for row in found)
        self.span = _span(self.span, rows, high - low)

    def _parameters(self, low: int, high: int) -> dict[str, Any]:
        return {
            "exp_id": self.exp_id,
            "base": self.base,
            "width": self.width,
            "low": low,
            "high": high,
        }

    def _query(self, low: int, high: int) -> Callable[[Fetch, Schema], Sequence[Any]]:
        assert self.base is not None
        parameters = self._parameters(low, high)

        def query(fetch: Fetch, schema: Schema) -> Sequence[Any]:
            return fetch(statements.series_buckets(schema), **parameters)

        return query

    def _add(self, rows: Sequence[Any]) -> None:
        n = len(EPISODE_METRICS)
        for row in rows:
            key = int(row[0])
            bucket = _Bucket(
                first_num=row[1],
                last_num=row[2],
                rows=int(row[3] or 0),
                latest=row[4],
                stamp=parse_timestamp(row[4]),
                sums=[_finite_or_zero(v) for v in row[5 : 5 + n]],
                counts=[int(v or 0) for v in row[5 + n : 5 + 2 * n]],
                lows=[_finite(v) for v in row[5 + 2 * n : 5 + 3 * n]],
                highs=[_finite(v) for v in row[5 + 3 * n : 5 + 4 * n]],
            )
            if self.keys and self.keys[-1] == key:
                self.buckets[-1].merge(bucket)
            else:
                self.keys.append(key)
                self.buckets.append(bucket)
        while len(self.buckets) > self.max_points:
            self._halve()

    def _halve(self) -> None:
        keys: list[int] = []
        buckets: list[_Bucket] = []
        for key, bucket in zip(self.keys, self.buckets, strict=True):
            if keys and keys[-1] == key // 2:
                buckets[-1].merge(bucket)
            else:
                keys.append(key // 2)
                buckets.append(bucket)
        self.keys, self.buckets, self.width = keys, buckets, self.width * 2

    def _series(self, metrics: Collection[str] = EPISODE_METRICS) -> Series:
        series = Series(exact=all(bucket.rows <= 1 for bucket in self.buckets))
        steps = 0.0
        start: datetime | None = None
        bands = [
            (i, series.bands[metric])
            for i, metric in enumerate(EPISODE_METRICS)
            if metric in metrics
        ]
        for index, bucket in enumerate(self.buckets):
            series.episode.append(bucket.middle(index))
            series.rows += bucket.rows
            steps += bucket.sums[LENGTH]
            series.steps.append(steps)
            stamp = bucket.stamp
            if stamp is not None and start is None:
                start = stamp
            series.seconds.append(
                (stamp - start).total_seconds() if stamp is not None and start else math.nan
            )
            for i, band in bands:
                count = bucket.counts[i]
                mean = bucket.sums[i] / count if count else math.nan
                band.mean.append(mean if math.isfinite(mean) else math.nan)
                band.low.append(bucket.lows[i])
                band.high.append(bucket.highs[i])
        return series


class SeriesReaders:
    """Readers by (database, experiment id), the `size` most recently used kept."""

    def __init__(self, max_points: int = MAX_POINTS, size: int = 64) -> None:
        self.max_points = max_points
        self.size = size
        self._readers: OrderedDict[tuple[Path, int], SeriesReader] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, database: MetricsDatabase, exp_id: int) -> SeriesReader:
        key = (database.path, exp_id)
        with self._lock:
            reader = self._readers.pop(key, None)
            if reader is None or reader.database is not database:
                points = min(self.max_points, FAR_POINTS) if database.far else self.max_points
                reader = SeriesReader(database, exp_id, points)
            self._readers[key] = reader
            while len(self._readers) > self.size:
                self._readers.popitem(last=False)
            return reader

    def clear(self) -> None:
        with self._lock:
            self._readers.clear()


# The largest finite double: queries.finite() lets through values within +-this.
_MAX_FLOAT = sys.float_info.max


def _span(span: int, rows: int, ids: int) -> int:
    """The ids a read should cover to meet about CHUNK_IDS rows, where `rows` of the
    experiment were among `ids` ids: at most twice `span`, within CHUNK_IDS..MAX_SPAN."""
    wanted = CHUNK_IDS * ids // rows if rows > 0 else 2 * span
    return max(CHUNK_IDS, min(MAX_SPAN, 2 * span, wanted))


def buckets_of(
    rows: Sequence[Sequence[Any]], exp_id: int, low: int, high: int, base: int, width: int
) -> list[list[Any]]:
    """What statements.series_buckets answers for experiment `exp_id`'s rows with ids in
    (`low`, `high`], from `rows` as stored (queries.new_episodes' columns, in id order), added up
    as SQLite adds them up: totals, counts, minima and maxima of the finite numbers only (text,
    blobs, NULL and +-inf left out), min() and max() of the episode numbers and times as SQLite
    orders any values, and the totals summed in id order as doubles."""
    n = len(EPISODE_METRICS)
    sums, counts, lows, highs = 5, 5 + n, 5 + 2 * n, 5 + 3 * n
    found: list[list[Any]] = []
    current: list[Any] = []
    for row in rows:
        row_id = row[0]
        if not low < row_id <= high or row[1] != exp_id:
            continue
        key = (row_id - base) // width
        if not current or current[0] != key:
            current = [key, None, None, 0, None, *[0.0] * n, *[0] * n, *[None] * (2 * n)]
            found.append(current)
        number = row[2]
        if _takes_min(current[1], number):
            current[1] = number
        if _takes_max(current[2], number):
            current[2] = number
        current[3] += 1
        if _takes_max(current[4], row[10]):
            current[4] = row[10]
        for i in range(n):
            value = row[3 + i]
            if isinstance(value, int | float) and -_MAX_FLOAT <= value <= _MAX_FLOAT:
                current[sums + i] += value
                current[counts + i] += 1
                if current[lows + i] is None or value < current[lows + i]:
                    current[lows + i] = value
                if current[highs + i] is None or value > current[highs + i]:
                    current[highs + i] = value
    return found


def _finite(value: object) -> float:
    number = as_float(value)
    return number if math.isfinite(number) else math.nan


def _finite_or_zero(value: object) -> float:
    number = as_float(value)
    return number if math.isfinite(number) else 0.0


def sampled_series(rows: Sequence[EpisodeRow]) -> Series:
    """A first look at a long run from episodes spread over it (MetricsDatabase.sample), until
    its rows are read: each episode a point; environment steps estimated from each one's length
    times the episodes since the one before. Not `complete`: the charts say it is a preview."""
    series = Series(rows=len(rows), complete=False)
    steps = 0.0
    start = next((row.created_at for row in rows if row.created_at is not None), None)
    previous: int | None = None
    for index, row in enumerate(rows):
        number = row.episode_num
        series.episode.append(float(number) if number is not None else float(index + 1))
        since = number - previous if number is not None and previous is not None else 1
        steps += (row.length or 0) * max(since, 1)
        previous = number if number is not None else previous
        series.steps.append(steps)
        stamp = row.created_at
        seconds = (stamp - start).total_seconds() if stamp is not None and start else math.nan
        series.seconds.append(seconds)
        for metric in EPISODE_METRICS:
            value = getattr(row, metric)
            number_value = math.nan if value is None else float(value)
            point = number_value if math.isfinite(number_value) else math.nan
            band = series.bands[metric]
            band.mean.append(point)
            band.low.append(point)
            band.high.append(point)
    return series


def thin(series: Series, points: int, metrics: Collection[str] = EPISODE_METRICS) -> Series:
    """The series merged down to at most `points` points, keeping each group's min and max
    (of `metrics` only: the others come back empty)."""
    if len(series) <= points or points <= 0:
        return series
    size = -(-len(series) // points)  # ceiling division
    out = Series(rows=series.rows, exact=False, complete=series.complete)

    def groups(values: list[float]) -> list[list[float]]:
        return [values[i : i + size] for i in range(0, len(values), size)]

    out.episode = [g[0] for g in groups(series.episode)]
    out.steps = [g[-1] for g in groups(series.steps)]
    out.seconds = [g[-1] for g in groups(series.seconds)]
    for metric in metrics:
        band = series.bands[metric]
        target = out.bands[metric]
        for means, lows, highs in zip(
            groups(band.mean), groups(band.low), groups(band.high), strict=True
        ):
            finite = [v for v in means if math.isfinite(v)]
            target.mean.append(sum(finite) / len(finite) if finite else math.nan)
            target.low.append(min((v for v in lows if math.isfinite(v)), default=math.nan))
            target.high.append(max((v for v in highs if math.isfinite(v)), default=math.nan))
    return out
