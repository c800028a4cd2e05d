"""Who may import whom.

Screens and widgets never import the app (they reach it through screens.base.Host or messages
that bubble up to it), so the app can import them. The data layer and the headless commands work
without Textual.

`velora_tui/data/` is the layer both the app and the command line stand on; `ls`, `tail`,
`show`, `export` and `diff` are what runs over SSH and in scripts, where Textual's import would
only add start-up time. So none of them may import it. Each check runs in a fresh interpreter
(this one has imported Textual already, for other tests), importing one module after another
and looking at `sys.modules` after each, so a failure names the import that brought it in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT, child_env

DATA_MODULES = sorted(
    f"velora_tui.{layer}.{path.stem}"
    for layer in ("data", "remote")  # remote/: what the headless commands read other hosts with
    for path in (PROJECT_ROOT / "velora_tui" / layer).glob("*.py")
    if path.stem != "__init__"
)

# Imports the listed modules one by one; after each, no module of Textual may be loaded. Then,
# as a check of the check, the app's module, which must bring Textual in.
IMPORTS = """
import importlib, sys

def textual_loaded():
    return sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))

for name in sys.argv[1:]:
    importlib.import_module(name)
    loaded = textual_loaded()
    if loaded:
        sys.exit(f"importing {name} loaded {len(loaded)} Textual modules: {loaded[:3]}")
import velora_tui.app
if not textual_loaded():
    sys.exit("the check is broken: velora_tui.app loaded no Textual module")
"""

# Runs headless commands in turn, each as `velora-tui ARGS` would (click's main, in this
# process), then looks at what is loaded. Arguments: DB, then one command line per argument.
COMMANDS = """
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
    loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
    if loaded:
        sys.exit(f"velora-tui {command} loaded {len(loaded)} Textual modules: {loaded[:3]}")
"""


def run_python(script: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )


def test_the_data_layer_does_not_import_textual() -> None:
    assert "velora_tui.data.database" in DATA_MODULES  # the glob found the layer
    result = run_python(IMPORTS, "velora_tui.data", *DATA_MODULES)
    assert result.returncode == 0, result.stderr


def test_the_command_line_module_does_not_import_textual() -> None:
    """What cli.py imports at module level, and what `tail -f` imports when it starts
    following (its feed and the CPU placement)."""
    result = run_python(
        IMPORTS,
        "velora_tui.cli",
        "velora_tui.data.feed",
        "velora_tui.placement",
        "velora_tui.alert_cli",
    )
    assert result.returncode == 0, result.stderr


def test_headless_commands_do_not_import_textual(sample_db: Path) -> None:
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
    result = run_python(COMMANDS, sample_db, *commands)
    assert result.returncode == 0, result.stderr
    assert "CartPole-v1" in result.stdout  # the commands did run and print


# The app's module, then a first load (what the first screen shows), then a scan step: only the
# scan may bring SQLAlchemy in.
FIRST_SCREEN = """
import sys
import velora_tui.app
from velora_tui.data.sources import Monitor

def loaded(*names):
    return sorted(m for m in sys.modules if m.split(".")[0] in names)

if loaded("sqlalchemy", "sqlmodel", "pydantic", "plotext", "textual_plotext"):
    sys.exit(f"importing velora_tui.app loaded {loaded('sqlalchemy', 'sqlmodel', 'plotext')[:3]}")
monitor = Monitor(sys.argv[1:])
monitor.refresh()
if not monitor.summaries():
    sys.exit("the check is broken: the first load found no experiment")
if loaded("sqlalchemy", "sqlmodel", "pydantic"):
    sys.exit(f"a first load loaded {loaded('sqlalchemy', 'sqlmodel', 'pydantic')[:3]}")
next(monitor.scan())
if not loaded("sqlmodel"):
    sys.exit("the check is broken: the scan ran without SQLModel's statements")
"""


def test_the_first_screen_needs_no_sqlalchemy(sample_db: Path) -> None:
    """SQLAlchemy and SQLModel cost more to import than all of Textual: the app's module and a
    first load do without them (data/first_load_sql.py); they come in with the scan."""
    result = run_python(FIRST_SCREEN, sample_db)
    assert result.returncode == 0, result.stderr


# -- screens and widgets never import the app ------------------------------------------------

PACKAGE = Path(__file__).resolve().parent.parent / "velora_tui"
UI_MODULES = sorted((PACKAGE / "screens").glob("*.py")) + sorted((PACKAGE / "widgets").glob("*.py"))


def imports(source: str, module: str) -> set[str]:
    """Every module that `source`, the module named `module`, imports, at its top or inside a
    function, relative imports resolved; `from package import name` counts as importing
    `package.name` too (it may be a module)."""
    package = module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


@pytest.mark.parametrize("path", UI_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_screens_and_widgets_do_not_import_the_app(path: Path) -> None:
    assert "velora_tui.app" not in imports(path.read_text(encoding="utf-8"), module_name(path))


@pytest.mark.parametrize(
    "line",
    [
        "import velora_tui.app",
        "from velora_tui import app",
        "from .. import app as application",
        "from ..app import VeloraApp",
        "def later():\n    from velora_tui.app import make_app",
        "if TYPE_CHECKING:\n    from velora_tui.app import VeloraApp",
    ],
)
def test_every_way_of_importing_the_app_is_found(line: str) -> None:
    assert "velora_tui.app" in imports(line, "velora_tui.screens.sample")
    assert "velora_tui.app" not in imports(line.replace("app", "messages"), "velora_tui.x.y")
