"""Snapshots of every screen on the sample database, at 80x24 and 120x40.

Deterministic: a fixed clock, no watcher or heartbeat, and the sample copied into the test's
own folder, which is made the working directory: paths on screen are shown relative to it
(`metrics.db`). Update with `make snapshots` after an intended change.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.support.snapshots import SnapCompare, keys_then_settle, sample_app

pytestmark = pytest.mark.ui


SCREENS: Iterable[tuple[str, tuple[str, ...]]] = (
    ("list", ()),
    ("charts", ("enter",)),
    ("episodes", ("enter", "2")),
    ("config", ("enter", "3")),
    ("help", ("question_mark",)),
    ("help-end", ("question_mark", "end")),  # the filter's syntax
    ("compare", ("space", "space", "c")),
    ("diff", ("space", "space", "d")),
)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize(("name", "keys"), SCREENS, ids=[name for name, _ in SCREENS])
def test_screen(
    snap_compare: SnapCompare,
    name: str,
    keys: tuple[str, ...],
    size: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    app = sample_app(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(*keys))
