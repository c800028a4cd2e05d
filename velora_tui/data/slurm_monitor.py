"""The Monitor of `slurm:` sources: the folders of the user's jobs (each job's WorkDir, or the
`--slurm-path` template) are directory sources, added as jobs appear (every `discover`, which
the live feed runs on its heartbeat, asks the SlurmClient for what it knows: never waiting for
Slurm); each experiment is tied to the job that wrote it (data/slurm.py's `tie`), and carries
it (`ExperimentSummary.job`): a run whose job ended is never "stalled".

Slurm's own state is a status line of its own, `slurm:` (or `slurm:HOST`): how many jobs, or
"not responding" when squeue does not answer in time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from velora_tui.data.monitor import Monitor
from velora_tui.data.records import ExperimentSummary, SourceState, SourceStatus
from velora_tui.data.slurm import Job, JobTie, PathTemplate, Snapshot, tie
from velora_tui.data.slurm_client import SlurmClient, SlurmState
from velora_tui.data.source_names import source_names

_STATES = {
    SlurmState.OK: SourceState.OK,
    SlurmState.WAITING: SourceState.WAITING,
    SlurmState.NOT_RESPONDING: SourceState.NOT_RESPONDING,
    SlurmState.FAILING: SourceState.UNREADABLE,
}


class SlurmTies(Monitor):
    """What a Monitor of `slurm:` sources adds, local or remote: the jobs' folders, each
    experiment tied to its job (`ExperimentSummary.job`), Slurm's own status line. Its
    subclasses say where a database is on the cluster (`place`) and whether a job's folder
    becomes a directory source here (`watch_folders`)."""

    watch_folders = True

    def _slurm_setup(
        self, client: SlurmClient, template: PathTemplate | None, label: str, clock: type[datetime]
    ) -> None:
        self.slurm = client
        self.template = template or PathTemplate()
        self.slurm_label = label
        self.clock = clock
        self.job_folders: dict[str, list[Path]] = {}
        self._by_folder: dict[Path, list[str]] = {}
        self._ties: dict[tuple[Path, int], JobTie | None] = {}
        self._tied_with: Snapshot | None = None
        self.slurm_path_status = source_names.register_host(label)

    def place(self, db: Path) -> Path:
        """Where the database is on the cluster (its path here, for a local source)."""
        return db

    def folder_path(self, folder: str) -> Path:
        """A job's folder as `place` gives databases."""
        return Path(os.path.abspath(os.path.expanduser(folder)))

    # -- folders ---------------------------------------------------------------------------

    def _add_job_folders(self) -> bool:
        """Each job's folder (not yet known) recorded, and made a directory source when
        `watch_folders`; whether any was."""
        added = False
        for job in self.slurm.jobs():
            if job.job_id in self.job_folders:
                continue
            folder = self.template.folder(job)
            if folder is None:
                if not job.pending:
                    self.job_folders[job.job_id] = []
                continue
            path = self.folder_path(folder)
            self.job_folders[job.job_id] = [path]
            self._by_folder.setdefault(path, []).append(job.job_id)
            if not self.watch_folders:
                continue
            # A folder below one already walked needs no source of its own.
            known = self.directories
            if path not in known and not any(p in path.parents for p in known):
                self.directories.append(path)
                added = True
        return added

    def discover(self, wait_for: float | None = None) -> list[Path]:
        self._add_job_folders()
        return super().discover(wait_for)

    def discover_due(self) -> list[Path]:
        """The live feed's heartbeat: new jobs' folders added (their walks start now, what they
        find is added by a later heartbeat), Slurm asked again when due; never waits."""
        self._add_job_folders()
        return super().discover_due()

    @property
    def unsettled(self) -> bool:
        """Always: new jobs may appear, so every heartbeat looks (discover, never waiting)."""
        return True

    def refresh_jobs(self, wait: float | None = None) -> None:
        """Slurm asked now and its jobs' folders added (the one-shot commands)."""
        self.slurm.refresh(wait)
        self._add_job_folders()

    # -- runs and jobs ---------------------------------------------------------------------

    def _tie(self, summary: ExperimentSummary) -> ExperimentSummary:
        snapshot = self.slurm.snapshot
        if snapshot is not self._tied_with:
            self._ties.clear()
            self._tied_with = snapshot
        key = summary.key
        if key not in self._ties:
            self._ties[key] = self._find(summary, snapshot)
        summary.job = self._ties[key]
        return summary

    def _find(self, summary: ExperimentSummary, snapshot: Snapshot) -> JobTie | None:
        db = self.place(summary.db)
        ids: list[str] = []
        for parent in db.parents:
            ids.extend(self._by_folder.get(parent, ()))
        jobs = [snapshot.jobs[i] for i in dict.fromkeys(ids) if i in snapshot.jobs]
        if not jobs:
            return None
        return tie(db, summary.created_at, self.job_folders, jobs, self.clock.now())

    def summaries(self) -> list[ExperimentSummary]:
        return [self._tie(s) for s in super().summaries()]

    def summary(self, key: tuple[Path, int]) -> ExperimentSummary | None:
        found = super().summary(key)
        return None if found is None else self._tie(found)

    def find(self, exp_id: int) -> list[ExperimentSummary]:
        return [self._tie(s) for s in super().find(exp_id)]

    def jobs_without_runs(self) -> list[Job]:
        """The jobs no experiment is tied to (pending ones, mostly), in Slurm's order."""
        tied = {
            job.job_id
            for found in (self._tie(s).job for s in super().summaries())
            if found is not None
            for job in found.jobs
        }
        return [job for job in self.slurm.snapshot.jobs.values() if job.job_id not in tied]

    # -- state -----------------------------------------------------------------------------

    def statuses(self) -> list[SourceStatus]:
        self.slurm.poll()
        own = SourceStatus(self.slurm_path_status, _STATES[self.slurm.state], self.slurm.describe())
        # The jobs' folders are Slurm's to name: one that has no database (yet) is no fault.
        shown = [s for s in super().statuses() if s.path not in self._by_folder]
        return [*shown, own]


