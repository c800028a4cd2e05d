"""How a source's path is said to the user. A remote database is read from its local copy in
the cache folder (velora_tui/remote/mirror.py); everywhere it is shown, it is named by where it
really is (`node01:/runs/a/metrics.db`), and its host is known."""

from __future__ import annotations

from pathlib import Path

_LABELS: dict[Path, tuple[str, str]] = {}


def register(path: Path, label: str, host: str) -> None:
    """`path` (a local copy or its folder) stands for `label` on `host`."""
    _LABELS[path] = (label, host)


def label(path: Path) -> str | None:
    found = _LABELS.get(path)
    return found[0] if found else None


def host(path: Path) -> str | None:
    """The host a path's data comes from (None: this machine)."""
    found = _LABELS.get(path)
    return found[1] if found else None


def name(path: Path) -> str:
    """The path as the user knows it: a remote one as `host:path`, a local one as it is."""
    found = _LABELS.get(path)
    return found[0] if found else str(path)


_HOSTS: set[Path] = set()


def register_host(name: str) -> Path:
    """The path a host's own status line is given (see is_host)."""
    path = Path(name)
    _HOSTS.add(path)
    return path


def is_host(path: Path) -> bool:
    """Whether a status is a host's own line (connected, unreachable...), not a file's."""
    return path in _HOSTS
