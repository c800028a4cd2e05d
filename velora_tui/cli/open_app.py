"""`velora-tui [open] [SOURCE...]`: the monitor in the terminal (the default command)."""

from __future__ import annotations

from pathlib import Path

import click

from velora_tui.cli.common import (
    NOTIFY,
    NOTIFY_WITH,
    POLL,
    SOURCES,
    TARGET,
    remote_python,
    slurm_path,
    sources_or_default,
    user_settings,
)
from velora_tui.tui.app import run_app


@click.command("open")
@SOURCES
@POLL
@NOTIFY
@NOTIFY_WITH
@TARGET
def command(
    sources: tuple[Path | str, ...],
    poll: bool,
    notify: bool,
    notify_with: str | None,
    targets: dict[str, float],
) -> None:
    """Open the monitor (the default command)."""
    chosen = notify_with or ("auto" if notify else None)
    run_app(
        sources_or_default(sources),
        poll=poll,
        notify=chosen,
        remote_python=remote_python(),
        slurm_path=slurm_path(),
        user=user_settings(targets, chosen, quiet=True),
    )
