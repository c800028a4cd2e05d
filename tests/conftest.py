"""Fixtures only; the helpers they use (and that tests import) are in tests/support/.

- `sample_db`: a private copy of the real velora 0.2.0 sample (the original is never touched).
- `make_db`: velora-schema files of either schema (0.2.0 or 0.1.1): `support.build_velora_db`.
- `schema`: a test run once per velora schema.
- `serve`: `velora-tui serve` on a free port; none of its tabs' processes outlives the test.
- `sshd`: a real OpenSSH server as host `vt` (commands keep no reader for the next one).
- `spawn` / `simulator`: processes (the simulator as a separate writer, the CLI) that are always
  killed at teardown.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.browser import TAB_MODULE, Served, command_line
from tests.support.databases import SAMPLE_DB, SCHEMAS, MakeDb, build_velora_db
from tests.support.processes import Simulator, Spawn, child_env, python_command, stop_process
from tests.support.sshd import SSHD, SshServer
from tests.support.waiting import wait_for
from velora_tui.remote.launch import KEEP_ENV, end_kept_readers
from velora_tui.remote.ssh import control_dir


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    """A private, writable copy of the real velora 0.2.0 sample at tmp_path/metrics.db."""
    target = tmp_path / "metrics.db"
    shutil.copyfile(SAMPLE_DB, target)  # copyfile: contents only, the copy is writable
    return target


@pytest.fixture
def make_db() -> MakeDb:
    """`make_db(path, runs, schema=...)`: build a velora-schema file (see build_velora_db)."""
    return build_velora_db


@pytest.fixture(params=SCHEMAS)
def schema(request: pytest.FixtureRequest) -> str:
    """Parametrize a test over both velora schemas."""
    value: str = request.param
    return value


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal gives it: a shell's background job starts with SIGINT ignored, and
    every process it starts inherits that (`tail -f` then never ends on the tests' SIGINT)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a process; every one still alive at teardown is terminated (then killed)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        args: Sequence[str | Path],
        *,
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=child_env(),
        )
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        stop_process(proc)


@pytest.fixture
def simulator(spawn: Spawn, tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    """Start `velora-tui simulate DB` (velora's writing pattern) as a separate process.

    Its stderr goes to a log file outside the database folder; the process is killed at
    teardown.
    """

    def start(
        db: Path,
        *,
        episodes: int = 50,
        rate: float = 0.0,
        experiments: int = 1,
        extra: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        log = tmp_path_factory.mktemp("simulator-log") / "stderr.txt"
        with log.open("wb") as handle:
            return spawn(
                python_command(
                    "simulate",
                    db,
                    "--episodes",
                    str(episodes),
                    "--rate",
                    str(rate),
                    "--experiments",
                    str(experiments),
                    *extra,
                ),
                stderr=handle,
            )

    return start


@pytest.fixture
def sshd(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SshServer]:
    """A real OpenSSH server on 127.0.0.1 (its own keys and config); this process and its
    children use its ssh_config (VELORA_TUI_SSH_CONFIG) and a cache folder of their own."""
    if not SSHD.exists() or shutil.which("ssh") is None:
        pytest.skip("OpenSSH (sshd, ssh) is not installed: apt-get install openssh-server")
    folder = tmp_path_factory.mktemp("sshd")
    server = SshServer(folder)
    monkeypatch.setenv("VELORA_TUI_SSH_CONFIG", str(server.config))
    monkeypatch.setenv("VELORA_TUI_CACHE", str(folder / "cache"))
    # Commands keep no reader for the next one (remote/keeper.py) unless a test says so: each
    # test's commands connect as a first command does.
    monkeypatch.setenv(KEEP_ENV, "0")
    server.start()
    yield server
    end_kept_readers()
    server.stop()
    shutil.rmtree(control_dir(), ignore_errors=True)  # its shared connections' sockets


@pytest.fixture
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Served]]:
    """`serve(sources, args=..., env=..., cwd=...)`: `velora-tui serve` on a free port
    (tests.support.Served); stopped at teardown, and then none of its tabs' processes may be
    left."""
    started: list[Served] = []

    def start(sources: Sequence[Path | str], **options: Any) -> Served:
        log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
        served = Served(sources, log, **options)
        started.append(served)
        return served

    yield start
    for served in started:
        tabs = served.tabs()
        served.stop()
        for pid in tabs:
            wait_for(
                lambda pid=pid: TAB_MODULE not in command_line(pid),  # type: ignore[misc]
                timeout=10,
                what=f"tab process {pid} to end with its server",
            )
