"""Which CPUs a watching process keeps to (velora_tui.data.placement): off those that complete the
machine's disk I/O, where a few CPUs complete nearly all of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT
from tests.support.processes import python_command
from velora_tui.data import placement
from velora_tui.data.placement import block_completions, quiet_cpus

needs_affinity = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux CPU affinity and at least 2 CPUs",
)

SOFTIRQS_ONE_QUEUE = """\
                    CPU0       CPU1
          HI:          0          0
       TIMER:       1810       1029
      NET_RX:        130        182
       BLOCK:          0       5310
     TASKLET:          1          1
"""


def softirqs(counts: dict[int, int]) -> str:
    cpus = sorted(counts)
    return (
        " " * 10 + "".join(f"{'CPU' + str(c):>11}" for c in cpus) + "\n"
        "       TIMER:" + "".join(f"{100:>11}" for _ in cpus) + "\n"
        "       BLOCK:" + "".join(f"{counts[c]:>11}" for c in cpus) + "\n"
    )


def test_block_completions_per_cpu() -> None:
    assert block_completions(SOFTIRQS_ONE_QUEUE) == {0: 0, 1: 5310}
    assert block_completions(softirqs({0: 7, 2: 9, 5: 11})) == {0: 7, 2: 9, 5: 11}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "                    CPU0       CPU1\n       TIMER:          1          2\n",  # no BLOCK
        "                    CPU0       CPU1\n       BLOCK:          1\n",  # a column missing
        "                    CPU0       CPU1\n       BLOCK:          1          x\n",
    ],
)
def test_block_completions_unknown(text: str) -> None:
    assert block_completions(text) == {}


def test_quiet_cpus_when_one_cpu_completes_the_io() -> None:
    assert quiet_cpus({0: 0, 1: 5310}, {0, 1}) == {0}
    assert quiet_cpus({0: 40_000, 1: 100, 2: 0, 3: 39_000}, {0, 1, 2, 3}) == {1, 2}


def test_quiet_cpus_only_among_the_allowed_ones() -> None:
    # taskset -c 1,2: CPU 0 completes the I/O, but the process may not run there anyway.
    assert quiet_cpus({0: 50_000, 1: 0, 2: 0}, {1, 2}) is None
    assert quiet_cpus({0: 0, 1: 5310, 2: 0}, {1, 2}) == {2}
    assert quiet_cpus({0: 0, 1: 5310}, {1}) is None  # nowhere else to go


@pytest.mark.parametrize(
    "completions",
    [
        {0: 30_000, 1: 29_000},  # a queue per CPU: every CPU does its share
        {0: 10, 1: 500},  # too few to tell
        {},  # nothing known
    ],
)
def test_no_split_changes_nothing(completions: dict[int, int]) -> None:
    assert quiet_cpus(completions, {0, 1}) is None


AFFINITIES = textwrap.dedent(
    """
    import json, os, sys, threading
    from pathlib import Path
    from velora_tui.data import placement

    placement.SOFTIRQS = Path(sys.argv[1])
    stop = threading.Event()
    before = threading.Thread(target=stop.wait, name="before")
    before.start()
    kept = placement.stay_off_io_cpus()
    after = threading.Thread(target=stop.wait, name="after")
    after.start()
    threads = {t.name: sorted(os.sched_getaffinity(t.native_id)) for t in (before, after)}
    threads["main"] = sorted(os.sched_getaffinity(0))
    stop.set()
    print(json.dumps({"kept": sorted(kept) if kept else None, "threads": threads}))
    """
)


def affinities(tmp_path: Path, text: str) -> dict[str, object]:
    """stay_off_io_cpus in a process of its own (it changes its caller's affinity), with
    /proc/softirqs saying `text`: what it kept to and each thread's CPUs afterwards."""
    fake = tmp_path / "softirqs"
    fake.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-c", AFFINITIES, str(fake)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=PROJECT_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@needs_affinity
def test_every_thread_leaves_the_io_cpu(tmp_path: Path) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    io_cpu, others = allowed[0], allowed[1:]
    result = affinities(tmp_path, softirqs({c: 9_000 if c == io_cpu else 0 for c in allowed}))
    assert result["kept"] == others
    # Threads started before and after, and the main thread: all of them.
    assert result["threads"] == {"before": others, "after": others, "main": others}


@needs_affinity
def test_io_spread_over_every_cpu_leaves_affinity_alone(tmp_path: Path) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    result = affinities(tmp_path, softirqs(dict.fromkeys(allowed, 9_000)))
    assert result["kept"] is None
    assert result["threads"] == {"before": allowed, "after": allowed, "main": allowed}


def test_unreadable_softirqs_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "SOFTIRQS", Path("/nonexistent/softirqs"))
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    assert placement.stay_off_io_cpus() is None
    if before is not None:
        assert os.sched_getaffinity(0) == before


def thread_cpus(pid: int) -> set[frozenset[int]]:
    """The CPU sets of a process's threads."""
    return {
        frozenset(os.sched_getaffinity(int(task.name)))
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


@needs_affinity
def test_tail_follow_keeps_to_the_quiet_cpus_of_this_machine(sample_db: Path) -> None:
    """The real command on this machine's real /proc/softirqs: `tail -f` with its reading
    threads running keeps off the CPUs that complete the disk I/O, if there are such."""
    allowed = os.sched_getaffinity(0)
    expected = quiet_cpus(block_completions(Path("/proc/softirqs").read_text()), allowed)
    proc = subprocess.Popen(
        python_command("tail", "-f", "-n", "0", str(sample_db)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while len(list(Path(f"/proc/{proc.pid}/task").iterdir())) < 2:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "tail -f started no reading thread"
            time.sleep(0.05)
        time.sleep(0.3)
        assert thread_cpus(proc.pid) == {frozenset(expected or allowed)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
