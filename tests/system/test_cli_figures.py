"""Figures the command line prints, checked against sqlite3 and hand arithmetic on files built
for each case (issue 24): `tail -n N` with several `-e`, `export --group` curves (duplicate
episode numbers, downsampled runs), `show --json` with NaN in a config, and `export` writing
what is stored."""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli, strict_json
from tests.support.databases import build_velora_db, execute, velora_ddl
from tests.support.folders import assert_unchanged
from tests.support.reading import query
from velora_tui.data.records import EPISODE_FIELDS

# -- files built for a case --------------------------------------------------------------------


def new_db(path: Path, experiments: Sequence[tuple[str, str, str]]) -> Path:
    """Velora's tables and one experiment per (agent, env, config text), no episode yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(velora_ddl("0.2.0"))
        for agent, env, config in experiments:
            conn.execute(
                "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
                (agent, env, config, "2024-05-01 10:00:00.000000"),
            )
    finally:
        conn.close()
    return path


def insert(path: Path, rows: Sequence[tuple[int, Any, Any, Any]]) -> None:
    """Episodes (experiment_id, episode_num, reward, created_at), in this (commit) order."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
            " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
            " VALUES (?, ?, ?, 10, 0.0, 0.0, -0.5, 0.5, -0.01, ?)",
            rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def seed_config(seed: int) -> str:
    return json.dumps({"seed": seed, "train_params": {"lr": 0.001}})


# -- tail -n N -e A -e B: the last N by commit order ---------------------------------------------


def test_tail_of_several_experiments_is_in_commit_order(tmp_path: Path) -> None:
    """After a clock step back (DST, NTP) and with an unparseable time, `tail -n 3 -e 1 -e 2`
    prints the last three rows committed, oldest first: what sqlite3 gives by id, and what
    one `-e` (or none) prints."""
    path = build_velora_db(tmp_path / "metrics.db", [4, 4])
    insert(
        path,
        [
            (1, 5, 5.0, "2024-05-01 10:00:05.000000"),
            (2, 5, 5.0, "2024-05-01 10:00:06.000000"),
            (1, 6, 6.0, "2024-05-01 10:00:07.000000"),
            (2, 6, 6.0, "2024-05-01 09:00:08.000000"),  # the clock stepped back an hour
            (1, 7, 7.0, "2024-05-01 09:00:09.000000"),
            (2, 7, 7.0, "not a time"),
        ],
    )
    expected = [
        row[0]
        for row in reversed(
            query(path, "SELECT id FROM episode WHERE experiment_id IN (1, 2) ORDER BY id DESC")
        )
    ]
    with assert_unchanged(tmp_path):
        several = run_cli("tail", path, "-n", "3", "-e", "1", "-e", "2", "--json")
        every = run_cli("tail", path, "-n", "3", "--json")
        four = run_cli("tail", path, "-n", "4", "-e", "2", "-e", "1", "--json")
    assert several.code == 0, several.err
    assert [strict_json(line)["id"] for line in several.lines] == expected[-3:]
    assert several.out == every.out  # the two experiments are all of the file
    assert [strict_json(line)["id"] for line in four.lines] == expected[-4:]


def test_tail_of_several_databases_keeps_each_ones_commit_order(tmp_path: Path) -> None:
    """Across databases there is no common commit order (rows are interleaved by time), but
    each database's rows are its last ones, in its own commit order, clock steps or not."""
    first = new_db(tmp_path / "a" / "metrics.db", [("A", "E", seed_config(1))])
    second = new_db(tmp_path / "b" / "metrics.db", [("B", "E", seed_config(2))])
    insert(
        first,
        [
            (1, 1, 1.0, "2024-05-01 10:00:01.000000"),
            (1, 2, 2.0, "2024-05-01 10:00:03.000000"),
            (1, 3, 3.0, "2024-05-01 09:00:05.000000"),  # stepped back
        ],
    )
    insert(
        second,
        [
            (1, 1, 1.0, "2024-05-01 10:00:02.000000"),
            (1, 2, 2.0, "garbage"),
            (1, 3, 3.0, "2024-05-01 10:00:06.000000"),
        ],
    )
    result = run_cli("tail", first, second, "-n", "4", "-e", "1", "--json")
    assert result.code == 0, result.err
    rows = [strict_json(line) for line in result.lines]
    assert len(rows) == 4
    for db in (first, second):
        mine = [row["episode_num"] for row in rows if row["db"] == str(db)]
        assert mine == sorted(mine)  # a suffix of its rows, in id order
        assert mine[-1] == 3


