"""Bad files: each gets one clear message, and never stops the other sources.

Cases test_database.py already covers on their own (text and non-SQLite files, a database of
another program, a table lacking a column, truncation at several sizes, velora 0.1.1, and the
hostile values of tests.support.hostile_db: text/blob/inf numbers, non-timestamps, episodes of
a missing experiment, 10 MB and 5,000-deep configs) are not repeated one by one here. This module
adds, for every kind of bad file: the state and message next to a good source (whose
experiments must still be listed), the CLI's stderr line and exit code, live updates of the good
source going on beside them, and the cases not covered there (renamed columns, an extra table,
duplicate and negative episode numbers, empty/null/list configs, no read permission, a folder
without write permission).

Permission checks do not apply to root; where the tests run as root, the commands whose
permissions matter run with the capabilities that bypass them dropped (`setpriv`), so they
check the real thing anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.cli import Lines, Result, check_output, strict_json
from tests.support.databases import SAMPLE_DB, add_episode, build_velora_db, execute
from tests.support.folders import assert_unchanged
from tests.support.processes import Spawn, child_env, python_command
from tests.support.reading import load_series
from velora_tui.data.database import MetricsDatabase, ReadFailed
from velora_tui.data.feed import ChangeFeed, live_updates
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import SourceState

TIMEOUT = 30.0


def bypasses_permissions() -> bool:
    """Root with CAP_DAC_OVERRIDE: file permission bits do not apply to this process."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for text in status:
            if text.startswith("CapEff:"):
                return bool(int(text.split()[1], 16) & (1 << 1))  # CAP_DAC_OVERRIDE
    return True


IS_ROOT = bypasses_permissions()
# Root without the capabilities that bypass file permissions (it keeps its uid, so it can still
# run the interpreter and read the files it owns whose mode allows it).
SETPRIV = shutil.which("setpriv")
UNPRIVILEGED = [SETPRIV, "--bounding-set=-dac_override,-dac_read_search", "--"] if SETPRIV else []
PERMISSIONS_TESTABLE = not IS_ROOT or bool(SETPRIV)
NEEDS_PERMISSIONS = pytest.mark.skipif(
    not PERMISSIONS_TESTABLE, reason="running as root without setpriv: permissions never apply"
)


# -- the bad files -----------------------------------------------------------------------------


def empty(path: Path) -> None:
    path.write_bytes(b"")


def text(path: Path) -> None:
    path.write_text("step,reward\n1,9.0\n2,11.0\n")


def truncated(path: Path) -> None:
    data = SAMPLE_DB.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the first half of a real velora database


def wrong_columns(path: Path) -> None:
    """velora's tables, but `reward` is called `score`."""
    build_velora_db(path, [5])
    execute(path, "ALTER TABLE episode RENAME COLUMN reward TO score")


def unreadable(path: Path) -> None:
    shutil.copyfile(SAMPLE_DB, path)
    path.chmod(0)


def velora_0_1_1(path: Path) -> None:
    build_velora_db(path, [6, 4], schema="0.1.1")


def extra_step_table(path: Path) -> None:
    """An older layout with a `step` table next to velora's two (ignored)."""
    build_velora_db(path, [5])
    execute(
        path,
        "CREATE TABLE step (id INTEGER PRIMARY KEY, episode_id INTEGER REFERENCES episode (id),"
        " action INTEGER, reward FLOAT)",
    )
    for episode in (1, 2):
        execute(
            path, "INSERT INTO step (episode_id, action, reward) VALUES (?, 0, 1.0)", (episode,)
        )


ODD_NUMS = [5, 5, -3, 0, 2]  # written after episodes 1..5: two duplicates, a negative, a zero


def odd_episode_numbers(path: Path) -> None:
    build_velora_db(path, [5])
    for num in ODD_NUMS:
        add_episode(path, 1, episode_num=num, reward=float(num))


