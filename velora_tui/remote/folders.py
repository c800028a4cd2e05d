"""Folders and files of velora-tui's own (the cache, the stand-ins, the ssh sockets): ours alone.

A folder is used only when it is a real folder (not a symbolic link), owned by our uid, that
nobody else can write to; it is then kept at mode 0700 (one of ours with read bits for others,
as an older velora-tui or a umask made it, is tightened). Anything else is refused with one
line naming the folder and what is wrong, as OpenSSH refuses a config file others can write:
another user who can write to a folder could swap a stand-in for their own, plant a
symbolic link where a file is about to be created, or listen as a fake ssh master.

Files created in such a folder are opened without following a symbolic link (O_NOFOLLOW), and
with O_EXCL where they are made fresh.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

MODE = 0o700


class FolderError(OSError):
    """A folder or file of velora-tui's that is not ours alone (the message says which, why)."""


def private_folder(path: Path, *, create: bool = True) -> Path:
    """`path`, a folder that only we can use: created 0700 when missing (its missing parents
    too: those are not checked), else checked. FolderError when it is not ours alone."""
    if create:
        os.makedirs(path.parent, MODE, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, MODE)
    # Checked and tightened through a descriptor of the folder itself, so that what is checked
    # is what is changed, and a symbolic link is never followed.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise _refused(path, exc) from None
    try:
        found = os.fstat(fd)
        if found.st_uid != os.getuid():
            raise FolderError(
                f"refused folder {path}: it belongs to another user (uid {found.st_uid});"
                " velora-tui keeps its cache and ssh sockets in folders of yours alone"
            )
        mode = stat.S_IMODE(found.st_mode)
        if mode & 0o022:
            raise FolderError(
                f"refused folder {path}: others can write to it (mode {mode:04o});"
                " remove it, or make it yours alone (chmod 700) if its contents are yours"
            )
        if mode != MODE:
            os.fchmod(fd, MODE)
    finally:
        os.close(fd)
    return path


def _refused(path: Path, exc: OSError) -> FolderError:
    if os.path.islink(path):
        why = "it is a symbolic link (give the folder itself)"
    elif os.path.lexists(path) and not os.path.isdir(path):
        why = "it is not a folder"
    else:
        why = exc.strerror or str(exc)
    return FolderError(f"refused folder {path}: {why}")


def open_file(path: Path, flags: int, *, fresh: bool = False) -> int:
    """A descriptor of a file in one of our folders, never through a symbolic link (O_NOFOLLOW);
    `fresh`: created here and now (O_CREAT | O_EXCL, mode 0600), never one found in its place."""
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    if fresh:
        flags |= os.O_CREAT | os.O_EXCL
    try:
        return os.open(path, flags, 0o600)
    except OSError:
        if os.path.islink(path):
            raise FolderError(f"refused file {path}: it is a symbolic link") from None
        raise


def create_file(path: Path) -> Path:
    """A new empty file (0600) where none is (see open_file), closed again: for SQLite to open."""
    os.close(open_file(path, os.O_WRONLY, fresh=True))
    return path