# -- export --group: the documented figures ------------------------------------------------------


def export_group(path: Path) -> dict[str, Any]:
    result = run_cli("export", "--group", path, "--format", "json")
    assert result.code == 0, result.err
    (group,) = strict_json(result.out)
    assert isinstance(group, dict)
    return group


def test_group_curve_with_repeated_episode_numbers_is_avg_group_by_episode_num(
    tmp_path: Path,
) -> None:
    """A resumed run repeats episode numbers. docs/groups.md: per episode number, what
    `SELECT avg(reward) ... GROUP BY episode_num` gives (every row counts once), with `runs`
    the runs that have that episode."""
    path = new_db(tmp_path / "metrics.db", [("A", "E", seed_config(1)), ("A", "E", seed_config(2))])
    insert(
        path,
        [
            (1, 1, 1.0, "2024-05-01 10:00:01.000000"),
            (1, 2, 4.0, "2024-05-01 10:00:02.000000"),
            (1, 1, 21.0, "2024-05-01 10:00:03.000000"),  # resumed from episode 1
            (2, 1, 20.0, "2024-05-01 10:00:04.000000"),
            (2, 2, 8.0, "2024-05-01 10:00:05.000000"),
            (2, 3, 9.0, "2024-05-01 10:00:06.000000"),
        ],
    )
    group = export_group(path)
    expected = query(
        path,
        "SELECT episode_num, count(DISTINCT experiment_id), avg(reward), min(reward),"
        " max(reward) FROM episode GROUP BY episode_num ORDER BY episode_num",
    )
    assert expected[0][2] == 14.0  # by hand: (1 + 21 + 20) / 3
    found = [(p["x"], p["runs"], p["mean"], p["min"], p["max"]) for p in group["points"]]
    assert found == [(float(e), runs, mean, low, high) for e, runs, mean, low, high in expected]
    for point in group["points"]:
        values = [
            r[0]
            for r in query(path, "SELECT reward FROM episode WHERE episode_num = ?", (point["x"],))
        ]
        assert point["std"] == statistics.pstdev(values)


def test_downsampled_runs_are_placed_at_their_buckets_middle(tmp_path: Path) -> None:
    """Runs over 1,000 episodes reach `export --group` in buckets of 2 episodes: a point stands
    for episodes 1-2 and sits at x=1.5 (not 1), its mean that of the rows there: for run 1
    (reward = episode) and run 2 (reward = 2 x episode), (1 + 2 + 2 + 4) / 4 = 2.25 at 1.5.
    Every point checked against sqlite3's avg over the episodes it stands for."""
    episodes = 1_001
    path = new_db(tmp_path / "metrics.db", [("A", "E", seed_config(1)), ("A", "E", seed_config(2))])
    stamp = "2024-05-01 10:00:00.000000"
    insert(
        path,
        [(run, n, float(run * n), stamp) for run in (1, 2) for n in range(1, episodes + 1)],
    )
    group = export_group(path)
    assert group["exact"] is False
    points = group["points"]
    assert (points[0]["x"], points[0]["mean"]) == (1.5, 2.25)
    assert [p["x"] for p in points] == [k + 1.5 for k in range(0, 1_000, 2)] + [1_001.0]
    for point in points:
        low, high = math.floor(point["x"]), math.ceil(point["x"])
        ((mean, runs),) = query(
            path,
            "SELECT avg(reward), count(DISTINCT experiment_id) FROM episode"
            " WHERE episode_num BETWEEN ? AND ?",
            (low, high),
        )
        assert (point["mean"], point["runs"]) == (mean, runs)


