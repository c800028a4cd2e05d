"""`velora-tui ls --json` and `ls` on a 1M-row metrics.db against the sqlite3 CLI doing the same
summary.

Prints wall times (best of N and median, runs interleaved after a warm-up), their ratios (goal:
ls --json <= 2.5x the raw query; `ls --json` also evaluates each run's health from its newest
LS_HISTORY rows, which plain `ls` does not), and where ls spends its time: interpreter start,
imports, the data layer alone (Monitor.refresh and scan_all in-process), the health's first
look (HealthTracker.read_past in-process), and each SQL statement they run.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    QUIET,
    Metric,
    OtherLoad,
    best_and_median,
    big_database,
    load_note,
    median,
    ms,
    print_header,
    ratio,
    time_command,
    timed_env,
)
from tests.support.processes import python_command
from velora_tui.data import connection
from velora_tui.data.monitor import Monitor, sort_summaries
from velora_tui.report.alerts import LS_HISTORY, HealthTracker

GOAL_RATIO = 2.5
FINITE = "BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"
# What `ls` shows, in one raw statement: per-experiment count, first/last id, best finite reward,
# count of rows with a non-finite metric, the last row's values and the first row's time.
SUMMARY_SQL = f"""
WITH agg AS (
  SELECT experiment_id, count(*) AS episodes, min(id) AS first_id, max(id) AS last_id,
         max(CASE WHEN reward {FINITE} THEN reward END) AS best_reward,
         sum(CASE WHEN reward {FINITE} AND actor_loss {FINITE} AND critic_loss {FINITE}
                   AND (entropy_loss IS NULL OR entropy_loss {FINITE}) THEN 0 ELSE 1 END)
           AS nonfinite
  FROM episode GROUP BY experiment_id)
SELECT e.id, e.agent, e.env, e.created_at,
       json_extract(e.config, '$.train_params.n_episodes') AS n_episodes,
       agg.episodes, l.episode_num AS last_episode_num, l.reward AS last_reward,
       agg.best_reward, l.reward_moving_avg, l.created_at AS last_activity,
       f.created_at AS first_activity, agg.nonfinite
FROM experiment e
LEFT JOIN agg ON agg.experiment_id = e.id
LEFT JOIN episode l ON l.id = agg.last_id
LEFT JOIN episode f ON f.id = agg.first_id
ORDER BY e.id
"""
# Each imported alone (a module's cost includes what it imports: sqlmodel pulls in sqlalchemy
# and pydantic; sqlalchemy pulls in asyncio).
IMPORT_MODULES = ("click", "pydantic", "sqlalchemy", "sqlmodel", "velora_tui.data.monitor")


def ls_command(db: Path) -> list[str]:
    return python_command("ls", "--json", str(db))


def ls_text_command(db: Path) -> list[str]:
    return python_command("ls", str(db))


def sqlite_command(db: Path) -> list[str]:
    return ["sqlite3", "-readonly", "-json", str(db), SUMMARY_SQL]


# The same summary from Python's own sqlite3 module, printed as JSON: what a user's script that
# needs no velora-tui would take (interpreter start included, as in ls).
PY_SUMMARY = """
import json, sqlite3, sys
from pathlib import Path
conn = sqlite3.connect(Path(sys.argv[1]).resolve().as_uri() + "?mode=ro", uri=True)
cursor = conn.execute(sys.argv[2])
names = [column[0] for column in cursor.description]
print(json.dumps([dict(zip(names, row)) for row in cursor.fetchall()], indent=2))
"""


def python_sqlite_command(db: Path) -> list[str]:
    return [sys.executable, "-c", PY_SUMMARY, str(db), SUMMARY_SQL]


def check_same_answer(db: Path) -> str:
    """ls and the raw query must agree (episodes, best reward) for the comparison to be fair."""
    ls_rows = json_output(ls_command(db))
    raw_rows = json_output(sqlite_command(db))
    ls_view = {r["id"]: (r["episodes"], r["best_reward"], r["last_reward"]) for r in ls_rows}
    raw_view = {r["id"]: (r["episodes"], r["best_reward"], r["last_reward"]) for r in raw_rows}
    if ls_view == raw_view:
        return f"same answer ({len(ls_view)} experiments)"
    return "DIFFERENT answers: ls and the raw query disagree"


def json_output(command: list[str]) -> Any:
    result = subprocess.run(command, capture_output=True, check=True, env=timed_env())
    return json.loads(result.stdout)


def interleaved(
    commands: dict[str, list[str]], runs: int, max_runs: int
) -> tuple[dict[str, list[float]], list[float]]:
    """Each command once to warm the page cache, then rounds alternating them: `runs` rounds,
    more (up to `max_runs`) while fewer than `runs` were quiet. Returns the samples of every
    round and each round's load from other processes (cores)."""
    for command in commands.values():
        time_command(command, 1, warmup=0)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    loads: list[float] = []
    while len(loads) < runs or (
        sum(load < QUIET for load in loads) < runs and len(loads) < max_runs
    ):
        meter = OtherLoad()
        for name, command in commands.items():
            samples[name].extend(time_command(command, 1, warmup=0))
        loads.append(meter.stop())
    return samples, loads


