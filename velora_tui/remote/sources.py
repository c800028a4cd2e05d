"""Local and remote sources together, read by the same Monitor: a remote database is a stand-in
file to it (stand_ins.py: a stand-in's folder is a directory source), which it opens through
RemoteFiles, whose connections have the host answer every statement (link.py). The Monitor's
statuses then speak of the remote paths, and each host gets a line of its own: connected /
connecting / unreachable / refused."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from velora_tui.data.files import FileSystem, Readable, system
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import SourceState, SourceStatus
from velora_tui.data.source_names import source_names
from velora_tui.remote.address import Host, RemoteSource, parse_source

if TYPE_CHECKING:
    from velora_tui.remote.link import LinkStatus
    from velora_tui.remote.ssh import SshOptions

T = TypeVar("T")
SYNC_TIMEOUT = 60.0  # a one-shot command waits at most this long for a host's databases

# By link.LinkState (a StrEnum: its members are these strings). The links and the stand-ins are
# imported only when a source is remote: every command imports this module, and their import
# is a measurable part of start-up (docs/performance.md, Remote hosts).
_HOST_STATES = {
    "connected": SourceState.OK,
    "connecting": SourceState.WAITING,
    "unreachable": SourceState.NOT_RESPONDING,
    "refused": SourceState.UNREADABLE,
    "unreadable": SourceState.UNREADABLE,
}
_REMOTE_STATES = {
    "waiting": SourceState.WAITING,
    "locked": SourceState.LOCKED,
    "unreadable": SourceState.UNREADABLE,
}


def split_sources(
    sources: Sequence[Path | str],
) -> tuple[list[Path | str], list[RemoteSource]]:
    """Local paths and remote sources (AddressError for a refused one)."""
    local: list[Path | str] = []
    remote: list[RemoteSource] = []
    for source in sources:
        found = parse_source(str(source))
        if found is None:
            local.append(source)
        else:
            remote.extend(found)
    return local, remote


class Remotes:
    """The links to every host named, and the folders of their stand-ins."""

    def __init__(
        self,
        sources: Sequence[RemoteSource],
        python: str = "python3",
        options: SshOptions | None = None,
    ) -> None:
        from velora_tui.remote.link import Link
        from velora_tui.remote.stand_ins import source_folder

        self.sources = list(dict.fromkeys(sources))
        self.folders = [source_folder(source.label) for source in self.sources]
        by_host: dict[Host, list[int]] = {}
        for index, source in enumerate(self.sources):
            by_host.setdefault(source.host, []).append(index)
        self.links = [
            Link(
                host,
                [self.sources[i] for i in indexes],
                [self.folders[i] for i in indexes],
                python,
                options,
            )
            for host, indexes in by_host.items()
        ]

    def sync(self, timeout: float = SYNC_TIMEOUT) -> list[LinkStatus]:
        """Every host connected at once, each until it has said which databases it holds (or
        failed to connect); the links keep running (`stop` ends them)."""
        threads = [
            threading.Thread(target=link.sync, args=(timeout,), daemon=True) for link in self.links
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout + 5)
        return [link.status for link in self.links]

    def start(self) -> None:
        for link in self.links:
            link.start()

    def stop(self) -> None:
        for link in self.links:
            link.stopping.set()
        for link in self.links:
            link.stop()

    def host_statuses(self) -> list[LinkStatus]:
        return [link.status for link in self.links]


class RemoteFiles(FileSystem):
    """The file system calls of a Monitor with remote sources: a stand-in is connected to its
    host; everything else is the system's (looked up at each use, as `files.system` is)."""

    def __init__(self, remotes: Remotes) -> None:
        self.remotes = remotes

    def far(self, path: Path) -> bool:
        return any(path in link.places for link in self.remotes.links)

    def stat(self, path: Path) -> Any:
        return system().stat(path)

    def open(self, path: Path) -> int:
        return system().open(path)

    def read(self, fd: int, size: int, offset: int) -> bytes:
        return system().read(fd, size, offset)

    def close(self, fd: int) -> None:
        system().close(fd)

    def listdir(self, path: Path) -> list[tuple[str, bool]]:
        return system().listdir(path)

    def watch(self, paths: Sequence[Path], make: Callable[[], T]) -> T:
        return system().watch(paths, make)

    def connect(self, path: Path, busy_timeout: float) -> Readable:
        from velora_tui.remote.link import RemoteConnection

        for link in self.remotes.links:
            place = link.places.get(path)
            if place is not None:
                return RemoteConnection(link, place)
        return system().connect(path, busy_timeout)


