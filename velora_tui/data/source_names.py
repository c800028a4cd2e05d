"""How a source's path is said to the user. A remote database is opened through its local
stand-in in the cache folder (velora_tui/remote/stand_ins.py); everywhere it is shown, it is
named by where it really is (`node01:/runs/a/metrics.db`), and its host is known.

The remote layer registers each stand-in it makes (and each host's own status line) with the
process's `source_names`; everything that shows a path asks it. A path never registered is a
local one and is said as it is.
"""

from __future__ import annotations

import threading
from pathlib import Path


class SourceNames:
    """Which local paths stand for a remote database, and which paths are hosts' own lines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # links register from their threads
        self._labels: dict[Path, tuple[str, str]] = {}
        self._hosts: set[Path] = set()

    def register(self, path: Path, label: str, host: str) -> None:
        """`path` (a stand-in or its folder) stands for `label` on `host`."""
        with self._lock:
            self._labels[path] = (label, host)

    def label(self, path: Path) -> str | None:
        found = self._labels.get(path)
        return found[0] if found else None

    def host(self, path: Path) -> str | None:
        """The host a path's data comes from (None: this machine)."""
        found = self._labels.get(path)
        return found[1] if found else None

    def name(self, path: Path) -> str:
        """The path as the user knows it: a remote one as `host:path`, a local one as it is."""
        found = self._labels.get(path)
        return found[0] if found else str(path)

    def register_host(self, name: str) -> Path:
        """The path a host's own status line is given (see is_host)."""
        path = Path(name)
        with self._lock:
            self._hosts.add(path)
        return path

    def is_host(self, path: Path) -> bool:
        """Whether a status is a host's own line (connected, unreachable...), not a file's."""
        return path in self._hosts


source_names = SourceNames()
