"""`ls --group`, `ls --group-by KEY` and `export --group` as a user runs them (subprocesses),
on a generated sweep (3 configs x 5 seeds, ragged, one run still running)."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest

from tests.support.cli import run_cli, strict_json
from tests.support.databases import build_sweep_db, execute
from tests.support.folders import assert_unchanged
from tests.support.reading import query


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
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "GROUP", "RUNS", "RUNNING", "FINISHED", "EPISODES", "FINAL", "BEST", "ETA"
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
    assert len(result.out.splitlines()) == 1 + 5  # 3 configs, the 2 changed ones, the bad one
    result = run_cli("export", "--group-by", "tag", sweep, "--format", "csv")
    assert result.code == 0, result.err
    groups = strict_json(run_cli("ls", sweep, "--group-by", "tag", "--json").out)
    assert {g["values"]["tag"] for g in groups} == {"\x1b[31m[/oops]\x07", "-"}
