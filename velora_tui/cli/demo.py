"""`velora-tui demo`: the monitor on a live simulated run, for a first look with no metrics.db."""

from __future__ import annotations

import click

from velora_tui.cli.common import NOTIFY, NOTIFY_WITH, POLL, TARGET, user_settings
from velora_tui.tui.app import run_demo


@click.command("demo")
@POLL
@click.option("--rate", type=click.FloatRange(min=0.1), default=4.0, show_default=True)
@NOTIFY
@NOTIFY_WITH
@TARGET
def command(
    poll: bool, rate: float, notify: bool, notify_with: str | None, targets: dict[str, float]
) -> None:
    """Open the monitor on a live simulated training run (in a temporary directory)."""
    chosen = notify_with or ("auto" if notify else None)
    run_demo(poll=poll, rate=rate, notify=chosen, user=user_settings(targets, chosen, quiet=True))