def round_ratio(samples: list[float], baseline: list[float]) -> float:
    """The median of the per-round ratios (runs alternate: each pair saw the same load)."""
    return median([ratio(a, b) for a, b in zip(samples, baseline, strict=True)])


def spread(samples: list[float], baseline: list[float]) -> str:
    """The lowest and highest of the per-round ratios."""
    ratios = [ratio(a, b) for a, b in zip(samples, baseline, strict=True)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}x"


def quiet_only(samples: list[float], loads: list[float]) -> list[float]:
    """The samples of quiet rounds when there are at least 3 of them, else all."""
    quiet = [value for value, load in zip(samples, loads, strict=True) if load < QUIET]
    return quiet if len(quiet) >= 3 else samples


def import_breakdown(runs: int = 3) -> dict[str, float]:
    """Best wall time of `python -c "import X"` minus interpreter start, for each module alone."""
    start = min(time_command([sys.executable, "-c", "pass"], runs))
    return {
        name: min(time_command([sys.executable, "-c", f"import {name}"], runs)) - start
        for name in IMPORT_MODULES
    }


def time_refresh(db: Path, runs: int) -> tuple[list[float], list[float]]:
    """In-process, each run: the data layer alone (a new Monitor, its first refresh and the
    exact totals' scan: what `ls` waits for before its output), then the health's first look
    (`ls --json`'s HealthTracker.read_past of every run's newest LS_HISTORY rows)."""
    loads, healths = [], []
    for _ in range(runs + 1):
        started = time.perf_counter()
        monitor = Monitor([db])
        monitor.refresh()
        monitor.scan_all()
        loaded = time.perf_counter()
        summaries = sort_summaries(monitor.summaries(), datetime.now())
        HealthTracker().read_past(monitor, summaries, LS_HISTORY)
        loads.append(loaded - started)
        healths.append(time.perf_counter() - loaded)
        monitor.close()
    return loads[1:], healths[1:]


# The data layer's reads are staged (connection.FetchingCursor): each query runs as
# `INSERT INTO temp.<stage> <query>`.
STAGED = re.compile(r"^\s*INSERT INTO temp\.\w+ ", re.IGNORECASE)


def statement_profile(db: Path, repeats: int = 3) -> list[tuple[str, int, float]]:
    """Capture the queries `ls --json` runs in-process (a refresh, the scan, the health's first
    look; SQLite's trace gives each with its values in), replay each on a raw connection
    (execute + fetchall).

    Returns (statement kind, how many, best total seconds) sorted by time.
    """
    captured: list[str] = []

    def capture(statement: str) -> None:
        if STAGED.match(statement):
            # As SQLite expands it: an infinite value is written `Inf`, which it cannot read.
            captured.append(re.sub(r"\bInf\b", "9e999", STAGED.sub("", statement, count=1)))

    made = connection.ReadOnlyConnection.__init__

    def traced(self: connection.ReadOnlyConnection, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.set_trace_callback(capture)

    connection.ReadOnlyConnection.__init__ = traced  # type: ignore[method-assign]
    try:
        monitor = Monitor([db])
        monitor.refresh()
        monitor.scan_all()
        summaries = sort_summaries(monitor.summaries(), datetime.now())
        HealthTracker().read_past(monitor, summaries, LS_HISTORY)
        monitor.close()
    finally:
        connection.ReadOnlyConnection.__init__ = made  # type: ignore[method-assign]
    raw = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0] * repeats)
        counts: dict[str, int] = defaultdict(int)
        for statement in captured:
            kind = describe_statement(statement)
            counts[kind] += 1
            for attempt in range(repeats):
                started = time.perf_counter()
                raw.execute(statement).fetchall()
                totals[kind][attempt] += time.perf_counter() - started
    finally:
        raw.close()
    rows = [(kind, counts[kind], min(times)) for kind, times in totals.items()]
    return sorted(rows, key=lambda r: -r[2])


