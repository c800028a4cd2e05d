"""Slurm's jobs beside the runs in `velora-tui ls`: a SLURM column, and a row (a JSON object)
for each job no run is tied to yet (pending ones, mostly)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import ExperimentSummary
from velora_tui.data.slurm import describe, describe_tie
from velora_tui.data.slurm_monitor import SlurmTies


class SlurmView:
    def __init__(self, monitor: SlurmTies) -> None:
        self.monitor = monitor

    def cell(self, summary: ExperimentSummary, now: datetime) -> str:
        return "-" if summary.job is None else describe_tie(summary.job, now)

    def job_rows(self, width: int, column: int, now: datetime) -> list[list[str]]:
        """A row for each job without a run: its state in STATUS, its name in AGENT, its
        words in SLURM (`column`), `width` cells in all."""
        rows = []
        for job in self.monitor.jobs_without_runs():
            row = ["-"] * width
            row[0] = job.state.lower()
            row[2] = clean_text(job.name, 40)
            row[column] = f"job {clean_text(job.job_id, 40)} {describe(job, now)}"
            rows.append(row)
        return rows

    def add_json(
        self, listed: list[dict[str, Any]], summaries: Sequence[ExperimentSummary], now: datetime
    ) -> list[dict[str, Any]]:
        """Each run's `slurm` object (null: no job), then the jobs without a run (`id` null)."""
        for data, summary in zip(listed, summaries, strict=True):
            data["slurm"] = None if summary.job is None else summary.job.to_json(now)
        for job in self.monitor.jobs_without_runs():
            listed.append(
                {"db": None, "id": None, "status": job.state.lower(), "slurm": job.to_json(now)}
            )
        return listed
