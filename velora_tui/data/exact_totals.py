"""The exact aggregates of the rows a first load found (count, best reward, rows with inf/NaN),
added up after the first screen in short reads, experiment by experiment.

A first load shows each experiment from its first and last rows alone (two index seeks), so it
costs the same at a thousand episodes as at millions; what needs every row comes from here. No
read covers more than about `rows_per_read` rows, so no read lock lasts long, whatever the
layout of the file: experiments written one after another (ids contiguous) are added up several
at a time; one whose ids are spread among others' (runs written side by side) is read by id
range, each range sized from the density of its rows seen so far.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from velora_tui.data import statements
from velora_tui.data.cleaning import as_float
from velora_tui.data.connection import Fetch, FetchAll, Prepared
from velora_tui.data.schema import Schema

# Rows a read adds up at most: a read this short holds SQLite's read lock about as long as the
# writer's own commit takes, so a commit that meets it waits in its busy handler's first, shortest
# sleeps (docs/performance.md).
ROWS_PER_READ = 5_000
# Experiments added up by one statement at most (each a row of its result).
GROUP_LIMIT = 500
# A range read may grow to this many times the last one: rows may be denser further on.
GROWTH = 8

# A read planned: its statement, its parameters, and what takes its rows in (the experiments
# it finished).
Read = tuple[Prepared, dict[str, Any], Callable[[Sequence[Any]], list["Pending"]]]


@dataclass(slots=True)
class Aggregate:
    """What a scan of an experiment's rows adds up: rows, best finite reward, and rows with
    inf/NaN/text in a reward or loss. Two aggregates of disjoint rows merge exactly."""

    count: int = 0
    best: float | None = None
    nonfinite: int = 0

    def merge(self, count: Any, best: Any, nonfinite: Any) -> None:
        self.count += int(count or 0)
        value = None if best is None else as_float(best)
        if value is not None and (self.best is None or value > self.best):
            self.best = value
        self.nonfinite += int(nonfinite or 0)


@dataclass(slots=True)
class Pending:
    """An experiment whose first-load rows (ids `first` to `last`) are not added up yet."""

    key: Any  # the experiment id as stored, as the index orders it
    exp_id: int
    first: int
    last: int
    estimate: int = 0  # the episodes its summary counts until this is added up
    # Rows per id seen so far in its range reads; 1 until one is done (the safe assumption).
    density: float = 1.0
    next_id: int = 0
    total: Aggregate = field(default_factory=Aggregate)

    @property
    def span(self) -> int:
        return self.last - self.first + 1


@dataclass(slots=True)
class Scan:
    upto: int  # the first load's highest id: rows above it are read live
    queue: deque[Pending]
    rows_per_read: int

    @property
    def done(self) -> bool:
        return not self.queue

    def pending(self) -> set[int]:
        return {item.exp_id for item in self.queue}

    def step(self, fetch: Fetch, schema: Schema) -> list[Pending]:
        """One short read; returns the experiments it finished (their `total` complete)."""
        return self.steps(lambda reads: [fetch(s, **p) for s, p in reads], schema, 1)

    def steps(self, fetch_all: FetchAll, schema: Schema, width: int) -> list[Pending]:
        """Up to `width` short reads, each of other experiments, asked at once: a far host
        (remote/link.py) answers them in one round trip, each read as short there as here.
        Returns the experiments they finished (their `total` complete)."""
        reads = self._plan(schema, width)
        answers = fetch_all([(statement, params) for statement, params, _ in reads])
        finished: list[Pending] = []
        for (_, _, take_in), rows in zip(reads, answers, strict=True):
            finished += take_in(rows)
        for item in finished:
            self.queue.remove(item)
        return finished

    def _plan(self, schema: Schema, width: int) -> list[Read]:
        """The next reads, in the queue's order: a big experiment's next id range, or several
        small experiments written one after another, added up by one statement."""
        reads: list[Read] = []
        items = list(self.queue)
        index = 0
        while index < len(items) and len(reads) < width:
            head = items[index]
            if head.span > self.rows_per_read:
                reads.append(self._range(head, schema))
                index += 1
                continue
            group = [head]
            rows = head.span
            for item in items[index + 1 : index + GROUP_LIMIT]:
                if item.span > self.rows_per_read or rows + item.span > self.rows_per_read:
                    break
                group.append(item)
                rows += item.span
            reads.append(self._group(group, schema))
            index += len(group)
        return reads

    def _group(self, group: list[Pending], schema: Schema) -> Read:
        def take_in(rows: Sequence[Any]) -> list[Pending]:
            found = {key: (count, best, nonfinite) for key, count, best, nonfinite in rows}
            for item in group:
                if item.key in found:
                    item.total.merge(*found[item.key])
            return group

        params = {"low": group[0].key, "high": group[-1].key, "upto": self.upto}
        return statements.aggregate_experiments(schema), params, take_in

    def _range(self, head: Pending, schema: Schema) -> Read:
        low = max(head.first, head.next_id)
        ids = max(1, int(self.rows_per_read / max(head.density, 1e-9)))
        high = min(head.last, low + ids - 1)

        def take_in(rows: Sequence[Any]) -> list[Pending]:
            (count, best, nonfinite), *_ = rows
            head.total.merge(count, best, nonfinite)
            read = high - low + 1
            head.density = max(int(count or 0) / read, self.rows_per_read / (GROWTH * read))
            head.next_id = high + 1
            return [head] if high >= head.last else []

        params = {"exp_id": head.key, "low": low, "high": high}
        return statements.aggregate_range(schema), params, take_in

    def take(self, exp_id: int) -> Pending | None:
        """Remove one experiment from the queue (to add it up at once, on its own)."""
        for item in self.queue:
            if item.exp_id == exp_id:
                self.queue.remove(item)
                return item
        return None


def add_up(item: Pending, fetch: Fetch, schema: Schema, rows_per_read: int) -> Pending:
    """All of one experiment's pending rows now, still in short reads."""
    scan = Scan(item.last, deque([item]), rows_per_read)
    while not scan.done:
        scan.step(fetch, schema)
    return item
