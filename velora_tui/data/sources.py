"""Several sources at once: metrics.db files, and directories holding any number of them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from velora_tui.data.database import MetricsDatabase
from velora_tui.data.files import FileSystem, system
from velora_tui.data.records import (
    ExperimentSummary,
    RunStatus,
    SourceState,
    SourceStatus,
    Update,
)

DB_NAME = "metrics.db"
_EPOCH = datetime(1970, 1, 1)
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", ".git", ".venv", "venv"}
_SIDE_FILES = ("-journal", "-wal", "-shm")


def database_for(path: Path) -> Path:
    """The database a changed file belongs to (`metrics.db-journal` -> `metrics.db`)."""
    name = path.name
    for suffix in _SIDE_FILES:
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path


def find_databases(root: Path, files: FileSystem | None = None) -> list[Path]:
    """Every metrics.db below `root` as os.walk would find them (top down, sorted, hidden and
    tool directories left out, symbolic links not followed), but each of any kind: what it is,
    a FIFO or a directory, is for its own stat to say. Nothing beyond a directory listing is
    asked: a symbolic link's target is never looked up here."""
    files = files if files is not None else system()
    found: list[Path] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = files.listdir(directory)
        except OSError:
            continue
        below = []
        for name, is_dir in sorted(entries):
            if name == DB_NAME:
                found.append(directory / name)
            elif is_dir and name not in _SKIP_DIRS and not name.startswith("."):
                below.append(directory / name)
        stack.extend(reversed(below))
    return found


def _is_directory(files: FileSystem, path: Path) -> bool:
    try:
        return stat.S_ISDIR(files.stat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class WatchRoot:
    path: Path
    recursive: bool


class Monitor:
    """Every source the user named, each with its own reader: one never stops another."""

    def __init__(
        self,
        sources: Sequence[Path | str],
        busy_timeout: float = 1.0,
        *,
        files: FileSystem | None = None,
    ) -> None:
        self.busy_timeout = busy_timeout
        self.files = files if files is not None else system()
        self.replay = False
        self.specs = [Path(os.path.abspath(os.path.expanduser(str(s)))) for s in sources]
        # A directory named metrics.db is a database source, which says what it is.
        self.directories = [
            s for s in self.specs if s.name != DB_NAME and _is_directory(self.files, s)
        ]
        self.databases: dict[Path, MetricsDatabase] = {}
        for spec in self.specs:
            if spec not in self.directories:
                self._add(spec)
        self.discover()

    def _add(self, path: Path) -> bool:
        if path in self.databases:
            return False
        self.databases[path] = MetricsDatabase(
            path, self.busy_timeout, self.replay, files=self.files
        )
        return True

    def start_replaying(self) -> None:
        """From now on, files that appear or are replaced hand out all their rows as new."""
        self.replay = True
        for database in self.databases.values():
            database.replay = True

    def discover(self) -> list[Path]:
        """Look for metrics.db files that appeared below the directory sources."""
        return [
            db
            for root in self.directories
            for db in find_databases(root, self.files)
            if self._add(db)
        ]

    def owns(self, path: Path) -> Path | None:
        """The database a changed path belongs to, adding it when it is new in a directory."""
        db = database_for(path)
        if db in self.databases:
            return db
        if db.name == DB_NAME and any(root in db.parents for root in self.directories):
            self._add(db)
            return db
        return None

    def watch_roots(self) -> list[WatchRoot]:
        roots = {WatchRoot(d, True) for d in self.directories}
        for db in self.databases:
            if not any(root in db.parents for root in self.directories):
                roots.add(WatchRoot(db.parent, False))
        return sorted(roots, key=lambda r: (str(r.path), r.recursive))

    def refresh(self, paths: Iterable[Path] | None = None) -> list[Update]:
        """Refresh the given databases (all when None); only non-empty updates come back."""
        targets = list(self.databases) if paths is None else list(paths)
        updates = []
        for path in targets:
            database = self.databases.get(path)
            if database is None:
                continue
            update = database.refresh()
            if update:
                updates.append(update)
        return updates

    def reload(self) -> list[Update]:
        """Forget everything read so far and read every database again."""
        for database in self.databases.values():
            database.reload()
        updates = self.refresh()
        for update in updates:
            update.reset = True
        return updates

    def scanning(self) -> bool:
        """Some database's first load is still being added up (MetricsDatabase.scan_step)."""
        return any(database.scanning for database in self.databases.values())

    def scan(self) -> Iterator[list[Update]]:
        """Add up the first loads' rows, one short read of each database in turn; after each
        round, the experiments whose summaries became exact. Ends when nothing is left that
        can be read now."""
        while True:
            updates = []
            progressed = False
            for path, database in list(self.databases.items()):
                exact = database.scan_step()
                if exact is None:
                    continue
                progressed = True
                if exact:
                    updates.append(Update(path, experiments=exact))
            if not progressed:
                return
            yield updates

    def scan_all(self) -> list[Path]:
        """Add up everything now; returns the databases that could not be added up."""
        for _ in self.scan():
            pass
        return [path for path, database in self.databases.items() if database.scanning]

    def statuses(self) -> list[SourceStatus]:
        waiting = [
            SourceStatus(d, SourceState.WAITING, "no metrics.db found below it yet")
            for d in self.directories
            if not any(d in db.parents for db in self.databases)
        ]
        return [db.status for db in self.databases.values()] + waiting

    def summaries(self) -> list[ExperimentSummary]:
        return [s for db in self.databases.values() for s in db.summaries.values()]

    def summary(self, key: tuple[Path, int]) -> ExperimentSummary | None:
        database = self.databases.get(key[0])
        return database.summaries.get(key[1]) if database else None

    def find(self, exp_id: int) -> list[ExperimentSummary]:
        return [db.summaries[exp_id] for db in self.databases.values() if exp_id in db.summaries]

    def close(self) -> None:
        for database in self.databases.values():
            database.close()


def sort_summaries(
    summaries: Iterable[ExperimentSummary], now: datetime
) -> list[ExperimentSummary]:
    """Running experiments first (newest run first, so runs training side by side keep their
    places), then the others by most recent activity."""

    def key(s: ExperimentSummary) -> tuple[int, float, str, int]:
        running = s.status(now) is RunStatus.RUNNING
        moment = (s.created_at or s.last_activity) if running else (s.last_activity or s.created_at)
        return (
            0 if running else 1,
            -((moment - _EPOCH).total_seconds() if moment else 0.0),
            str(s.db),
            -s.id,
        )

    return sorted(summaries, key=key)
