"""A run's health from the command line, as a user runs it (a separate process, real files):
`alerts --json` on a run with a loss spike and on one that reached its target, `ls --json`'s
health, `--target`, and `velora-tui settings` with good, broken and hostile files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import TIMEOUT, Lines, run_cli, strict_json
from tests.support.curves import Curve, rows, write_curve
from tests.support.databases import SAMPLE_DB
from tests.support.processes import Spawn, python_command
from tests.support.reading import query


@pytest.fixture(autouse=True)
def own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder / "velora-tui" / "settings.toml"


def health_alerts(*args: str | Path) -> list[dict[str, object]]:
    result = run_cli("alerts", "--json", *args)
    assert result.code == 0, result.err
    objects = [strict_json(line) for line in result.lines]
    return [o for o in objects if o["kind"] not in ("finished", "stalled", "nonfinite")]


def test_alerts_json_finds_an_injected_loss_spike(tmp_path: Path) -> None:
    db = write_curve(tmp_path / "metrics.db", Curve(seed=1, spike_at=900, steps_per_second=400.0))
    found = health_alerts(db)
    assert [(o["kind"], o["episode"], o["severity"]) for o in found] == [
        ("loss_spike", 900, "warning")
    ]
    message = str(found[0]["message"])
    assert "critic loss" in message
    assert "at episode 900" in message
    assert "x the median of the last 200" in message


def test_alerts_json_says_when_the_target_was_reached(tmp_path: Path, own_config: Path) -> None:
    curve = Curve(seed=2, steps_per_second=400.0)
    db = write_curve(tmp_path / "metrics.db", curve, env="LunarLander-v3")
    # Gymnasium's 200 is reached before the newest 1000 rows: its episode looked up.
    first = next(
        r.episode_num
        for r in rows(curve)
        if r.reward_moving_avg >= 200 and (r.episode_num or 0) >= 100
    )
    found = health_alerts(db)
    assert [(o["kind"], o["episode"]) for o in found] == [("solved", first)]
    assert str(found[0]["message"]).endswith(
        f"solved at episode {first}: moving average reached the target 200"
    )
    # A target of the user's own, on the command line, reached inside them: its episode.
    found = health_alerts(db, "--target", "LunarLander-v3=390")
    assert [o["kind"] for o in found] == ["solved"]
    episode = found[0]["episode"]
    assert isinstance(episode, int)
    assert 600 < episode < 1500
    assert f"solved at episode {episode}: moving average" in str(found[0]["message"])
    # The same target from the settings file; the flag still wins over it.
    own_config.parent.mkdir(parents=True)
    own_config.write_text('[targets]\n"LunarLander-v3" = 390\n')
    assert [o["episode"] for o in health_alerts(db)] == [episode]
    assert "solved" not in [o["kind"] for o in health_alerts(db, "--target", "LunarLander-v3=1e6")]


def test_the_real_sample_has_no_health_alert(tmp_path: Path) -> None:
    db = tmp_path / "metrics.db"
    shutil.copyfile(SAMPLE_DB, db)
    assert health_alerts(db) == []
    listed = json.loads(run_cli("ls", "--json", db).out)
    assert [item["health"]["state"] for item in listed] == ["ok", "ok", "ok"]
    assert {item["health"]["target"] for item in listed} == {475.0, 950.0}


def test_ls_json_carries_the_health_state(tmp_path: Path) -> None:
    db = write_curve(tmp_path / "metrics.db", Curve(seed=3, steps_per_second=400.0), env="X-v0")
    listed = json.loads(run_cli("ls", "--json", db, "--target", "X-v0=300").out)
    health = listed[0]["health"]
    assert health["state"] == "solved"
    assert health["target"] == 300.0
    assert health["conditions"] == ["solved"]
    assert listed[0]["episodes"] == 1500  # the existing fields kept


def test_settings_shows_the_path_and_where_each_value_comes_from(own_config: Path) -> None:
    own_config.parent.mkdir(parents=True)
    own_config.write_text(
        'smoothing = 0.8\n[targets]\n"CartPole-v1" = 480\n[health]\nspike_factor = 8\n'
    )
    result = run_cli("settings", "--json", "--target", "Hopper-v5=3000")
    assert result.code == 0
    data = json.loads(result.out)
    assert data["path"] == str(own_config)
    assert data["problems"] == []
    found = {row["key"]: (row["value"], row["source"]) for row in data["settings"]}
    assert found["smoothing"] == ("0.8", "file")
    assert found["theme"] == ("textual-dark", "default")
    assert found["targets.CartPole-v1"] == ("480", "file")
    assert found["targets.Hopper-v5"] == ("3000", "flag")
    assert found["health.spike_factor"] == ("8", "file")
    text = run_cli("settings")
    assert str(own_config) in text.out


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_text("smoothing = = 1\n"),
        lambda p: p.write_text('smoothing = "high"\ntheme = 3\n[health]\nwindow = nan\n'),
        lambda p: p.write_text(
            "smoothing = 1e308\n[targets]\nA = inf\n[health]\nspike_window = 1e300\n"
        ),
        lambda p: p.write_bytes(b"\xff\xfe bad"),
        lambda p: p.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n"),
        lambda p: p.write_text("# big\n" * 20000),
        lambda p: p.mkdir(),
        lambda p: p.symlink_to("/dev/zero"),
        lambda p: os.mkfifo(p),
        lambda p: (p.write_text("theme = 'x'\n"), p.chmod(0)),
    ],
    ids=[
        "bad-toml",
        "wrong-types",
        "huge",
        "not-utf8",
        "deep",
        "too-big",
        "directory",
        "dev-zero",
        "fifo",
        "unreadable",
    ],
)
def test_a_broken_or_hostile_settings_file_is_one_line_and_the_defaults(
    own_config: Path, tmp_path: Path, make: object, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.id == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode")
    own_config.parent.mkdir(parents=True)
    make(own_config)  # type: ignore[operator]
    result = run_cli("settings", "--json")
    assert result.code == 0
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"velora-tui: settings {own_config}: ")
    values = {row["key"]: row["value"] for row in json.loads(result.out)["settings"]}
    assert values["smoothing"] == "0.6"
    assert values["health.window"] == "100"
    db = write_curve(tmp_path / "metrics.db", Curve(seed=1, spike_at=900, steps_per_second=400.0))
    assert [o["kind"] for o in health_alerts(db)] == ["loss_spike"]


def test_alerts_follow_says_a_loss_spike_once_as_it_happens(tmp_path: Path, spawn: Spawn) -> None:
    """`alerts -f` on a file that appears while it waits: every row arrives as new, and the
    rules find the spike at its episode, once, and nothing else of the run's health."""
    db = tmp_path / "metrics.db"
    proc = spawn(
        python_command("alerts", "-f", "--json", db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    [waiting] = err.take(1)
    assert "waiting" in waiting
    curve = Curve(seed=4, spike_at=500, steps_per_second=400.0)
    written = write_curve(tmp_path / "new.db", curve, env="NoTarget-v0")
    os.replace(written, db)  # whole, as a file that appears
    spike = strict_json(out.first("loss_spike"))
    assert spike["episode"] == 500
    assert "critic loss" in str(spike["message"])
    time.sleep(1.5)  # nothing more arrives: said once
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(TIMEOUT) == 0
    health = [
        strict_json(line)
        for line in out.rest()
        if strict_json(line)["kind"] not in ("finished", "stalled", "nonfinite")
    ]
    assert [(o["kind"], o["episode"]) for o in health] == [("loss_spike", 500)]


def test_a_negative_target_solved_before_the_rows_read_is_found_on_a_full_window(
    tmp_path: Path,
) -> None:
    """Acrobot's -100: velora's zero-padded average is above it from the first episode, so only
    a full window's average says where it was reached: the first episode from the 100th on
    whose moving average is at the target, found on the index though the rows read begin later
    (they once said "or before: the first episode read")."""
    curve = Curve(seed=3, floor=-500.0, ceiling=-80.0, rise=150, steps_per_second=400.0)
    db = write_curve(tmp_path / "metrics.db", curve, env="Acrobot-v1")
    found = health_alerts(db)
    assert [o["kind"] for o in found] == ["solved"]
    (expected,) = query(
        db,
        "SELECT min(episode_num) FROM episode WHERE reward_moving_avg >= -100"
        " AND episode_num >= 100",
    )
    assert found[0]["episode"] == expected[0]
    assert "or before" not in str(found[0]["message"])
