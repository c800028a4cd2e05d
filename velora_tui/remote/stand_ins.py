"""Stand-ins: one small local file for each remote database, which the data layer opens in its
place. The host answers every question about the database (link.py, reader.py); its stand-in
only carries what the local data layer looks at between reads, at no cost on the wire:

- the SQLite header's first 28 bytes, whose file change counter (bytes 24-27) the link moves
  each time the host says the database changed, so that the stand-in changes as the remote file
  does (file events, the feed's polls, `MetricsDatabase.may_have_changed` all work unchanged);
- its identity: a remote file replaced by another gets a new stand-in (a new inode), and the
  data layer reads it from scratch, as it does a local file replaced.

Each process keeps its own stand-ins (`<cache>/remote/<pid>-<source>/<database>/metrics.db`,
folders of ours alone, removed when it ends; those of a process that was killed are removed by
the next one), so the cache holds about 100 bytes a remote database: nothing of the data.
<source> is a hash of the source as the user wrote it, <database> a hash of the remote path:
nothing the remote sends decides where a file is written.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import threading
from pathlib import Path

from velora_tui.remote.folders import open_file, private_folder
from velora_tui.remote.ssh import cache_dir

NAME = "metrics.db"
LABEL = "source"  # the source as the user wrote it, for `cache info`
MAX_PATH = 4_096
# A rollback-journal database's header as far as the data layer reads it: the magic string,
# the journal mode bytes (1: legacy, so that the change counter is what tells a change), and
# the counter at 24.
_HEADER = bytearray(100)
_HEADER[:16] = b"SQLite format 3\x00"
_HEADER[16:18] = (4096).to_bytes(2, "big")
_HEADER[18] = _HEADER[19] = 1


def remote_root() -> Path:
    return cache_dir() / "remote"


def made_root() -> Path:
    """The stand-ins' folder, and the cache folder above it, made or checked: ours alone
    (folders.py; FolderError names the one that is not)."""
    private_folder(cache_dir())
    return private_folder(remote_root())


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


_MADE: dict[str, Path] = {}
_MADE_LOCK = threading.Lock()
_CLEANED: set[Path] = set()  # the roots whose abandoned folders were removed


def source_folder(source_label: str) -> Path:
    """This process's folder for one remote source (created 0700, removed when it ends)."""
    with _MADE_LOCK:
        root = made_root()
        folder = root / f"{os.getpid()}-{digest(source_label)}"
        if _MADE.get(source_label) == folder and folder.is_dir():
            return folder
        if root not in _CLEANED:
            _CLEANED.add(root)
            _remove_abandoned(root)
        # What is there is of a process of the same pid, long gone (only we can write here).
        if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
            folder.unlink()
        shutil.rmtree(folder, ignore_errors=True)
        os.mkdir(folder, 0o700)  # fresh: one found in its place is an error
        private_folder(folder)
        atexit.register(shutil.rmtree, folder, True)
        fd = open_file(folder / LABEL, os.O_WRONLY, fresh=True)
        try:
            os.write(fd, source_label.encode("utf-8", "replace")[:MAX_PATH])
        finally:
            os.close(fd)
        _MADE[source_label] = folder
        return folder


def _remove_abandoned(root: Path) -> None:
    """Folders of processes that ended without removing theirs (killed), and what older
    versions of velora-tui kept here (whole copies of remote databases)."""
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True


class StandIn:
    """The stand-in of one remote database, written by its link's thread only."""

    def __init__(self, folder: Path, remote_path: str) -> None:
        self.folder = folder / digest(remote_path)
        self.path = self.folder / NAME
        self.remote_path = remote_path
        self.ident: str | None = None
        self.entropy = True
        self.counter = 0

    def start(self, ident: str, entropy: bool) -> None:
        """The host found the database: the same file as before moves the stand-in's counter
        (read it again: a connection lost meanwhile may have missed changes); another file
        gets a new stand-in (the data layer then reads it from scratch)."""
        if ident == self.ident and entropy == self.entropy and self.path.exists():
            self.changed()
            return
        self.ident, self.entropy = ident, entropy
        self._write_new()

    def _write_new(self) -> None:
        private_folder(self.folder)
        fresh = self.folder / "new.tmp"
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()
        self.counter += 1
        fd = open_file(fresh, os.O_WRONLY, fresh=True)
        try:
            os.write(fd, self._header())
        finally:
            os.close(fd)
        os.replace(fresh, self.path)

    def changed(self) -> None:
        """The host says the database changed: its counter moves (a write in place, the same
        inode: the same database to the data layer)."""
        if self.ident is None:
            return
        self.counter += 1
        try:
            fd = open_file(self.path, os.O_WRONLY)
        except FileNotFoundError:  # removed under us (`cache clear`): made again, read anew
            self._write_new()
            return
        try:
            os.pwrite(fd, (self.counter & 0xFFFFFFFF).to_bytes(4, "big"), 24)
        finally:
            os.close(fd)

    def _header(self) -> bytes:
        header = bytearray(_HEADER)
        header[24:28] = (self.counter & 0xFFFFFFFF).to_bytes(4, "big")
        return bytes(header)


def _checked_root() -> Path | None:
    """The stand-ins' folder if there is one, checked as made_root does (never created here)."""
    root = remote_root()
    if not os.path.lexists(root):
        return None
    private_folder(cache_dir(), create=False)
    return private_folder(root, create=False)


def cache_sizes() -> dict[str, int]:
    """Bytes held in the cache folder, by what each folder below it holds: `pid source`
    (a process's folder for a source), or the folder's name."""
    root = _checked_root()
    if root is None:
        return {}
    sizes: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for entry in sorted(root.iterdir()):
            total = 0
            for folder, _, files in os.walk(entry):  # never into a symbolic link
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(folder, name)).st_size
            with contextlib.suppress(OSError):
                if not entry.is_dir():
                    total = os.lstat(entry).st_size
            sizes[_described(entry)] = total
    return sizes


def _described(entry: Path) -> str:
    pid = entry.name.split("-", 1)[0]
    try:
        fd = open_file(entry / LABEL, os.O_RDONLY)
    except OSError:
        return entry.name
    try:
        label = os.read(fd, MAX_PATH).decode("utf-8", "replace")
    finally:
        os.close(fd)
    return f"{label} (process {pid})"


def cache_size() -> int:
    return sum(cache_sizes().values())


def clear_cache() -> Path:
    """The stand-ins' folder removed, never anything a symbolic link leads to: the folder
    itself is checked (FolderError), and rmtree removes a link found inside without following
    it. Running processes make theirs again at their host's next change."""
    root = _checked_root()
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
    return remote_root()
