"""`slurm:HOST`: the user's jobs on a login node reached by ssh (squeue and the rest run there
through remote/ssh.py's command line, never a local shell), and the runs below the jobs'
folders read through the remote layer as `HOST:FOLDER` sources.

The folders are those of the jobs Slurm lists when the source is opened; a job that starts
later in one of them (jobs submitted from one folder, the usual case) has its runs found and
tied like the others, one in a new folder is read from the next start. Each run is tied to its
job by its remote path and time, as locally.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from velora_tui.data.slurm import PathTemplate, SlurmSource
from velora_tui.data.slurm_client import SlurmClient
from velora_tui.data.slurm_monitor import SlurmTies
from velora_tui.data.source_names import source_names
from velora_tui.remote.address import Host, RemoteSource, check_name
from velora_tui.remote.sources import RemoteMonitor, Remotes
from velora_tui.remote.ssh import READY, SshOptions, ssh_argv


class RemoteSlurmMonitor(SlurmTies, RemoteMonitor):
    """The Monitor of `slurm:HOST`: the jobs' folders are remote sources, fixed when opened."""

    watch_folders = False

    def __init__(
        self,
        local: Sequence[Path | str],
        remotes: Remotes,
        client: SlurmClient,
        template: PathTemplate | None,
        label: str,
        host: Host,
        patience: float | None = None,
        clock: type[datetime] = datetime,
    ) -> None:
        self._slurm_setup(client, template, label, clock)
        self._host_prefix = f"{host.label}:"
        super().__init__(local, remotes, patience=patience)

    def place(self, db: Path) -> Path:
        name = source_names.name(db)
        if name.startswith(self._host_prefix):
            return Path(posixpath.normpath(name[len(self._host_prefix) :]))
        return db

    def folder_path(self, folder: str) -> Path:
        return Path(posixpath.normpath(folder))


def remote_client(host: Host, options: SshOptions | None = None) -> SlurmClient:
    ssh = options or SshOptions.from_env()
    return SlurmClient(through=lambda words: ssh_argv(host, words, ssh), ready=READY)


def open_remote_slurm(
    source: SlurmSource,
    local: Sequence[Path | str],
    template: PathTemplate | None = None,
    *,
    python: str = "python3",
    sync: bool = True,
    patience: float | None = None,
    client: SlurmClient | None = None,
) -> tuple[RemoteSlurmMonitor, Remotes]:
    """The jobs asked of the host now (through ssh, at most the client's timeout), their
    folders made remote sources; `sync`: their databases found first (the one-shot
    commands), else the links are left to be started (the app)."""
    assert source.host is not None
    host = Host(check_name(source.host, "host"))
    client = client or remote_client(host)
    client.refresh()
    template = template or PathTemplate()
    folders: list[str] = []
    for job in client.jobs():
        folder = template.folder(job)
        if folder is not None and folder.startswith("/"):
            folders.append(posixpath.normpath(folder))
    # A folder below another is read with it.
    unique = sorted(set(folders))
    kept = [f for f in unique if not any(f.startswith(o.rstrip("/") + "/") for o in unique)]
    remotes = Remotes([RemoteSource(host, folder) for folder in kept], python)
    if sync:
        remotes.sync()
    monitor = RemoteSlurmMonitor(local, remotes, client, template, source.label, host, patience)
    return monitor, remotes
