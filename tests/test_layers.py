"""Who may import whom: screens and widgets never import the app (they reach it through
screens.base.Host or messages that bubble up to it), so the app can import them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
