"""`velora-tui settings`: where the settings file is, and what is in force (each value with
where it came from: default, file or flag)."""

from __future__ import annotations

import json

import click

from velora_tui.cli.common import JSON, TARGET, user_settings
from velora_tui.data.cleaning import clean_text
from velora_tui.report.format import table


@click.command("settings")
@JSON
@TARGET
def command(as_json: bool, targets: dict[str, float]) -> None:
    """Show the settings file and the settings in force: each value with where it comes from
    (default, file or flag)."""
    settings = user_settings(targets)
    path = settings.path
    exists = path.exists() or path.is_symlink()
    rows = settings.in_force()
    if as_json:
        data = {
            "path": str(path),
            "exists": exists,
            "problems": settings.problems,
            "settings": [{"key": k, "value": v, "source": s} for k, v, s in rows],
        }
        click.echo(json.dumps(data, indent=2))
        return
    state = "" if exists else " (not there: every value is a default)"
    click.echo(f"settings file: {clean_text(str(path), 400)}{state}")
    click.echo(
        table(
            ["KEY", "VALUE", "FROM"],
            [[clean_text(k, 80), clean_text(v, 80), s] for k, v, s in rows],
        )
    )