# Configs velora never writes: empty text, JSON null, a JSON list, 10 MB of JSON.
ODD_CONFIGS: dict[int, str] = {
    2: "",
    3: "null",
    4: json.dumps([{"train_params": {"n_episodes": 3}}]),
    5: json.dumps({"train_params": {"n_episodes": 9}, "blob": "x" * 10_000_000}),
}


def odd_configs(path: Path) -> None:
    build_velora_db(path, [3])
    for exp_id, config in ODD_CONFIGS.items():
        execute(
            path,
            "INSERT INTO experiment (id, agent, env, config, created_at) VALUES (?, ?, ?, ?, ?)",
            (exp_id, "NeuroFlow", "CartPole-v1", config, str(datetime.now())),
        )
        add_episode(path, exp_id, episode_num=1, reward=1.0)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    build: Callable[[Path], None]
    state: SourceState
    message: str = ""

    @property
    def readable(self) -> bool:
        return self.state is SourceState.OK


FAILING = [
    Kind(
        "empty",
        empty,
        SourceState.WAITING,
        "file is empty; waiting for training to create the tables",
    ),
    Kind("text", text, SourceState.UNREADABLE, "not a SQLite database"),
    Kind(
        "truncated",
        truncated,
        SourceState.UNREADABLE,
        "damaged database: database disk image is malformed",
    ),
    Kind(
        "wrong-columns",
        wrong_columns,
        SourceState.UNREADABLE,
        "not a velora metrics database (table episode lacks reward)",
    ),
    Kind("no-read-permission", unreadable, SourceState.UNREADABLE, "permission denied"),
]
WORKING = [
    Kind("velora-0.1.1", velora_0_1_1, SourceState.OK),
    Kind("extra-step-table", extra_step_table, SourceState.OK),
    Kind("odd-episode-numbers", odd_episode_numbers, SourceState.OK),
    Kind("odd-configs", odd_configs, SourceState.OK),
]
KINDS = {kind.name: kind for kind in FAILING + WORKING}


# -- every command at once ---------------------------------------------------------------------


# A Monitor on the given sources, in its own process (so that, as root, it can run without the
# permission bypass): prints every source's status and every experiment it lists.
MONITOR = """
import json, sys
from velora_tui.data.monitor import Monitor
monitor = Monitor(sys.argv[1:])
monitor.refresh()
print(json.dumps({
    "statuses": [[str(s.path), str(s.state), s.message] for s in monitor.statuses()],
    "experiments": sorted([str(s.db), s.id] for s in monitor.summaries()),
}))
"""


def run(*args: str | Path, unprivileged: bool = False) -> Result:
    """`velora-tui ARGS` to completion (or, when the first argument is "-c", `python -c ...`);
    as root, `unprivileged` drops the permission bypass."""
    script = args[0] == "-c"
    command = [sys.executable, *map(str, args)] if script else python_command(*args)
    if unprivileged and IS_ROOT:
        command = [*UNPRIVILEGED, *command]
    proc = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        env=child_env(),
    )
    result = Result(
        proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8")
    )
    check_output(result.out, result.err)
    return result


@dataclass(frozen=True, slots=True)
class Files:
    good: Path  # a copy of the velora sample (3 experiments)
    bad: dict[str, Path]  # kind name -> its metrics.db
    read_only: Path  # a good metrics.db in a folder without write permission
    results: dict[str, Result]

    def folders(self) -> list[Path]:
        return [self.good.parent, self.read_only.parent, *(p.parent for p in self.bad.values())]


@contextlib.contextmanager
def unchanged(folder: Path) -> Iterator[None]:
    """assert_unchanged, or (for a folder whose file this process cannot read) the same check
    on names, sizes and mtimes."""
    if all(os.access(p, os.R_OK) for p in folder.iterdir()):
        with assert_unchanged(folder):
            yield
        return

    def shape() -> list[tuple[str, int, int]]:
        return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())

    before = shape()
    yield
    assert shape() == before, f"{folder} changed"