# -- show --json: valid JSON whatever the config holds ---------------------------------------


def test_show_json_writes_nonfinite_config_numbers_as_strings(tmp_path: Path) -> None:
    config = '{"lr": NaN, "clip": Infinity, "low": -Infinity, "deep": {"l": [NaN, 1.5]}}'
    path = new_db(tmp_path / "metrics.db", [("A", "E", config)])
    insert(path, [(1, 1, 1.0, "2024-05-01 10:00:01.000000")])
    result = run_cli("show", "1", path, "--json")
    assert result.code == 0, result.err
    data = strict_json(result.out)  # parse_constant refuses NaN / Infinity
    assert data["config"] == {
        "lr": "nan",
        "clip": "inf",
        "low": "-inf",
        "deep": {"l": ["nan", 1.5]},
    }
    assert data["config_error"] is None


# -- export: every column as stored -----------------------------------------------------------


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    return query(path, f"SELECT {', '.join(EPISODE_FIELDS)} FROM episode ORDER BY id")


def as_json(value: Any) -> Any:
    """The export's convention: JSON numbers as stored, inf/-inf as strings, text as its
    text, a blob as x'hex'."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, bytes):
        return f"x'{value.hex()}'"
    return value


def same(found: Any, stored: Any) -> bool:
    """Equal, and for floats bit for bit (-0.0 is not 0.0)."""
    if isinstance(stored, float) and isinstance(found, float):
        return found.hex() == stored.hex()
    return type(found) is type(stored) and found == stored


def test_export_writes_what_is_stored(tmp_path: Path) -> None:
    """Text in a number column stays its text, a time keeps its stored offset (and its
    stored form), floats stay bit-exact (5e-324, -0.0), inf as strings: every row and every
    column equal to what sqlite3 reads, in json, jsonl and csv."""
    path = new_db(tmp_path / "metrics.db", [("A", "E", seed_config(1))])
    insert(
        path,
        [
            (1, 1, 5e-324, "2024-05-01 12:00:00.000000"),
            (1, 2, -0.0, "2024-05-01 12:00:01+02:00"),
            (1, 3, "oops", "2024-05-01 12:00:02.5"),
            (1, 4, math.inf, "yesterday"),
            (1, 5, -math.inf, 1714557602),
            (1, 6, b"\x00\xff", "2024-05-01 12:00:03.000001"),
            (1, 7, "te\x1b[31mxt", "2024-05-01 12:00:04.000000"),
        ],
    )
    execute(path, "UPDATE episode SET length = 3.5, critic_loss = 'n/a' WHERE episode_num = 2")
    stored = stored_rows(path)
    assert stored[2][3] == "oops"  # SQLite kept them as given
    assert stored[1][4] == 3.5
    with assert_unchanged(tmp_path):
        results = {fmt: run_cli("export", "1", path, "--format", fmt) for fmt in ("json", "jsonl")}
        as_csv = run_cli("export", "1", path, "--format", "csv")
    documents = {
        "json": strict_json(results["json"].out),
        "jsonl": [strict_json(line) for line in results["jsonl"].lines],
    }
    for fmt, rows in documents.items():
        assert results[fmt].code == 0, results[fmt].err
        assert len(rows) == len(stored)
        for row, values in zip(rows, stored, strict=True):
            assert list(row) == list(EPISODE_FIELDS), fmt
            for field, found, value in zip(EPISODE_FIELDS, row.values(), values, strict=True):
                assert same(found, as_json(value)), (fmt, field, found, value)
    assert as_csv.code == 0, as_csv.err
    rows = list(csv.reader(io.StringIO(as_csv.out)))
    assert rows[0] == list(EPISODE_FIELDS)
    expected = [
        ["" if v is None else str(as_json(v)).replace("\x1b[31m", "") for v in values]
        for values in stored
    ]
    assert rows[1:] == expected
