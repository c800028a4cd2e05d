""" "This folder is byte-for-byte unchanged": the check behind the monitor's first rule (it never
changes the file nor creates one, docs/reading-rules.md)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

Snapshot = dict[str, tuple[str, int, int]]


def dir_snapshot(path: Path) -> Snapshot:
    """Every file and directory below `path`: name -> (sha256, mtime_ns, size).

    Directories are included (sha256 "<dir>") so that a file created and removed again, which
    changes the directory's mtime, is noticed as well.
    """
    snapshot: Snapshot = {}
    root_stat = path.stat()
    snapshot["."] = ("<dir>", root_stat.st_mtime_ns, 0)
    for current, dirs, files in os.walk(path):
        dirs.sort()
        base = Path(current)
        for name in dirs:
            st = (base / name).stat()
            snapshot[(base / name).relative_to(path).as_posix()] = ("<dir>", st.st_mtime_ns, 0)
        for name in sorted(files):
            file = base / name
            try:
                st = file.stat()
            except OSError:  # a symbolic link loop, or a link to nothing
                st = file.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(file.read_bytes()).hexdigest()
            else:  # a FIFO, a socket, a device: never read (a FIFO's open waits for a writer)
                digest = f"<{stat.filemode(st.st_mode)}>"
            snapshot[file.relative_to(path).as_posix()] = (digest, st.st_mtime_ns, st.st_size)
    return snapshot


@contextlib.contextmanager
def assert_unchanged(path: Path) -> Iterator[Snapshot]:
    """Fails if anything below `path` (bytes, mtimes, names) differs after the block."""
    before = dir_snapshot(path)
    yield before
    after = dir_snapshot(path)
    assert after == before, f"{path} changed: {_diff(before, after)}"


def _diff(before: Snapshot, after: Snapshot) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"added={added} removed={removed} changed={changed}"