def line(path: Path, state: SourceState, message: str) -> str:
    return f"velora-tui: {path}: {state}: {message}"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    base = tmp_path_factory.mktemp("bad-files")
    good = base / "good" / "metrics.db"
    good.parent.mkdir()
    shutil.copyfile(SAMPLE_DB, good)
    bad: dict[str, Path] = {}
    for kind in KINDS.values():
        path = base / kind.name / "metrics.db"
        path.parent.mkdir()
        kind.build(path)
        bad[kind.name] = path
    read_only = base / "read-only" / "metrics.db"
    build_velora_db(read_only, [8, 4])
    read_only.parent.chmod(0o555)
    failing = [bad[k.name] for k in FAILING]
    working = [bad[k.name] for k in WORKING]
    commands: dict[str, list[str | Path]] = {
        "monitor-unreadable": ["-c", MONITOR, bad["no-read-permission"], good],
        "ls-failing": ["ls", *failing],
        "ls-failing-and-good": ["ls", "--json", *failing, good],
        "ls-working": ["ls", "--json", *working],
        "show-empty-config": ["show", "2", bad["odd-configs"]],
        "tail-odd-numbers": ["tail", "-n", "20", "--json", bad["odd-episode-numbers"]],
        "tail-read-only": ["tail", "-n", "3", "--json", read_only],
    }
    try:
        with contextlib.ExitStack() as stack:
            for folder in [good.parent, read_only.parent, *(p.parent for p in bad.values())]:
                stack.enter_context(unchanged(folder))
            with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1) as pool:
                futures = {
                    name: pool.submit(run, *args, unprivileged=PERMISSIONS_TESTABLE)
                    for name, args in commands.items()
                }
                results = {name: future.result() for name, future in futures.items()}
        yield Files(good, bad, read_only, results)
    finally:
        bad["no-read-permission"].chmod(0o644)
        read_only.parent.chmod(0o755)


# -- failing files -----------------------------------------------------------------------------


def check_beside_good(files: Files, kind: Kind) -> None:
    """A monitor on the bad file and the good one: the bad one says what is wrong, the good
    one's experiments are all there."""
    path = files.bad[kind.name]
    with assert_unchanged(path.parent), assert_unchanged(files.good.parent):
        monitor = Monitor([path, files.good])
        try:
            updates = monitor.refresh()
            statuses = {s.path: s for s in monitor.statuses()}
            assert statuses[files.good].state is SourceState.OK
            assert statuses[path].state is kind.state
            if kind.message:
                assert statuses[path].message == kind.message
            good = sorted(s.id for s in monitor.summaries() if s.db == files.good)
            assert good == [1, 2, 3]
            assert files.good in {u.db for u in updates}
            database = monitor.databases[path]
            if not kind.readable:
                assert database.summaries == {}
                assert database.latest_episodes(None, 5) == []
                with pytest.raises(ReadFailed) as failed:
                    list(database.iter_episodes(1))
                assert failed.value.status == statuses[path]
                assert not database.config(1).ok
                assert len(load_series(database, 1)) == 0
                assert not monitor.refresh([path])  # same bytes: nothing new to say
        finally:
            monitor.close()


@pytest.mark.parametrize("name", [k.name for k in FAILING if k.name != "no-read-permission"])
def test_failing_file_beside_a_good_one(files: Files, name: str) -> None:
    check_beside_good(files, KINDS[name])


@NEEDS_PERMISSIONS
def test_unreadable_file_beside_a_good_one(files: Files) -> None:
    """chmod 000 (in a process without root's permission bypass)."""
    result = files.results["monitor-unreadable"]
    assert result.code == 0, result.err
    data = strict_json(result.out)
    path = files.bad["no-read-permission"]
    assert data["statuses"] == [
        [str(path), "unreadable", "permission denied"],
        [str(files.good), "ok", ""],
    ]
    assert data["experiments"] == [[str(files.good), exp_id] for exp_id in (1, 2, 3)]


