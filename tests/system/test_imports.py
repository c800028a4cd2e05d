"""What each command imports when it runs.

Who may import whom is checked statically before the tests run (`make lint`: lint-imports, the
contracts in pyproject.toml): data/, remote/ and report/ import no Textual, no layer imports one
above it, and there is no module circle. What is checked here is what a static check cannot see:
what each command loads at run time, since the commands are imported lazily (cli/__init__.py)
and some of their imports wait until they are needed. `ls`, `tail`, `show`, `export` and `diff`
are what runs over SSH and in scripts, where Textual's import would only add start-up time.
Each check runs in a fresh interpreter (this one has imported Textual already, for other tests).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import child_env

# Runs headless commands in turn, each as `velora-tui ARGS` would (click's main, in this
# process), then looks at what is loaded. Arguments: DB, then one command line per argument.
RUN_COMMANDS = """
import shlex, sys
from velora_tui.cli import main

db, *commands = sys.argv[1:]
for command in commands:
    args = [*shlex.split(command), db]
    try:
        main(args, prog_name="velora-tui")
    except SystemExit as done:
        if done.code not in (0, None):
            sys.exit(f"velora-tui {command} exited {done.code}")
    for heavy in ("textual", "sqlalchemy", "sqlmodel"):
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == heavy)
        if loaded:
            sys.exit(f"velora-tui {command} loaded {len(loaded)} {heavy} modules: {loaded[:3]}")
"""


def run_python(script: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )


def test_headless_commands_import_neither_textual_nor_sqlalchemy(sample_db: Path) -> None:
    """What runs over SSH and in scripts starts fast: no Textual, and no SQLAlchemy (every
    statement comes compiled from data/compiled_sql.py)."""
    commands = [
        "ls",
        "ls --json",
        "tail -n 5",
        "tail -n 5 --json",
        "show 1",
        "show 1 --json",
        "export 1 --format csv",
        "export 1 --format jsonl",
        "diff 1 3",
        "diff 1 3 --json",
        "alerts",
        "alerts --json",
    ]
    result = run_python(RUN_COMMANDS, sample_db, *commands)
    assert result.returncode == 0, result.stderr
    assert "CartPole-v1" in result.stdout  # the commands did run and print


def test_ls_imports_no_sqlalchemy(sample_db: Path, tmp_path: Path) -> None:
    """`ls` in every form, on a directory of several databases too, reads with the compiled
    statements alone: SQLAlchemy's import was most of a small `ls` (issue 26)."""
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        (runs / name).mkdir(parents=True)
        shutil.copyfile(sample_db, runs / name / "metrics.db")
    commands = ["ls", "ls --json", "ls --group", "ls --group --json", "ls --group-by agent"]
    for source in (sample_db, runs):
        result = run_python(RUN_COMMANDS, source, *commands)
        assert result.returncode == 0, result.stderr
        assert "CartPole-v1" in result.stdout  # they did list the experiments


# The app's module, then a first load (what the first screen shows), then the scan that adds
# everything up, then the series of a chart: none brings SQLAlchemy in.
FIRST_SCREEN = """
import sys
import velora_tui.tui.app
from velora_tui.data.monitor import Monitor

def loaded(*names):
    return sorted(m for m in sys.modules if m.split(".")[0] in names)

if loaded("sqlalchemy", "sqlmodel", "pydantic", "plotext", "textual_plotext"):
    sys.exit(f"importing the app loaded {loaded('sqlalchemy', 'sqlmodel', 'plotext')[:3]}")
monitor = Monitor(sys.argv[1:])
monitor.refresh()
if not monitor.summaries():
    sys.exit("the check is broken: the first load found no experiment")
if loaded("sqlalchemy", "sqlmodel", "pydantic"):
    sys.exit(f"a first load loaded {loaded('sqlalchemy', 'sqlmodel', 'pydantic')[:3]}")
monitor.scan_all()
from velora_tui.data.series import SeriesReader
summary = monitor.summaries()[0]
if not len(SeriesReader(monitor.databases[summary.db], summary.id).read()):
    sys.exit("the check is broken: no series was read")
if loaded("sqlalchemy", "sqlmodel", "pydantic"):
    sys.exit(f"the scan or a series loaded {loaded('sqlalchemy', 'sqlmodel', 'pydantic')[:3]}")
"""


def test_reading_needs_no_sqlalchemy(sample_db: Path) -> None:
    """SQLAlchemy and SQLModel cost more to import than all of Textual: the app's module, a
    first load, the scan and a chart's series do without them (data/compiled_sql.py)."""
    result = run_python(FIRST_SCREEN, sample_db)
    assert result.returncode == 0, result.stderr


HELP = """
import json, sys
from velora_tui.cli import main
try:
    main(sys.argv[1:], prog_name="velora-tui")
except SystemExit:
    pass
print(json.dumps({
    "commands": sorted(m for m in sys.modules if m.startswith("velora_tui.cli.")),
    "heavy": sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "sqlite3")),
}))
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["ls", "--help"]])
def test_help_imports_only_what_it_shows(args: list[str]) -> None:
    """`velora-tui --help` imports no command's module, nor what they read with; `velora-tui
    ls --help` only ls's module and the helpers the commands share."""
    result = run_python(HELP, *args)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    if args[0] == "ls":
        assert loaded["commands"] == ["velora_tui.cli.common", "velora_tui.cli.ls"]
        assert not any(m.startswith("textual") for m in loaded["heavy"])
    else:
        assert loaded == {"commands": [], "heavy": []}
