"""Which CPUs a watching process runs on: not those that complete the machine's disk I/O.

A training process that commits waits for the disk at every commit (fsync), and is woken on
the CPU whose interrupt completed its write. A monitor thread running there holds it back: the
writer waits in the run queue behind the monitor's threads while another core sits idle, and
its slowest commits get slower (docs/performance.md has the measurements).

Linux counts, per CPU, the block I/O completions it handled (the BLOCK line of /proc/softirqs).
Where a few CPUs handle nearly all of them, the monitor's threads are kept to the others. Where
every CPU handles its share (a disk queue per CPU, as NVMe drives have), or nothing is known,
nothing changes. Only within the CPUs the process may already use (`taskset` is respected).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SOFTIRQS = Path("/proc/softirqs")
TASKS = Path("/proc/self/task")
# Fewer completions than this since boot say nothing about where the next ones will be.
MIN_COMPLETIONS = 1_000
# A CPU that handled less than this share of the busiest CPU's completions counts as quiet.
QUIET_SHARE = 0.05


def block_completions(softirqs: str) -> dict[int, int]:
    """Block I/O completions per CPU id, from the text of /proc/softirqs ({} if absent)."""
    lines = softirqs.splitlines()
    if not lines:
        return {}
    cpus = [int(name[3:]) for name in lines[0].split() if name.startswith("CPU")]
    for line in lines[1:]:
        name, _, counts = line.partition(":")
        if name.strip() == "BLOCK":
            values = counts.split()
            if len(values) != len(cpus) or not all(v.isdigit() for v in values):
                return {}
            return dict(zip(cpus, map(int, values), strict=True))
    return {}


def quiet_cpus(completions: dict[int, int], allowed: set[int]) -> set[int] | None:
    """The CPUs of `allowed` that complete (almost) no block I/O, when others among them
    complete nearly all of it; None when there is no such split."""
    counts = {cpu: completions.get(cpu, 0) for cpu in allowed}
    if sum(counts.values()) < MIN_COMPLETIONS:
        return None
    busiest = max(counts.values())
    quiet = {cpu for cpu, count in counts.items() if count < busiest * QUIET_SHARE}
    return quiet if quiet and quiet != allowed else None


def stay_off_io_cpus() -> set[int] | None:
    """Keep every thread of this process (and those it starts later) off the CPUs that
    complete disk I/O, where that leaves some; the CPUs kept to, or None if unchanged."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        quiet = quiet_cpus(block_completions(SOFTIRQS.read_text()), os.sched_getaffinity(0))
    except (OSError, ValueError):
        return None
    if quiet is None:
        return None
    try:
        threads = [int(entry.name) for entry in TASKS.iterdir()]
    except OSError:
        threads = [0]
    for thread in threads:
        with contextlib.suppress(OSError):  # a thread that has ended, or a set refused
            os.sched_setaffinity(thread, quiet)
    return quiet
