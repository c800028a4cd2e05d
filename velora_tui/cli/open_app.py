"""`velora-tui [open] [SOURCE...]`: the monitor in the terminal (the default command)."""

from __future__ import annotations

from pathlib import Path

import click

from velora_tui.cli.common import (
    NOTIFY,
    NOTIFY_WITH,
    POLL,
    SOURCES,
    remote_python,
    slurm_path,
    sources_or_default,
)
from velora_tui.tui.app import run_app


@click.command("open")
@SOURCES
@POLL
@NOTIFY
@NOTIFY_WITH
def command(
    sources: tuple[Path | str, ...], poll: bool, notify: bool, notify_with: str | None
) -> None:
    """Open the monitor (the default command)."""
    run_app(
        sources_or_default(sources),
        poll=poll,
        notify=notify_with or ("auto" if notify else None),
        remote_python=remote_python(),
        slurm_path=slurm_path(),
    )