@NEEDS_PERMISSIONS
def test_cli_names_every_failing_file_and_exits_1(files: Files) -> None:
    """`ls` on bad files only: one line each on stderr, nothing on stdout, exit 1."""
    result = files.results["ls-failing"]
    assert result.code == 1
    assert result.out == ""
    assert result.err_lines == [
        line(files.bad[kind.name], kind.state, kind.message) for kind in FAILING
    ]


@NEEDS_PERMISSIONS
def test_cli_lists_the_good_source_beside_failing_ones(files: Files) -> None:
    result = files.results["ls-failing-and-good"]
    assert result.code == 0
    listed = strict_json(result.out)
    assert sorted((item["db"], item["id"]) for item in listed) == [
        (str(files.good), exp_id) for exp_id in (1, 2, 3)
    ]
    assert result.err_lines == [
        line(files.bad[kind.name], kind.state, kind.message) for kind in FAILING
    ]


def test_bad_sources_never_stop_a_live_good_one(files: Files, tmp_path: Path) -> None:
    """Live: the good source's new episodes arrive while every bad one stays as it was, and
    a bad file that becomes good (velora creating its tables in the empty file) is read."""
    good = tmp_path / "good" / "metrics.db"
    good.parent.mkdir()
    shutil.copyfile(SAMPLE_DB, good)
    late = tmp_path / "late" / "metrics.db"
    late.parent.mkdir()
    late.touch()
    bad = [p for name, p in files.bad.items() if not KINDS[name].readable]
    monitor = Monitor([*bad, late, good])
    monitor.refresh()
    monitor.start_replaying()
    before = {s.path: s for s in monitor.statuses()}

    async def follow() -> list[tuple[Path, int]]:
        feed = ChangeFeed(monitor, heartbeat=0.2)
        seen: list[tuple[Path, int]] = []
        stream = live_updates(monitor, feed)

        async def write() -> None:
            for num in (121, 122, 123):
                await asyncio.to_thread(add_episode, good, 1, episode_num=num)
            await asyncio.to_thread(build_velora_db, late, [4])

        writer = asyncio.create_task(write())
        try:
            async with asyncio.timeout(TIMEOUT):
                async for updates in stream:
                    seen.extend((u.db, r.id) for u in updates for r in u.episodes)
                    if len(seen) >= 7:
                        break
        finally:
            feed.stop()
            await writer
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        return seen

    try:
        with contextlib.ExitStack() as stack:
            for path in bad:
                stack.enter_context(unchanged(path.parent))
            seen = asyncio.run(follow())
        assert sorted(seen) == sorted(
            [(good, 221), (good, 222), (good, 223)] + [(late, n) for n in range(1, 5)]
        )
        after = {s.path: s for s in monitor.statuses()}
        for path in bad:
            assert after[path] == before[path]
        assert after[late].state is after[good].state is SourceState.OK
    finally:
        monitor.close()


# -- files that are odd but readable -----------------------------------------------------------


def opened(path: Path) -> MetricsDatabase:
    """Read and added up, as `ls` and the app's list end up."""
    database = MetricsDatabase(path)
    database.refresh()
    while database.scan_step() is not None:
        pass
    assert database.status.state is SourceState.OK, database.status
    return database


def test_old_schemas_are_read(files: Files) -> None:
    """velora 0.1.1 (no entropy_loss) and a layout with an extra `step` table."""
    for name in ("velora-0.1.1", "extra-step-table"):
        path = files.bad[name]
        with assert_unchanged(path.parent):
            database = opened(path)
            try:
                counts = {k: s.episodes for k, s in database.summaries.items()}
                assert counts == ({1: 6, 2: 4} if name == "velora-0.1.1" else {1: 5})
                rows = database.latest_episodes(1, 3)
                assert len(rows) == 3
                assert all((r.entropy_loss is None) is (name == "velora-0.1.1") for r in rows)
            finally:
                database.close()
    result = files.results["ls-working"]
    assert result.code == 0
    assert result.err == ""
    listed = {(Path(item["db"]).parent.name, item["id"]) for item in strict_json(result.out)}
    assert {("velora-0.1.1", 1), ("velora-0.1.1", 2), ("extra-step-table", 1)} <= listed