def describe_statement(statement: str) -> str:
    """A short name for a statement of the data layer (which evolves: keep this loose)."""
    flat = " ".join(statement.split())
    where = flat.partition(" WHERE ")[2]
    scope = ""
    if "experiment_id BETWEEN" in where:
        scope += ", exp-id range"
    elif "experiment_id =" in where:
        scope += ", one experiment"
    if re.search(r"episode\.id (\+ 0 )?(<=|>=|<|>|BETWEEN) ", where):
        scope += ", id range"
    if "GROUP BY" in flat:
        scope += ", grouped"
    if flat.startswith("WITH RECURSIVE experiment_ids"):
        return "experiment edges (first/last rows, recent times)"
    if "episode.reward_moving_avg >=" in where:
        return "first row reaching the target" + scope
    if "ORDER BY episode.id DESC" in flat and "episode.reward " not in flat:
        return "newest rows, the health's columns" + scope
    if "max(CASE WHEN" in flat:
        return "best reward + non-finite count" + scope
    if "count(*)" in flat:
        return "count/min/max(id)" + scope
    if flat.startswith("SELECT max(episode.id)"):
        return "max(episode.id)"
    if "FROM experiment" in flat:
        return "experiment rows"
    if "episode.id IN" in flat:
        return "first/last rows by id"
    return flat[:56]


def variants(db: Path, repeats: int = 3) -> list[tuple[str, float]]:
    """The summary's parts written several ways, to show what each one costs."""
    nonfinite = (
        f"sum(CASE WHEN NOT (reward {FINITE}) OR NOT (actor_loss {FINITE})"
        f" OR NOT (critic_loss {FINITE})"
        f" OR entropy_loss IS NOT NULL AND NOT (entropy_loss {FINITE}) THEN 1 ELSE 0 END)"
    )
    best = f"max(CASE WHEN reward {FINITE} THEN reward END)"
    counts = "SELECT experiment_id, count(*), min(id), max(id)"
    by_id = "WHERE id > ? AND id <= ? GROUP BY experiment_id"
    one_exp = "FROM episode WHERE experiment_id = ?"
    raw = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        (max_id,) = raw.execute("SELECT max(id) FROM episode").fetchone()
        rows = raw.execute("SELECT DISTINCT experiment_id FROM episode").fetchall()
        experiments: list[tuple[int, ...]] = [(int(e),) for (e,) in rows]
        id_chunks: list[tuple[int, ...]] = [
            (low, low + 100_000) for low in range(0, max_id, 100_000)
        ]
        cases: list[tuple[str, str, list[tuple[int, ...]]]] = [
            ("count/min/max(id) GROUP BY experiment_id (covering index)",
             f"{counts} FROM episode GROUP BY experiment_id", [()]),
            ("best reward, per experiment (one statement each)",
             f"SELECT {best} {one_exp}", experiments),
            ("best reward + non-finite count, per experiment",
             f"SELECT {best}, {nonfinite} {one_exp}", experiments),
            ("non-finite count alone, per experiment",
             f"SELECT {nonfinite} {one_exp}", experiments),
            ("all in one GROUP BY statement (index order)",
             f"{counts}, {best}, {nonfinite} FROM episode GROUP BY experiment_id", [()]),
            ("all, in 100k-id chunks (GROUP BY sorts: temp B-tree)",
             f"{counts}, {best}, {nonfinite} FROM episode {by_id}", id_chunks),
            ("full table scan for reference: sum(length)",
             "SELECT sum(length) FROM episode", [()]),
        ]  # fmt: skip
        results = []
        for name, sql, bounds in cases:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                for values in bounds:
                    raw.execute(sql, values).fetchall()
                times.append(time.perf_counter() - started)
            results.append((name, min(times)))
        return results
    finally:
        raw.close()