class SlurmMonitor(SlurmTies):
    """The Monitor of `slurm:`: its directory sources grow with the user's Slurm jobs."""

    def __init__(
        self,
        local: Sequence[Path | str],
        client: SlurmClient,
        template: PathTemplate | None = None,
        label: str = "slurm:",
        patience: float | None = None,
        clock: type[datetime] = datetime,
    ) -> None:
        self._slurm_setup(client, template, label, clock)
        super().__init__(local, patience=patience)  # its discover() adds the jobs' folders


class SlurmUnavailable(Exception):
    """`slurm:` where this machine has no Slurm (one line says so)."""


NO_SLURM = (
    "slurm: no Slurm on this machine (squeue not found): run it on a login node,"
    " or name one: slurm:HOST"
)


def open_slurm(
    sources: Sequence[Path | str],
    template: PathTemplate | None = None,
    *,
    wait: bool = True,
    patience: float | None = None,
    client: SlurmClient | None = None,
) -> SlurmMonitor:
    """A SlurmMonitor on the `slurm:` source and the local paths beside it. `wait`: Slurm is
    asked first and its jobs' folders walked (the one-shot commands); else the app's heartbeat
    adds them as Slurm answers."""
    from velora_tui.data.slurm import is_slurm
    from velora_tui.data.slurm_client import slurm_here

    local = [s for s in sources if not (isinstance(s, str) and is_slurm(s))]
    if client is None:
        if not slurm_here():
            raise SlurmUnavailable(NO_SLURM)
        client = SlurmClient()
    if wait:
        client.refresh()
    else:
        client.poll()
    return SlurmMonitor(local, client, template, patience=patience)
