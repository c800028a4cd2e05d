"""Numbers the tests and benchmarks compute: percentiles, a process's CPU time, a writer's
commit log."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (0-100), linearly interpolated (numpy's default). NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux /proc), NaN if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_commit_log(path: Path) -> dict[int, float]:
    """episode id -> unix time of its commit, from a simulator commit log."""
    commits: dict[int, float] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 2:
                commits[int(parts[0])] = float(parts[1])
    return commits