class RemoteMonitor(Monitor):
    """A Monitor whose directory sources include the remote sources' stand-in folders."""

    def __init__(
        self, local: Sequence[Path | str], remotes: Remotes, patience: float | None = None
    ) -> None:
        self.remotes = remotes
        super().__init__([*local, *remotes.folders], patience=patience, files=RemoteFiles(remotes))

    def adopt_stand_ins(self) -> list[Path]:
        """The stand-ins the links have made that no walk of their folders found yet, added
        now. A host that answers at once (the head start) makes them while the first read or
        the file watch is starting, whose walk or events then miss them until the next walk,
        2 s later; a database added here is checked (and read) with the others."""
        added = []
        for link in self.remotes.links:
            for stand_in in list(link.stand_ins.values()):
                path = stand_in.path
                new = stand_in.ident is not None and path not in self.databases
                if new and self.owns(path) is not None:
                    added.append(path)
        return added

    def discover(self, wait_for: float | None = None) -> list[Path]:
        return super().discover(wait_for) + self.adopt_stand_ins()

    def discover_due(self) -> list[Path]:
        return super().discover_due() + self.adopt_stand_ins()

    def start_checks(self) -> dict[Path, Future[bool] | bool]:
        self.adopt_stand_ins()
        return super().start_checks()

    def statuses(self) -> list[SourceStatus]:
        remote_states: dict[Path, tuple[str, str]] = {}
        databases: set[Path] = set()
        for link in self.remotes.links:
            for (spec, path), found in list(link.remote_states.items()):
                if (spec, path) in link.database_states or (spec, path) in link.stand_ins:
                    place = link.place(spec, path)
                    databases.add(place)
                else:
                    place = link.folders[spec]  # the source's own state
                remote_states[place] = found
        shown = []
        for status in super().statuses():
            databases.discard(status.path)
            state, why = remote_states.get(status.path, ("ok", ""))
            if state in _REMOTE_STATES and status.state in (SourceState.OK, SourceState.WAITING):
                status = SourceStatus(status.path, _REMOTE_STATES[state], why)
            shown.append(status)
        # Databases with no stand-in yet (unreadable there from the start): a state all the same.
        for place in sorted(databases):
            state, why = remote_states[place]
            if state in _REMOTE_STATES:
                shown.append(SourceStatus(place, _REMOTE_STATES[state], why))
        for link in self.remotes.links:
            host = link.status
            message = host.describe().partition(": ")[2]
            place = source_names.register_host(host.host)
            shown.append(SourceStatus(place, _HOST_STATES[host.state], message))
        return shown

    def close(self, wait_for: float = 1.0) -> None:
        self.remotes.stop()
        super().close(wait_for)


def file_statuses(monitor: Monitor) -> list[SourceStatus]:
    """The statuses of files and folders (a host's own line left out)."""
    return [s for s in monitor.statuses() if not source_names.is_host(s.path)]


def several_hosts(monitor: Monitor) -> bool:
    """Whether the sources come from more than one host (this machine counting as one)."""
    hosts = {source_names.host(path) for path in monitor.databases}
    return len(hosts) > 1


def open_sources(
    sources: Sequence[Path | str],
    *,
    python: str = "python3",
    sync: bool = True,
    patience: float | None = None,
) -> tuple[Monitor, Remotes | None]:
    """A Monitor on the sources. With remote ones: their hosts connected first, and their
    databases found, when `sync` (the one-shot commands; else the links are not started)."""
    local, remote = split_sources(sources)
    if not remote:
        return Monitor(local, patience=patience), None
    remotes = Remotes(remote, python)
    if sync:
        remotes.sync()
    return RemoteMonitor(local, remotes, patience=patience), remotes


def with_host(monitor: Monitor, db: Path, data: dict[str, Any]) -> dict[str, Any]:
    """An `ls --json` object: `db` named as the user knows it, its `host` (null: this machine)
    and, for a remote one, the host's state (`host_state`: state, since, when last heard)."""
    host = source_names.host(db)
    data["db"] = source_names.name(db)
    data["host"] = host
    if host is not None and isinstance(monitor, RemoteMonitor):
        for link in monitor.remotes.links:
            if link.host.label == host:
                data["host_state"] = link.status.to_json()
    return data
