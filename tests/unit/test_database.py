"""MetricsDatabase and Monitor against real files.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.databases import (
    SAMPLE_EPISODES,
    MakeDb,
    RunSpec,
    add_episode,
    build_velora_db,
    execute,
    hostile_db,
)
from tests.support.folders import assert_unchanged
from tests.support.reading import (
    INSERT_EPISODE,
    add_up,
    facts,
    header_counter,
    load_series,
    opened,
    query,
    state,
)
from velora_tui.data import database
from velora_tui.data.database import NOT_CREATED, ReadFailed
from velora_tui.data.records import (
    EPISODE_FIELDS,
    EpisodeRow,
    RunStatus,
    SourceState,
    Update,
)


def test_sample_summaries(sample_db: Path) -> None:
    with assert_unchanged(sample_db.parent):
        db = opened(sample_db)
        update = db.refresh()
        try:
            assert state(db) is SourceState.OK
            assert update.db == sample_db
            assert update.experiments == {1, 2, 3}
            assert update.episodes == []  # a first load summarises, it does not replay
            assert update.status_changed
            assert not update.reset
            assert set(db.summaries) == {1, 2, 3}
            assert update.first_load
            # Before the scan: from each experiment's first and last rows alone.
            for exp_id, expected in SAMPLE_EPISODES.items():
                pending = db.summaries[exp_id]
                assert not pending.scanned
                assert pending.episodes == pending.last_episode_num == expected
                assert math.isnan(pending.best_reward)
                assert "nonfinite_episodes" not in pending.to_json(datetime.now())
            add_up(db)
            truth = {
                exp: (count, first, last, best)
                for exp, count, first, last, best in query(
                    sample_db,
                    "SELECT experiment_id, count(*), min(id), max(id), max(reward) "
                    "FROM episode GROUP BY experiment_id",
                )
            }
            now = datetime.now()
            for exp_id, expected in SAMPLE_EPISODES.items():
                summary = db.summaries[exp_id]
                count, first, last, best = truth[exp_id]
                assert summary.episodes == expected == count
                assert summary.n_episodes == expected
                assert summary.status(now) is RunStatus.FINISHED
                assert summary.finished
                assert summary.eta() is None
                assert (summary.first_id, summary.last_id) == (first, last)
                assert summary.best_reward == best
                assert summary.last_episode_num == expected
                [(reward, avg, stamp)] = query(
                    sample_db,
                    "SELECT reward, reward_moving_avg, created_at FROM episode WHERE id = ?",
                    (last,),
                )
                assert summary.last_reward == reward
                assert summary.reward_moving_avg == avg
                assert summary.last_activity == datetime.fromisoformat(stamp)
                assert summary.created_at is not None
                assert summary.created_at.tzinfo is None
                assert summary.nonfinite == 0
                assert summary.scanned
                assert summary.to_json(now)["nonfinite_episodes"] == 0
                assert summary.db == sample_db
                assert summary.key == (sample_db, exp_id)
                json.dumps(summary.to_json(now), allow_nan=False)
            assert (db.summaries[1].agent, db.summaries[1].env) == ("NeuroFlow", "CartPole-v1")
            assert (db.summaries[2].agent, db.summaries[2].env) == (
                "NeuroFlowCT",
                "InvertedPendulum-v5",
            )
        finally:
            db.close()


def test_refresh_without_change_is_empty(sample_db: Path) -> None:
    with assert_unchanged(sample_db.parent):
        db = opened(sample_db)
        assert db.refresh()
        for _ in range(3):
            again = db.refresh()
            assert not again
            assert again == Update(sample_db)
        assert state(db) is SourceState.OK
        db.close()


def test_replay_hands_out_every_row_once(sample_db: Path) -> None:
    with assert_unchanged(sample_db.parent):
        db = opened(sample_db, replay=True)
        update = db.refresh()
        assert [row.id for row in update.episodes] == list(range(1, 221))
        assert not db.refresh()
        assert {k: s.episodes for k, s in db.summaries.items()} == SAMPLE_EPISODES
        db.close()


def test_replay_and_summary_paths_agree(sample_db: Path) -> None:
    with assert_unchanged(sample_db.parent):
        summarised, replayed = opened(sample_db), opened(sample_db, replay=True)
        summarised.refresh()
        add_up(summarised)
        replayed.refresh()
        assert {k: facts(s) for k, s in summarised.summaries.items()} == {
            k: facts(s) for k, s in replayed.summaries.items()
        }
        summarised.close()
        replayed.close()


def test_on_demand_reads(sample_db: Path) -> None:
    with assert_unchanged(sample_db.parent):
        db = opened(sample_db)
        db.refresh()
        assert [r.id for r in db.latest_episodes(None, 5)] == [216, 217, 218, 219, 220]
        assert [r.episode_num for r in db.latest_episodes(2, 3)] == [38, 39, 40]
        assert db.latest_episodes(2, 0) == []
        assert db.latest_episodes(99, 5) == []
        chunks = list(db.iter_episodes(1, chunk=50))
        assert [len(c) for c in chunks] == [50, 50, 20]
        assert [r.id for c in chunks for r in c] == list(range(1, 121))
        row = chunks[0][0]
        assert isinstance(row, EpisodeRow)
        assert set(row.to_json()) == set(EPISODE_FIELDS)
        assert row.entropy_loss is not None
        assert row.created_at is not None
        assert list(db.iter_episodes(99)) == []
        config = db.config(1)
        assert config.ok
        assert isinstance(config.data, dict)
        assert config.data["train_params"]["n_episodes"] == 120
        missing = db.config(99)
        assert not missing.ok
        assert missing.error is not None
        assert "no row" in missing.error
        db.close()


def test_incremental_refresh_picks_new_rows_exactly_once(sample_db: Path) -> None:
    db = opened(sample_db)
    try:
        with assert_unchanged(sample_db.parent):
            db.refresh()
        new_ids = [
            add_episode(sample_db, 2, episode_num=41, reward=99.0),
            add_episode(sample_db, 2, episode_num=42, reward=-3.0),
        ]
        exp_id = execute(
            sample_db,
            "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
            ("NeuroFlow", "LunarLander-v3", '{"train_params": {"n_episodes": 5}}', "2026-01-01"),
        )
        assert exp_id == 4
        new_ids.append(add_episode(sample_db, 4, episode_num=1, reward=1.5))
        with assert_unchanged(sample_db.parent):
            update = db.refresh()
            assert [row.id for row in update.episodes] == new_ids == [221, 222, 223]
            assert update.experiments == {2, 4}
            assert not update.reset
            assert not update.more
            two, four = db.summaries[2], db.summaries[4]
            assert two.episodes == 42
            assert two.best_reward == 99.0
            assert two.last_reward == -3.0
            assert two.last_episode_num == 42
            assert four.episodes == 1
            assert four.n_episodes == 5
            assert four.env == "LunarLander-v3"
            assert four.status(datetime.now()) is RunStatus.RUNNING
            assert not db.refresh()
        newest = add_episode(sample_db, 4, episode_num=2, reward=2.5)
        with assert_unchanged(sample_db.parent):
            update = db.refresh()
            assert [row.id for row in update.episodes] == [newest]
            assert db.summaries[4].episodes == 2
            assert not db.refresh()
            assert db.latest_episodes(4, 10)[-1].id == newest
    finally:
        db.close()


def test_experiment_without_episodes_then_episodes(tmp_path: Path) -> None:
    path = build_velora_db(tmp_path / "metrics.db", [RunSpec(planned=10, write=0)])
    db = opened(path)
    try:
        with assert_unchanged(tmp_path):
            update = db.refresh()
            assert update.experiments == {1}
            summary = db.summaries[1]
            assert summary.episodes == 0
            assert summary.status(datetime.now()) is RunStatus.EMPTY
            assert summary.n_episodes == 10
        add_episode(tmp_path / "metrics.db", 1, episode_num=1, reward=4.0)
        with assert_unchanged(tmp_path):
            update = db.refresh()
            assert [r.reward for r in update.episodes] == [4.0]
            assert db.summaries[1].status(datetime.now()) is RunStatus.RUNNING
    finally:
        db.close()


def test_missing_file_waits_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    with assert_unchanged(tmp_path):
        db = opened(path)
        update = db.refresh()
        assert state(db) is SourceState.WAITING
        assert db.status.message == NOT_CREATED
        assert update.status_changed is False  # it started out waiting
        assert not update
        assert db.latest_episodes(None, 5) == []
        with pytest.raises(ReadFailed) as failed:
            list(db.iter_episodes(1))
        assert failed.value.status.state is SourceState.WAITING
        assert not db.config(1).ok
        assert len(load_series(db, 1)) == 0
        assert db.refresh().episodes == []
        db.close()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_file_truncated_while_open(sample_db: Path) -> None:
    db = opened(sample_db)
    try:
        db.refresh()
        os.truncate(sample_db, 8192)
        with assert_unchanged(sample_db.parent):
            db.refresh()
            assert db.status.state in (SourceState.UNREADABLE, SourceState.OK)
            db.latest_episodes(None, 5)
            load_series(db, 1)
    finally:
        db.close()


def test_locked_then_ok_with_nothing_missed(sample_db: Path) -> None:
    db = opened(sample_db, busy_timeout=0.1)
    writer = sqlite3.connect(sample_db, isolation_level=None)
    try:
        db.refresh()
        committed = add_episode(sample_db, 1, episode_num=121, reward=1.0)
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute(
            "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
            " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
            " VALUES (1, 122, 2.0, 2, 1.0, 0.0, 0.0, 0.0, 0.0, '2026-11-24 10:00:00')"
        )
        with assert_unchanged(sample_db.parent):
            update = db.refresh()
            assert state(db) is SourceState.LOCKED
            assert update.status_changed
            assert update.episodes == []
            fresh = opened(sample_db, busy_timeout=0.1)  # one that never got to read
            fresh.refresh()
            assert state(fresh) is SourceState.LOCKED
            assert db.latest_episodes(None, 3) == []  # on-demand reads give up, no raise
        writer.execute("COMMIT")
        with assert_unchanged(sample_db.parent):
            update = db.refresh()
            assert state(db) is SourceState.OK
            assert update.status_changed
            assert [row.id for row in update.episodes] == [committed, committed + 1]
            assert db.summaries[1].episodes == 122
            fresh.refresh()
            assert state(fresh) is SourceState.OK
            assert fresh.summaries[1].episodes == 122
            fresh.close()
    finally:
        writer.close()
        db.close()


def test_file_that_appears_after_start(tmp_path: Path, make_db: MakeDb) -> None:
    path = tmp_path / "metrics.db"
    db = opened(path)
    try:
        with assert_unchanged(tmp_path):
            db.refresh()
            assert state(db) is SourceState.WAITING
        make_db(path, [7, 3])
        with assert_unchanged(tmp_path):
            update = db.refresh()
            assert update.status_changed
            assert update.experiments == {1, 2}
            assert state(db) is SourceState.OK
            assert {k: s.episodes for k, s in db.summaries.items()} == {1: 7, 2: 3}
    finally:
        db.close()


def test_file_deleted_and_replaced_by_a_new_one(sample_db: Path, make_db: MakeDb) -> None:
    folder = sample_db.parent
    db = opened(sample_db)
    try:
        db.refresh()
        assert len(db.summaries) == 3
        sample_db.unlink()
        with assert_unchanged(folder):
            update = db.refresh()
            assert state(db) is SourceState.WAITING
            assert "removed" in db.status.message
            assert update.status_changed
        # A new training run writes more rows than the old file had before we look again.
        make_db(sample_db, [250])
        with assert_unchanged(folder):
            update = db.refresh()
            assert state(db) is SourceState.OK
            assert update.reset
            assert {k: s.episodes for k, s in db.summaries.items()} == {1: 250}
            assert db.summaries[1].first_id == 1
            assert not db.refresh()
    finally:
        db.close()


def test_file_replaced_between_refreshes(sample_db: Path, make_db: MakeDb) -> None:
    folder = sample_db.parent
    db = opened(sample_db, replay=True)
    try:
        assert len(db.refresh().episodes) == 220
        replacement = make_db(folder.parent / f"{folder.name}-new" / "metrics.db", [5])
        os.replace(replacement, sample_db)
        with assert_unchanged(folder):
            update = db.refresh()
            assert update.reset
            assert [row.id for row in update.episodes] == [1, 2, 3, 4, 5]
            assert {k: s.episodes for k, s in db.summaries.items()} == {1: 5}
    finally:
        db.close()


def test_rows_vanishing_in_place_resets(sample_db: Path) -> None:
    db = opened(sample_db)
    try:
        db.refresh()
        execute(sample_db, "DELETE FROM episode WHERE id > 100")
        with assert_unchanged(sample_db.parent):
            update = db.refresh()
            assert update.reset
            assert {k: s.episodes for k, s in db.summaries.items()} == {1: 100, 2: 0, 3: 0}
            assert db.summaries[1].last_id == 100
    finally:
        db.close()


def test_hostile_data(tmp_path: Path) -> None:
    path = hostile_db(tmp_path / "metrics.db")
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.OK
        add_up(db)
        evil = db.summaries[2]
        assert evil.agent == "[/bold]Evil"
        assert evil.env == "CartPole v1"
        assert evil.created_at is None
        assert evil.n_episodes is None
        assert evil.episodes == 7
        assert evil.best_reward == 7.5  # inf, -inf, text and blobs are not rewards
        assert evil.last_reward == 6.0
        assert evil.nonfinite == 6
        assert db.summaries[3].n_episodes == 77
        assert db.summaries[3].episodes == 1
        assert db.summaries[4].n_episodes is None
        assert db.summaries[5].n_episodes is None
        assert db.summaries[5].created_at is None
        assert db.summaries[6].agent == "blob"  # a BLOB, decoded and cleaned
        assert db.summaries[6].env == "42"
        orphan = db.summaries[99]
        assert orphan.agent == "(no experiment row)"
        assert orphan.episodes == 1
        now = datetime.now()
        for summary in db.summaries.values():
            assert "\x1b" not in summary.agent + summary.env
            assert all(ord(c) >= 0x20 for c in summary.agent + summary.env)
            summary.status(now)
            summary.eta()
            summary.episodes_per_minute()
            json.dumps(summary.to_json(now), allow_nan=False)

        rows = db.latest_episodes(2, 10)
        assert [r.episode_num for r in rows] == [1, 2, 3, None, 5, 6, 7]
        assert rows[1].reward == math.inf
        assert math.isnan(rows[2].reward)
        assert rows[2].created_at is None
        assert rows[3].created_at is None
        assert rows[4].created_at is None
        assert math.isnan(rows[5].reward)
        assert rows[6].length is None
        assert [r.has_nonfinite for r in rows] == [False, True, True, True, True, True, True]
        for row in rows:
            json.dumps(row.to_json(), allow_nan=False)
        [odd_time] = db.latest_episodes(3, 5)
        assert odd_time.created_at is None

        config = db.config(2)
        assert not config.ok
        assert config.error is not None
        assert "not valid JSON" in config.error
        assert db.config(4).error is not None
        assert "nested too deeply" in (db.config(4).error or "")
        assert db.config(6).data == 3.5  # a REAL in a VARCHAR column reads back as '3.5'
        assert db.summaries[6].n_episodes is None

        series = load_series(db, 2)
        assert series.rows == 7
        for band in series.bands.values():
            assert not any(math.isinf(v) for v in band.mean + band.low + band.high)
        assert [v for v in series.bands["reward"].mean if not math.isnan(v)] == [5.0, 7.5, 6.0]
        db.close()


def test_hostile_data_replayed_agrees_with_summary(tmp_path: Path) -> None:
    path = hostile_db(tmp_path / "metrics.db")
    with assert_unchanged(tmp_path):
        summarised, replayed = opened(path), opened(path, replay=True)
        summarised.refresh()
        add_up(summarised)
        update = replayed.refresh()
        assert len(update.episodes) == 5 + 7 + 1 + 1
        assert {k: facts(s) for k, s in summarised.summaries.items()} == {
            k: facts(s) for k, s in replayed.summaries.items()
        }
        summarised.close()
        replayed.close()


def test_data_version_still_confirms_each_interval(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a CONFIRM_INTERVAL the refresh reads `data_version` too, which takes the read lock:
    a writer holding its lock for long shows as "locked" even though nothing was committed."""
    monkeypatch.setattr(database, "CONFIRM_INTERVAL", 0.0)
    db = opened(sample_db, busy_timeout=0.1)
    writer = sqlite3.connect(sample_db, isolation_level=None)
    try:
        db.refresh()
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute(INSERT_EPISODE)
        db.refresh()
        assert state(db) is SourceState.LOCKED
        writer.execute("COMMIT")
        assert [row.episode_num for row in db.refresh().episodes] == [500]
        assert state(db) is SourceState.OK
    finally:
        writer.close()
        db.close()


