"""`ls --group`, `ls --group-by KEY` and `export --group` as a user runs them (subprocesses),
on a generated sweep (3 configs x 5 seeds, ragged, one run still running)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from pathlib import Path

import pytest

from tests.support.cli import run_cli, strict_json
from tests.support.databases import build_sweep_db, execute
from tests.support.folders import assert_unchanged
from tests.support.reading import query


def table_lines(out: str) -> list[str]:
    """The table of `ls --group`: the lines before the blank line its notes follow."""
    return out.split("\n\n")[0].splitlines()


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return build_sweep_db(tmp_path / "runs" / "metrics.db")


def test_ls_group_json(sweep: Path) -> None:
    with assert_unchanged(sweep.parent):
        result = run_cli("ls", sweep, "--group", "--json")
    assert result.code == 0, result.err
    groups = strict_json(result.out)
    assert [g["group"] for g in groups] == ["batch_size=64", "batch_size=32", "batch_size=128"]
    by_name = {g["group"]: g for g in groups}
    assert all(g["runs"] == 5 for g in groups)
    assert by_name["batch_size=64"]["status"]["running"] == 1
    assert by_name["batch_size=64"]["eta_seconds"] == pytest.approx(80, abs=3)
    assert by_name["batch_size=32"]["eta_seconds"] is None
    assert by_name["batch_size=128"]["episodes"] == {"min": 160, "max": 200}
    assert by_name["batch_size=32"]["values"] == {"train_params.batch_size": "32"}
    for group in groups:
        ids = [e["id"] for e in group["experiments"]]
        marks = ",".join("?" * len(ids))
        finals = [
            row[0]
            for row in query(
                sweep,
                "SELECT reward_moving_avg FROM episode WHERE id IN (SELECT max(id) FROM episode"
                f" WHERE experiment_id IN ({marks}) GROUP BY experiment_id)",
                tuple(ids),
            )
        ]
        assert group["final_reward"]["mean"] == pytest.approx(statistics.fmean(finals))
        assert group["final_reward"]["std"] == pytest.approx(statistics.pstdev(finals))
        assert group["final_reward"]["n"] == 5


def test_ls_group_by_keys(sweep: Path) -> None:
    result = run_cli("ls", sweep, "--group-by", "cfg.torch.device", "--json")
    assert result.code == 0, result.err
    assert sorted((g["group"], g["runs"]) for g in strict_json(result.out)) == [
        ("device=cpu", 12),
        ("device=cuda:0", 3),
    ]
    result = run_cli(
        "ls", sweep, "--group-by", "train_params.batch_size,torch.device", "--group-by", "agent"
    )
    assert result.code == 0, result.err
    lines = table_lines(result.out)
    assert re.split(r"\s{2,}", lines[0]) == [
        "GROUP", "RUNS", "RUNNING", "FINISHED", "EPISODES", "FINAL", "FINAL IQM [95% CI]",
        "BEST", "BEST IQM [95% CI]", "TO TARGET", "ETA",
    ]  # fmt: skip
    assert len(lines) == 1 + 6
    assert "batch_size=64 device=cpu agent=NeuroFlow" in result.out


def test_export_group_json_is_the_per_episode_mean(sweep: Path) -> None:
    result = run_cli("export", "--group", sweep, "--format", "json")
    assert result.code == 0, result.err
    documents = strict_json(result.out)
    assert len(documents) == 3
    for document in documents:
        assert document["exact"] is True
        assert document["x_axis"] == "episode"
        ids = tuple(e["id"] for e in document["experiments"])
        rows = query(
            sweep,
            "SELECT episode_num, count(*), avg(reward) FROM episode WHERE experiment_id IN"
            f" ({','.join('?' * len(ids))}) GROUP BY episode_num ORDER BY episode_num",
            ids,
        )
        points = document["points"]
        assert [(p["x"], p["runs"]) for p in points] == [(float(r[0]), r[1]) for r in rows]
        assert [p["mean"] for p in points] == pytest.approx([r[2] for r in rows])
        assert all(p["min"] <= p["mean"] <= p["max"] for p in points)


def test_export_group_csv_to_a_file(sweep: Path, tmp_path: Path) -> None:
    target = tmp_path / "groups.csv"
    result = run_cli(
        "export", sweep, "--group-by", "train_params.batch_size", "--x", "time",
        "--smoothing", "0.6", "--format", "csv", "-o", target,
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert "group points" in result.err
    assert {r["train_params.batch_size"] for r in rows} == {"32", "64", "128"}
    assert {r["x_axis"] for r in rows} == {"time"}
    assert all(1 <= int(r["runs"]) <= 5 for r in rows)


def test_export_without_id_or_group_is_a_usage_error(sweep: Path) -> None:
    result = run_cli("export", sweep)
    assert result.code == 2
    assert "needs an experiment ID" in result.err
    result = run_cli("export", "1", sweep, "--format", "csv")
    assert result.code == 0
    assert result.out.startswith("id,experiment_id")


def test_hostile_config_values_come_out_clean(sweep: Path) -> None:
    """Config values are untrusted: markup, escape sequences and control characters in the
    values that name groups never reach the terminal (run_cli checks every output)."""
    config = json.dumps({"seed": 1, "tag": "\x1b[31m[/oops]\x07", "train_params": {}})
    execute(sweep, "UPDATE experiment SET config = ? WHERE id IN (1, 2)", (config,))
    execute(sweep, "UPDATE experiment SET config = 'not json' WHERE id = 3")
    result = run_cli("ls", sweep, "--group-by", "tag")
    assert result.code == 0, result.err
    assert "[/oops]" in result.out
    result = run_cli("ls", sweep, "--group")
    assert result.code == 0, result.err
    assert len(table_lines(result.out)) == 1 + 5  # 3 configs, the 2 changed ones, the bad one
    result = run_cli("export", "--group-by", "tag", sweep, "--format", "csv")
    assert result.code == 0, result.err
    groups = strict_json(run_cli("ls", sweep, "--group-by", "tag", "--json").out)
    assert {g["values"]["tag"] for g in groups} == {"\x1b[31m[/oops]\x07", "-"}


def trimmed_mean(values: list[float]) -> float:
    """scipy.stats.trim_mean(values, 0.25), written out."""
    ordered = sorted(values)
    cut = len(ordered) // 4
    kept = ordered[cut : len(ordered) - cut]
    return sum(kept) / len(kept)


def finals_of(sweep: Path, ids: list[int]) -> list[float]:
    marks = ",".join("?" * len(ids))
    return [
        row[0]
        for row in query(
            sweep,
            "SELECT reward_moving_avg FROM episode WHERE id IN (SELECT max(id) FROM episode"
            f" WHERE experiment_id IN ({marks}) GROUP BY experiment_id)",
            tuple(ids),
        )
    ]


def test_ls_group_json_has_the_iqm_and_a_reproducible_interval(sweep: Path) -> None:
    first = run_cli("ls", sweep, "--group", "--json")
    again = run_cli("ls", sweep, "--group", "--json")
    assert first.code == again.code == 0, first.err
    groups = strict_json(first.out)
    # Another process, the same intervals: the bootstrap's seed is fixed.
    assert [g["final_reward"] for g in groups] == [
        g["final_reward"] for g in strict_json(again.out)
    ]
    for group in groups:
        finals = finals_of(sweep, [e["id"] for e in group["experiments"]])
        final = group["final_reward"]
        assert final["iqm"] == pytest.approx(trimmed_mean(finals))
        low, high = final["ci95"]
        assert min(finals) <= low <= final["iqm"] <= high <= max(finals)
        assert group["best_reward"]["ci95"] is not None


def test_ls_group_compare(sweep: Path) -> None:
    result = run_cli("ls", sweep, "--group", "--json", "--compare")
    assert result.code == 0, result.err
    groups = strict_json(result.out)
    assert groups[0]["first_beats_this"] is None
    top = finals_of(sweep, [e["id"] for e in groups[0]["experiments"]])
    for group in groups[1:]:
        other = finals_of(sweep, [e["id"] for e in group["experiments"]])
        wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in top for b in other)
        compared = group["first_beats_this"]
        assert compared["first"] == groups[0]["group"]
        assert compared["probability"] == pytest.approx(wins / (len(top) * len(other)))
        low, high = compared["ci95"]
        assert 0 <= low <= compared["probability"] <= high <= 1
    text = run_cli("ls", sweep, "--group", "--compare")
    assert text.code == 0, text.err
    header, first, second, _ = table_lines(text.out)
    assert header.rstrip().endswith("P(#1 BEATS)")
    assert first.rstrip().endswith("-")
    assert re.search(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\]$", second.rstrip())
    assert "P(#1 BEATS): the probability" in text.out
    alone = run_cli("ls", sweep, "--compare")
    assert alone.code == 2
    assert "--group" in alone.err


def test_one_run_shows_no_spread_and_two_runs_say_the_interval_is_wide(sweep: Path) -> None:
    """A group of one: its value, no `± 0.00`, `—` for the interval; of two: the mark, and the
    note that says what it means."""
    execute(sweep, "UPDATE experiment SET config = 'not json' WHERE id = 3")  # alone
    config = json.dumps({"seed": 1, "tag": "pair", "train_params": {}})
    execute(sweep, "UPDATE experiment SET config = ? WHERE id IN (1, 2)", (config,))
    result = run_cli("ls", sweep, "--group")
    assert result.code == 0, result.err
    rows = table_lines(result.out)[1:]
    (alone,) = [row for row in rows if re.split(r"\s{2,}", row)[1] == "1"]  # RUNS
    assert "±" not in alone
    assert "—" in alone
    pairs = [row for row in rows if re.split(r"\s{2,}", row)[1] == "2"]
    assert pairs
    assert all("]†" in pair for pair in pairs)
    assert "† two runs: the interval is wide" in result.out
    groups = strict_json(run_cli("ls", sweep, "--group", "--json").out)
    (one,) = [g for g in groups if g["runs"] == 1]
    assert one["final_reward"]["ci95"] is None
    assert one["final_reward"]["n"] == 1


def test_export_group_carries_the_iqm_figures(sweep: Path) -> None:
    documents = strict_json(run_cli("export", "--group", sweep, "--format", "json").out)
    listed = {g["group"]: g for g in strict_json(run_cli("ls", sweep, "--group", "--json").out)}
    for document in documents:
        assert document["final_reward"] == listed[document["group"]]["final_reward"]
        assert document["best_reward"] == listed[document["group"]]["best_reward"]
    result = run_cli("export", "--group", sweep, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.out)))
    for row in rows:
        final = listed[row["group"]]["final_reward"]
        assert float(row["final_iqm"]) == pytest.approx(final["iqm"])
        assert float(row["final_ci_low"]) == pytest.approx(final["ci95"][0])
        assert float(row["best_ci_high"]) == pytest.approx(
            listed[row["group"]]["best_reward"]["ci95"][1]
        )


def test_episodes_to_target(sweep: Path) -> None:
    """The sweep's env is CartPole-v1: Gymnasium's target 475, or the user's (--target)."""
    result = run_cli("ls", sweep, "--group", "--json", "--target", "CartPole-v1=440")
    assert result.code == 0, result.err
    for group in strict_json(result.out):
        ids = [e["id"] for e in group["experiments"]]
        episodes = []
        for exp_id in ids:
            rows = query(
                sweep,
                "SELECT episode_num FROM episode WHERE experiment_id = ? AND"
                " reward_moving_avg >= 440 ORDER BY id LIMIT 1",
                (exp_id,),
            )
            episodes.append(float(rows[0][0]) if rows else math.inf)
        to_target = group["episodes_to_target"]
        assert to_target["target"] == 440.0
        assert to_target["n"] == len(ids)
        assert to_target["reached"] == sum(1 for e in episodes if math.isfinite(e))
        if sum(1 for e in episodes if math.isinf(e)) <= len(ids) // 4:
            assert to_target["iqm"] == pytest.approx(trimmed_mean(episodes))
        else:
            assert to_target["iqm"] == "inf"
    text = run_cli("ls", sweep, "--group")  # Gymnasium's 475 for CartPole-v1
    assert text.code == 0, text.err
    assert re.split(r"\s{2,}", table_lines(text.out)[0])[-2] == "TO TARGET"
    assert "TO TARGET: episodes until a run's moving average reached" in text.out