def test_duplicate_and_negative_episode_numbers(files: Files) -> None:
    """Shown as stored, in commit order; counts are rows; nothing is dropped or merged."""
    path = files.bad["odd-episode-numbers"]
    nums = [1, 2, 3, 4, 5, *ODD_NUMS]
    with assert_unchanged(path.parent):
        database = opened(path)
        try:
            summary = database.summaries[1]
            assert summary.episodes == len(nums)
            assert summary.last_episode_num == ODD_NUMS[-1]
            assert [r.episode_num for r in database.latest_episodes(1, 50)] == nums
            series = load_series(database, 1)
            assert series.episode == [float(n) for n in nums]
            json.dumps(summary.to_json(datetime.now()), allow_nan=False)
        finally:
            database.close()
    tail = files.results["tail-odd-numbers"]
    assert tail.code == 0
    assert [strict_json(row)["episode_num"] for row in tail.lines] == nums
    listed = {
        (item["db"], item["id"]): item for item in strict_json(files.results["ls-working"].out)
    }
    assert listed[(str(path), 1)]["episodes"] == len(nums)
    assert listed[(str(path), 1)]["last_episode_num"] == ODD_NUMS[-1]


def test_empty_null_list_and_huge_configs(files: Files) -> None:
    path = files.bad["odd-configs"]
    with assert_unchanged(path.parent):
        database = opened(path)
        try:
            empty_config = database.config(2)
            assert not empty_config.ok
            assert empty_config.error == "config is empty"
            null = database.config(3)
            assert null.ok
            assert null.data is None
            assert null.pretty() == "null"
            listed = database.config(4)
            assert listed.ok
            assert listed.data == [{"train_params": {"n_episodes": 3}}]
            huge = database.config(5)
            assert huge.ok
            assert isinstance(huge.data, dict)
            assert len(huge.data["blob"]) == 10_000_000
            planned = {k: s.n_episodes for k, s in database.summaries.items()}
            # Only an object's train_params.n_episodes is a plan; a list holding one is not.
            assert planned == {1: 3, 2: None, 3: None, 4: None, 5: 9}
            assert {k: s.episodes for k, s in database.summaries.items()} == {
                1: 3,
                2: 1,
                3: 1,
                4: 1,
                5: 1,
            }
        finally:
            database.close()
    shown = files.results["show-empty-config"]
    assert shown.code == 0
    assert "config: config is empty" in shown.err_lines


# -- permissions -------------------------------------------------------------------------------


@NEEDS_PERMISSIONS
def test_folder_without_write_permission(files: Files, spawn: Spawn) -> None:
    """The monitor needs no write access anywhere: list, tail, and follow live rows."""
    folder = files.read_only.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555
    with assert_unchanged(folder):
        database = opened(files.read_only)
        assert {k: s.episodes for k, s in database.summaries.items()} == {1: 8, 2: 4}
        database.close()
    tail = files.results["tail-read-only"]
    assert tail.code == 0
    assert [strict_json(row)["episode_num"] for row in tail.lines] == [2, 3, 4]
    if not IS_ROOT:
        return  # a writer of the same user cannot write in a read-only folder either
    # Root keeps its permission bypass here (it is the training process); the reader does not.
    command = python_command("tail", "-f", "--json", "-n", "1", files.read_only)
    follower = spawn([*UNPRIVILEGED, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert follower.stdout is not None
    assert follower.stderr is not None
    out, err = Lines(follower.stdout), Lines(follower.stderr)
    out.take(1)  # loaded: following from here
    try:
        new = [add_episode(files.read_only, 2, episode_num=5 + n) for n in range(3)]
        rows = [strict_json(row) for row in out.take(4)[1:]]
        assert [row["id"] for row in rows] == new
    finally:
        follower.terminate()
        assert follower.wait(TIMEOUT) == 0
    assert err.rest() == []
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.db"]