def test_wal_mode_is_followed_through_data_version(sample_db: Path) -> None:
    """WAL mode keeps no change counter in the header: commits are seen by `data_version`."""
    writer = sqlite3.connect(sample_db, isolation_level=None)
    db = opened(sample_db)
    try:
        assert writer.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        assert header_counter(sample_db) is None
        db.refresh()
        assert state(db) is SourceState.OK
        assert db.summaries[1].episodes == SAMPLE_EPISODES[1]
        assert not db.may_have_changed()
        writer.execute(INSERT_EPISODE)
        assert db.may_have_changed()
        assert [row.episode_num for row in db.refresh().episodes] == [500]
        assert not db.refresh()
    finally:
        db.close()
        writer.close()


def test_a_new_experiment_without_episodes_appears_during_a_stream(sample_db: Path) -> None:
    """While episodes of known experiments stream in, a new experiment row is seen by the next
    read of new episodes (it reads the newest experiment id too), before any episode of its
    own; one whose first episode comes with it is read with it."""
    db = opened(sample_db)
    try:
        db.refresh()
        add_episode(sample_db, 1, episode_num=121)
        db.refresh()
        new_run = ("NeuroFlow", "Pendulum-v1", "{}", "2026-11-24 10:00:00")
        insert = "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)"
        execute(sample_db, insert, new_run)
        add_episode(sample_db, 1, episode_num=122)
        update = db.refresh()
        assert [row.episode_num for row in update.episodes] == [122]
        assert 4 in update.experiments
        assert db.summaries[4].env == "Pendulum-v1"
        assert db.summaries[4].episodes == 0
        execute(sample_db, insert, new_run)
        add_episode(sample_db, 5, episode_num=1)  # its first episode: read with it
        update = db.refresh()
        assert update.experiments == {5}
        assert db.summaries[5].agent == "NeuroFlow"
        assert db.summaries[5].episodes == 1
    finally:
        db.close()