def main(runs: int = 5) -> list[Metric]:
    db = big_database()
    print_header(f"ls speed: {db.name} ({load_note()})")
    print(check_same_answer(db))
    all_samples, loads = interleaved(
        {
            "velora-tui ls --json": ls_command(db),
            "velora-tui ls": ls_text_command(db),
            "sqlite3 CLI summary query": sqlite_command(db),
            "python sqlite3 summary query": python_sqlite_command(db),
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import velora_tui.cli'": [sys.executable, "-c", "import velora_tui.cli"],
        },
        runs,
        max_runs=2 * runs,
    )
    quiet = sum(load < QUIET for load in loads)
    used = "quiet rounds" if quiet >= 3 else "all rounds (machine busy: numbers are noisy)"
    samples = {name: quiet_only(values, loads) for name, values in all_samples.items()}
    print(
        f"\nwall time, {len(loads)} interleaved rounds after a warm-up, {quiet} of them quiet"
        f" (other processes < {QUIET} cores; each round's: "
        + " ".join(f"{load:.2f}" for load in loads)
        + f"); from {used}:"
    )
    for name, values in samples.items():
        best, mid = best_and_median(values)
        print(f"  {name:<36} best {ms(best):>10}   median {ms(mid):>10}")
    ls_best, ls_median = best_and_median(samples["velora-tui ls --json"])
    raw_best, raw_median = best_and_median(samples["sqlite3 CLI summary query"])
    best_ratio = ratio(ls_best, raw_best)
    # Runs alternate, so each round's pair saw the same background load.
    median_ratio = round_ratio(
        samples["velora-tui ls --json"], samples["sqlite3 CLI summary query"]
    )
    print(
        f"  ratio ls --json / sqlite3: best {best_ratio:.2f}x (best / best),"
        f" median {median_ratio:.2f}x (median of per-round ratios;"
        f" spread {spread(samples['velora-tui ls --json'], samples['sqlite3 CLI summary query'])})"
    )
    text_best, _ = best_and_median(samples["velora-tui ls"])
    text_ratio = round_ratio(samples["velora-tui ls"], samples["sqlite3 CLI summary query"])
    print(
        f"  ratio ls (text) / sqlite3: best {ratio(text_best, raw_best):.2f}x (best / best),"
        f" median {text_ratio:.2f}x (median of per-round ratios;"
        f" spread {spread(samples['velora-tui ls'], samples['sqlite3 CLI summary query'])})"
    )
    py_best, _ = best_and_median(samples["python sqlite3 summary query"])
    py_ratio = round_ratio(samples["velora-tui ls --json"], samples["python sqlite3 summary query"])
    print(
        f"  ratio ls --json / python sqlite3: best {ratio(ls_best, py_best):.2f}x (best / best),"
        f" median {py_ratio:.2f}x (median of per-round ratios)"
    )

    loads, healths = time_refresh(db, runs)
    refresh_best, refresh_median = best_and_median(loads)
    health_best, health_median = best_and_median(healths)
    start_best = min(samples["python -c pass"])
    import_best = min(samples["python -c 'import velora_tui.cli'"]) - start_best
    print("\nwhere ls's time goes (best):")
    print(f"  interpreter start                    {ms(start_best):>10}")
    print(f"  import velora_tui.cli                {ms(import_best):>10}")
    print(
        f"  Monitor refresh + scan_all           {ms(refresh_best):>10}"
        f"   (median {ms(refresh_median)})"
    )
    print(
        f"  health, read_past ({LS_HISTORY} rows a run) {ms(health_best):>10}"
        f"   (median {ms(health_median)}; ls --json only)"
    )
    parts = start_best + import_best + refresh_best + health_best
    print(f"  sum of the four                      {ms(parts):>10}   (ls --json: {ms(ls_best)})")
    print("  import cost of each alone (python -c 'import X' minus interpreter start, best of 3):")
    for name, seconds in import_breakdown().items():
        print(f"    {name:<34} {ms(seconds):>10}")

    print("\nSQL of ls --json in-process, replayed on a raw sqlite3 connection (execute + fetch):")
    for kind, count, seconds in statement_profile(db):
        print(f"  {count:>3} x {kind:<56} {ms(seconds):>10}")
    print("\nthe summary's parts written other ways (raw sqlite3, best of 3):")
    for name, seconds in variants(db):
        print(f"  {name:<58} {ms(seconds):>10}")

    return [
        Metric(
            "ls --json, 1M rows (best / median)",
            "-",
            f"{ms(ls_best)} / {ms(ls_median)}",
        ),
        Metric(
            "sqlite3 CLI summary query (best / median)",
            "-",
            f"{ms(raw_best)} / {ms(raw_median)}",
        ),
        Metric(
            "ls --json / sqlite3 (best / median)",
            f"<= {GOAL_RATIO}x",
            f"{best_ratio:.2f}x / {median_ratio:.2f}x",
            median_ratio <= GOAL_RATIO,
        ),
        Metric("ls (text) / sqlite3 (median)", "-", f"{text_ratio:.2f}x"),
        Metric(
            "ls --json / python sqlite3 summary (best / median)",
            f"<= {GOAL_RATIO}x",
            f"{ratio(ls_best, py_best):.2f}x / {py_ratio:.2f}x (python: {ms(py_best)} best)",
            py_ratio <= GOAL_RATIO,
        ),
        Metric("ls: quiet rounds used", "-", f"{quiet}/{len(loads)}"),
        Metric("Monitor refresh + scan_all in-process, 1M rows", "-", ms(refresh_best)),
        Metric(f"health first look in-process ({LS_HISTORY} rows x runs)", "-", ms(health_best)),
        Metric("import velora_tui.cli", "-", ms(import_best)),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
