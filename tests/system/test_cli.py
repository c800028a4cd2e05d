"""The command line, as a user runs it: `python -m velora_tui ...` in a separate process.

Every run checks that no output holds a traceback or an escape character, and that the
database folder is byte-for-byte unchanged (hashes and mtimes) afterwards: around each
long-running command, and around the one concurrent batch that runs all the short ones.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import (
    TIMEOUT,
    Lines,
    Result,
    check_output,
    closed_pipe_run,
    run_cli,
    strict_json,
)
from tests.support.databases import (
    SAMPLE_DB,
    SAMPLE_EPISODES,
    MakeDb,
    add_episode,
    build_velora_db,
    hostile_db,
)
from tests.support.folders import assert_unchanged
from tests.support.processes import Simulator, Spawn, python_command
from velora_tui import __version__
from velora_tui.data.records import EPISODE_FIELDS

LS_FIELDS = {
    "db",
    "id",
    "agent",
    "env",
    "created_at",
    "episodes",
    "n_episodes",
    "last_reward",
    "best_reward",
    "reward_moving_avg",
    "last_activity",
    "status",
}


# -- one batch of short commands -------------------------------------------------------------
#
# Starting Python and importing the engine costs most of a second per command, so every command
# that simply runs to completion runs once, concurrently with the others, in a module-wide
# batch; each test below checks its own results. Every folder involved is checked unchanged
# over the whole batch.

Spec = tuple[list[str | Path], Path | None]  # arguments, working directory


@dataclass(frozen=True, slots=True)
class Batch:
    sample: Path  # a copy of the velora sample
    several: Path  # a directory holding two databases
    hostile: Path  # tests.support.hostile_db
    missing: Path  # a metrics.db that does not exist
    text: Path  # a metrics.db that is a text file
    exports: Path  # where `export -o` writes (outside every database folder)
    results: dict[str, Result]

    def __getitem__(self, name: str) -> Result:
        return self.results[name]


BAD_USAGE: dict[str, list[str | Path]] = {
    "usage-show-abc": ["show", "abc"],
    "usage-tail-negative": ["tail", "-n", "-1"],
    "usage-export-format": ["export", "1", "--format", "xml"],
}
MISSING: dict[str, list[str | Path]] = {
    "missing-ls-json": ["ls", "--json"],
    "missing-tail": ["tail"],
}
TEXT: dict[str, list[str | Path]] = {"text-ls": ["ls"], "text-export": ["export", "1"]}
UNKNOWN: dict[str, list[str | Path]] = {
    "unknown-show": ["show", "99", "--json"],
    "unknown-export": ["export", "0"],
}
FORMATS = ("csv", "json", "jsonl")


def _commands(batch: Batch) -> dict[str, Spec]:
    db, folder = batch.sample, batch.sample.parent
    specs: dict[str, Spec] = {
        "version": (["--version"], None),
        "ls": (["ls", db], None),
        "ls-json": (["ls", "--json", db], None),
        "ls-cwd": (["ls", "--json"], folder),
        "ls-several-json": (["ls", "--json", batch.several], None),
        "ls-several": (["ls", batch.several], None),
        "show-json": (["show", "1", db, "--json"], None),
        "show-text": (["show", "2", db], None),
        "export-unwritable": (
            ["export", "1", db, "-o", batch.exports / "no" / "such" / "out.csv"],
            None,
        ),
        "export-file": (
            ["export", "2", db, "--format", "jsonl", "-o", batch.exports / "episodes.jsonl"],
            None,
        ),
        "tail-5": (["tail", "-n", "5", db], None),
        "tail-e2-json": (["tail", "-e", "2", "--json", db], None),
        "hostile-ls-json": (["ls", "--json", batch.hostile], None),
        "hostile-ls": (["ls", batch.hostile], None),
        "hostile-show": (["show", "2", batch.hostile], None),
        "hostile-show-deep": (["show", "4", batch.hostile, "--json"], None),
        "hostile-show-json": (["show", "2", batch.hostile, "--json"], None),
        "hostile-export": (["export", "2", batch.hostile, "--format", "jsonl"], None),
        "hostile-tail": (["tail", "-n", "20", batch.hostile], None),
    }
    for fmt in FORMATS:
        specs[f"export-{fmt}"] = (["export", "1", db, "--format", fmt], None)
    specs.update({name: ([*args, db], None) for name, args in UNKNOWN.items()})
    specs.update({name: (args, folder) for name, args in BAD_USAGE.items()})
    specs.update({name: ([*args, batch.missing], None) for name, args in MISSING.items()})
    specs.update({name: ([*args, batch.text], None) for name, args in TEXT.items()})
    return specs


def run_many(specs: dict[str, Spec], folders: list[Path]) -> dict[str, Result]:
    """Run every command to completion, a few at a time; the folders must not change."""

    def one(spec: Spec) -> Result:
        args, cwd = spec
        return run_cli(*args, cwd=cwd)

    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(assert_unchanged(folder))
        with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1) as pool:
            futures = {name: pool.submit(one, spec) for name, spec in specs.items()}
            return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    sample = tmp_path_factory.mktemp("sample") / "metrics.db"
    shutil.copyfile(SAMPLE_DB, sample)
    several = tmp_path_factory.mktemp("several")
    build_velora_db(several / "a" / "metrics.db", [3])
    build_velora_db(several / "b" / "metrics.db", [4, 2], schema="0.1.1")
    hostile = hostile_db(tmp_path_factory.mktemp("hostile") / "metrics.db")
    missing = tmp_path_factory.mktemp("missing") / "metrics.db"
    text = tmp_path_factory.mktemp("text") / "metrics.db"
    text.write_text("this is a text file, not a database\n")
    exports = tmp_path_factory.mktemp("exports")
    empty = Batch(sample, several, hostile, missing, text, exports, {})
    folders = [sample.parent, several, hostile.parent, missing.parent, text.parent]
    results = run_many(_commands(empty), folders)
    return Batch(sample, several, hostile, missing, text, exports, results)


# -- basics ------------------------------------------------------------------------------------


def test_version(batch: Batch) -> None:
    result = batch["version"]
    assert result.code == 0
    assert result.out.strip() == f"velora-tui, version {__version__}"


def test_ls_table(batch: Batch) -> None:
    result = batch["ls"]
    assert result.code == 0
    assert result.err == ""
    header, *rows = result.lines
    assert header.split() == [
        "STATUS",
        "ID",
        "AGENT",
        "ENV",
        "EPISODES",
        "LAST",
        "BEST",
        "AVG",
        "ACTIVE",
    ]
    assert len(rows) == 3
    cells = {int(row.split()[1]): row.split() for row in rows}
    assert set(cells) == {1, 2, 3}
    for exp_id, count in SAMPLE_EPISODES.items():
        assert cells[exp_id][0] == "finished"
        assert cells[exp_id][4] == f"{count}/{count}"
    assert cells[1][2:4] == ["NeuroFlow", "CartPole-v1"]
    assert cells[2][2:4] == ["NeuroFlowCT", "InvertedPendulum-v5"]
    assert cells[1][6] == "51.00"  # best reward


def test_ls_json(batch: Batch) -> None:
    result = batch["ls-json"]
    assert result.code == 0
    data = strict_json(result.out)
    assert isinstance(data, list)
    assert {item["id"] for item in data} == {1, 2, 3}
    for item in data:
        assert set(item) >= LS_FIELDS
        assert item["db"] == str(batch.sample)
        assert item["episodes"] == item["n_episodes"] == SAMPLE_EPISODES[item["id"]]
        assert item["status"] == "finished"
        assert isinstance(item["last_reward"], float)
        assert isinstance(item["reward_moving_avg"], float)
        assert item["created_at"] < item["last_activity"]
    best = {item["id"]: item["best_reward"] for item in data}
    assert best == {1: 51.0, 2: 15.0, 3: 78.0}


def test_ls_default_source_is_metrics_db_in_cwd(batch: Batch) -> None:
    result = batch["ls-cwd"]
    assert result.code == 0
    assert strict_json(result.out) == strict_json(batch["ls-json"].out)


def test_ls_directory_with_several_databases(batch: Batch) -> None:
    result = batch["ls-several-json"]
    assert result.code == 0
    data = strict_json(result.out)
    assert sorted((Path(i["db"]).parent.name, i["id"], i["episodes"]) for i in data) == [
        ("a", 1, 3),
        ("b", 1, 4),
        ("b", 2, 2),
    ]
    text = batch["ls-several"]
    assert text.code == 0
    assert text.lines[0].split()[-1] == "DB"
    assert len(text.lines) == 4


def test_show_json(batch: Batch) -> None:
    result = batch["show-json"]
    assert result.code == 0
    data = strict_json(result.out)
    assert set(data) >= LS_FIELDS
    assert data["id"] == 1
    assert data["episodes"] == 120
    assert data["config_error"] is None
    assert data["config"]["train_params"]["n_episodes"] == 120
    assert data["config"]["agent"] == "NeuroFlow"


def test_show_text(batch: Batch) -> None:
    result = batch["show-text"]
    assert result.code == 0
    assert result.err == ""
    fields = dict(line.split(None, 1) for line in result.lines[:14] if line.strip())
    assert fields["id"] == "2"
    assert fields["agent"] == "NeuroFlowCT"
    assert fields["env"] == "InvertedPendulum-v5"
    assert fields["episodes"] == "40"
    assert fields["status"] == "finished"
    config = result.out[result.out.index("\n{") :]
    assert json.loads(config)["train_params"]["n_episodes"] == 40


def test_hostile_file_output_is_clean(batch: Batch) -> None:
    listing = batch["hostile-ls-json"]
    assert listing.code == 0
    data = {item["id"]: item for item in strict_json(listing.out)}
    assert data[2]["agent"] == "[/bold]Evil"
    assert data[2]["best_reward"] == 7.5
    assert data[2]["nonfinite_episodes"] == 6
    assert strict_json(batch["hostile-show-json"].out)["nonfinite_episodes"] == 6
    assert data[99]["agent"] == "(no experiment row)"
    table = batch["hostile-ls"]
    assert table.code == 0
    assert "[/bold]Evil" in table.out
    shown = batch["hostile-show"]
    assert shown.code == 0
    assert "config is not valid JSON" in shown.err
    assert "{not json" in shown.out
    deep = batch["hostile-show-deep"]
    assert deep.code == 0
    assert "nested too deeply" in strict_json(deep.out)["config_error"]
    episodes = batch["hostile-export"]
    assert episodes.code == 0
    rows = [strict_json(line) for line in episodes.lines]
    # As stored: text stays its text, a blob is x'<hex>' (tests/system/test_cli_figures.py).
    assert [row["reward"] for row in rows] == [5.0, "inf", "abc", "-inf", 7.5, "x'0001'", 6.0]
    tail = batch["hostile-tail"]
    assert tail.code == 0
    assert len(tail.lines) == 1 + 14


# -- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_stdout(batch: Batch, fmt: str) -> None:
    result = batch[f"export-{fmt}"]
    assert result.code == 0
    rows = parse_export(result.out, fmt)
    assert len(rows) == 120
    assert all(list(row) == list(EPISODE_FIELDS) for row in rows)
    assert [int(row["episode_num"]) for row in rows] == list(range(1, 121))
    assert {int(row["experiment_id"]) for row in rows} == {1}
    assert float(rows[0]["reward"]) == 30.0


def test_export_to_file(batch: Batch) -> None:
    result = batch["export-file"]
    target = batch.exports / "episodes.jsonl"
    assert result.code == 0
    assert result.out == ""
    assert result.err.strip() == f"wrote 40 episodes to {target}"
    rows = parse_export(target.read_text(encoding="utf-8"), "jsonl")
    assert len(rows) == 40
    assert all(list(row) == list(EPISODE_FIELDS) for row in rows)
    assert [int(row["episode_num"]) for row in rows] == list(range(1, 41))


def test_export_to_unwritable_place(batch: Batch) -> None:
    result = batch["export-unwritable"]
    assert result.code == 1
    assert len(result.err_lines) == 1
    assert result.err.startswith("velora-tui: cannot write")
    assert not (batch.exports / "no").exists()


def parse_export(text: str, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    if fmt == "json":
        rows = strict_json(text)
        assert isinstance(rows, list)
        return rows
    return [strict_json(line) for line in text.splitlines()]


# -- tail --------------------------------------------------------------------------------------


def test_tail_lines(batch: Batch) -> None:
    result = batch["tail-5"]
    assert result.code == 0
    header, *rows = result.lines
    assert header.split()[:3] == ["EXP", "EPISODE", "REWARD"]
    assert [row.split()[:2] for row in rows] == [["3", str(n)] for n in range(56, 61)]
    assert all(row.endswith("NeuroFlow/CartPole-v1") for row in rows)


def test_tail_experiment_json(batch: Batch) -> None:
    result = batch["tail-e2-json"]
    assert result.code == 0
    rows = [strict_json(line) for line in result.lines]
    assert [row["episode_num"] for row in rows] == list(range(31, 41))
    assert {row["experiment_id"] for row in rows} == {2}
    assert {row["agent"] for row in rows} == {"NeuroFlowCT"}
    for row in rows:
        assert set(EPISODE_FIELDS) | {"db", "agent", "env", "host"} == set(row)
        assert row["db"] == str(batch.sample)
        assert row["host"] is None  # this machine (tests/system/test_remote_ssh.py: other hosts)


# -- following -------------------------------------------------------------------------------


def test_tail_follow_from_before_the_file_exists(
    tmp_path: Path, spawn: Spawn, simulator: Simulator
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "metrics.db"
    tail = spawn(
        python_command("tail", "-f", "--json", path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    out, err = Lines(tail.stdout), Lines(tail.stderr)
    [waiting] = err.take(1)
    assert "waiting" in waiting
    assert not path.exists()
    writer = simulator(path, episodes=80, rate=400, experiments=2)
    lines = out.take(160)
    assert writer.wait(TIMEOUT) == 0
    with assert_unchanged(folder):
        time.sleep(0.5)  # anything printed twice would show up now
        tail.send_signal(signal.SIGTERM)
        assert tail.wait(TIMEOUT) == 0
    lines = out.rest()
    rows = [strict_json(line) for line in lines]
    assert [row["id"] for row in rows] == list(range(1, 161))
    assert [(row["experiment_id"], row["episode_num"]) for row in rows] == [
        (exp, num) for exp in (1, 2) for num in range(1, 81)
    ]
    assert {row["agent"] for row in rows} == {"NeuroFlow", "NeuroFlowCT"}
    check_output("\n".join(lines), "\n".join(err.rest()))


@pytest.mark.parametrize("poll", [False, True], ids=["watch", "poll"])
def test_tail_follow_ends_cleanly_on_sigint(sample_db: Path, spawn: Spawn, poll: bool) -> None:
    tail = spawn(
        python_command("tail", "-f", "-n", "2", sample_db, *(["--poll"] if poll else [])),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    out, err = Lines(tail.stdout), Lines(tail.stderr)
    out.take(3)  # the header and the last two episodes
    add_episode(sample_db, 3, episode_num=61, reward=1.0)
    [*_, followed] = out.take(4)  # a new row printed: it is following now
    assert followed.split()[:2] == ["3", "61"]
    with assert_unchanged(sample_db.parent):
        tail.send_signal(signal.SIGINT)
        assert tail.wait(TIMEOUT) == 0
    lines, errors = out.rest(), err.rest()
    assert len(lines) == 4
    assert errors == []
    check_output("\n".join(lines))


# -- broken pipes ------------------------------------------------------------------------------


def test_ls_into_closed_pipe(sample_db: Path, spawn: Spawn) -> None:
    with assert_unchanged(sample_db.parent):
        result = closed_pipe_run(spawn, "ls", sample_db)
    assert result.code == 1
    assert result.err == ""


def test_export_into_pipe_closed_early(tmp_path: Path, spawn: Spawn, make_db: MakeDb) -> None:
    path = make_db(tmp_path / "metrics.db", [3000])
    with assert_unchanged(tmp_path):
        result = closed_pipe_run(spawn, "export", "1", path, "--format", "jsonl", read_lines=1)
    assert result.code == 1  # far more than a pipe buffer: the writes must fail
    assert result.err == ""


def test_tail_follow_into_closed_pipe(sample_db: Path, spawn: Spawn) -> None:
    with assert_unchanged(sample_db.parent):
        result = closed_pipe_run(spawn, "tail", "-f", "-n", "5", sample_db)
    assert result.code == 1
    assert result.err == ""


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MISSING)
def test_missing_file(batch: Batch, name: str) -> None:
    result = batch[name]
    assert result.code == 1
    assert result.out == ""
    [line] = result.err_lines
    assert line.startswith("velora-tui: ")
    assert "not created yet" in line
    assert not batch.missing.exists()


@pytest.mark.parametrize("name", TEXT)
def test_text_file(batch: Batch, name: str) -> None:
    result = batch[name]
    assert result.code == 1
    assert result.out == ""
    assert result.err_lines == [f"velora-tui: {batch.text}: unreadable: not a SQLite database"]


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_experiment(batch: Batch, name: str) -> None:
    result = batch[name]
    assert result.code == 1
    assert result.out == ""
    assert result.err_lines == [f"velora-tui: no experiment with id {UNKNOWN[name][1]}"]


@pytest.mark.parametrize("name", BAD_USAGE)
def test_bad_usage(batch: Batch, name: str) -> None:
    result = batch[name]
    assert result.code == 2
    assert result.out == ""
    assert "Usage:" in result.err
    assert "Error" in result.err
