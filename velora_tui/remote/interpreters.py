"""Which Python each host runs for `python3` (or --remote-python's name), remembered here.

A name found through the remote PATH may be a version manager's shim (pyenv, asdf): a script
that runs a program or two before the interpreter, ~0.1 s on every connection
(docs/performance.md, Remote hosts). The reader says which interpreter it is (`exe` in its
hello); the next connection to that host runs it by its path. When that path no longer
starts a reader there (the Python was removed, the host is another machine now), it is
forgotten and the connection is made again at once with the name.

One small file per host and name, in a folder of ours alone in the cache folder
(`velora-tui cache info` lists them, `cache clear` removes them). What it holds came from the
host, so it is checked as untrusted: an absolute path of printable characters to a program
named python (`python3`, `python3.11`), only ever run on that same host name, as one word of
the remote command (ssh.py quotes it). A host can thus make us run nothing but a program of its
own named python, where we would have run python3 anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, TypeGuard

from velora_tui.remote.address import Host
from velora_tui.remote.folders import FolderError, open_file, private_folder
from velora_tui.remote.ssh import cache_dir
from velora_tui.remote.stand_ins import digest

FOLDER = "interpreters"
MAX_PATH = 1024
MAX_FILE = 4096
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_PYTHON = re.compile(r"python[0-9.]*")


def folder() -> Path:
    return cache_dir() / FOLDER


def acceptable(exe: Any) -> TypeGuard[str]:
    """Whether a path the host gave may be run there: absolute, printable, short, a python."""
    return (
        isinstance(exe, str)
        and exe.startswith("/")
        and len(exe) <= MAX_PATH
        and not _UNSAFE.search(exe)
        and _PYTHON.fullmatch(exe.rpartition("/")[2]) is not None
    )


def _file(host: Host, python: str) -> Path:
    return folder() / digest(f"{host.label}\0{python}")


def remembered(host: Host, python: str) -> str | None:
    """The interpreter `python` was on `host` last time, if it is remembered (in a folder of
    ours alone: one that others can write to holds nothing we run)."""
    try:
        private_folder(folder(), create=False)
    except (OSError, FolderError):
        return None
    found = _read(_file(host, python))
    if found is None or found.get("host") != host.label or found.get("python") != python:
        return None
    exe = found.get("exe")
    return exe if acceptable(exe) else None


def remember(host: Host, python: str, exe: Any) -> None:
    """Remember what `python` is on `host` (nothing when it is not an acceptable path, is the
    name itself, or the cache folder cannot be used: the next connection then uses the name)."""
    if not acceptable(exe) or exe == python or remembered(host, python) == exe:
        return
    text = json.dumps({"host": host.label, "python": python, "exe": exe}).encode()
    path = _file(host, python)
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    with contextlib.suppress(OSError, FolderError):
        private_folder(cache_dir())
        private_folder(folder())
        fd = open_file(part, os.O_WRONLY, fresh=True)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)
        os.replace(part, path)  # whole or not at all, for another process reading it
    with contextlib.suppress(OSError):
        os.unlink(part)


def forget(host: Host, python: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(_file(host, python))


def listed() -> list[tuple[str, str, str]]:
    """(host, name, interpreter) for each one remembered (`cache info`)."""
    found = []
    with contextlib.suppress(OSError, FolderError):
        if not os.path.lexists(folder()):
            return []
        private_folder(folder(), create=False)
        for entry in sorted(folder().iterdir()):
            data = _read(entry)
            if data is None:
                continue
            host, python, exe = data.get("host"), data.get("python"), data.get("exe")
            if isinstance(host, str) and isinstance(python, str) and acceptable(exe):
                found.append((host, python, exe))
    return found


def clear() -> None:
    """Forget them all (`cache clear`); the folder is checked first, never a link followed."""
    with contextlib.suppress(OSError, FolderError):
        if os.path.lexists(folder()):
            private_folder(folder(), create=False)
            shutil.rmtree(folder(), ignore_errors=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        fd = open_file(path, os.O_RDONLY)
    except (OSError, FolderError):
        return None
    try:
        data = json.loads(os.read(fd, MAX_FILE))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None
