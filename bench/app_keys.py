"""Key response of the app in a real terminal while a writer commits 2,000 episodes/s.

The app runs as its own process on a pseudo-terminal (120x40), exactly as over SSH. Every
~0.6 s a key is written to the terminal and the time until the app's answer appears in what it
writes back is measured: `?` (the help screen's title appears), then `q` (closes it), and tab
switches `2` (the episode tail's follow line) and `1` (the reward chart's title). The writer is the
simulator (velora's write path) asked for 2,000 episodes/s; the experiment screen is open on
the charts, the most expensive view to keep live.
"""

from __future__ import annotations

import time

from bench.common import (
    Metric,
    load_note,
    print_header,
    scratch_dir,
    simulator,
    timed_env,
)
from tests.support.numbers import percentile, read_commit_log
from tests.support.processes import Terminal, python_command

RATE = 2_000.0
SECONDS = 30.0
GOAL_MS = 200.0


# Each key, and text that only the app's answer to it writes.
ROUND = (
    ("?", "velora-tui keys"),
    ("q", "1 Charts"),  # the help screen closes: the tabs under it are painted again
    ("2", "following:"),
    ("1", "reward (blue)"),  # the reward chart's title: the charts are on screen again
)


def measure(seconds: float = SECONDS, rate: float = RATE) -> tuple[dict[str, list[float]], int]:
    """Key response times per key, and how many episodes the writer committed meanwhile."""
    times: dict[str, list[float]] = {key: [] for key, _ in ROUND}
    with scratch_dir("app-keys", tmpfs=True) as folder:
        db = folder / "metrics.db"
        log = folder / "commits.log"
        episodes = int(rate * (seconds + 10))
        terminal = Terminal(python_command(db), env=timed_env())
        try:
            if not terminal.wait_for("Waiting for", 0, 20):
                raise RuntimeError("the app did not start")
            with simulator(db, rate=rate, episodes=episodes, commit_log=log):
                if not terminal.wait_for("NeuroFlow", 0, 20):
                    raise RuntimeError("the experiment never appeared")
                time.sleep(1.0)
                terminal.key("\r", "1 Charts")
                time.sleep(1.0)
                stop = time.monotonic() + seconds
                while time.monotonic() < stop:
                    for key, answer in ROUND:
                        times[key].append(terminal.key(key, answer))
                        time.sleep(0.6)
                committed = len(read_commit_log(log))
        finally:
            terminal.close()
    return times, committed


def main() -> list[Metric]:
    print_header(
        f"app: key response in a terminal, writer asked for {RATE:.0f} episodes/s"
        f" ({SECONDS:.0f} s; {load_note()})"
    )
    times, committed = measure()
    every = [t for values in times.values() for t in values]
    for key, answer in ROUND:
        values = times[key]
        print(
            f"  {key!r} -> {answer!r}: n={len(values)} p50 {percentile(values, 50) * 1e3:.0f} ms"
            f"  p95 {percentile(values, 95) * 1e3:.0f} ms  max {max(values) * 1e3:.0f} ms"
        )
    p50, p95 = percentile(every, 50) * 1e3, percentile(every, 95) * 1e3
    print(
        f"  all keys: p50 {p50:.0f} ms  p95 {p95:.0f} ms  max {max(every) * 1e3:.0f} ms;"
        f" writer committed {committed} episodes ({committed / (SECONDS + 2):.0f}/s while measured)"
    )
    return [
        Metric(
            f"app key response p50/p95 under {RATE:.0f} episodes/s",
            f"p95 <= {GOAL_MS:.0f} ms",
            f"{p50:.0f} / {p95:.0f} ms",
            p95 <= GOAL_MS,
        )
    ]


if __name__ == "__main__":
    main()
