"""`velora-tui show ID`: one experiment's summary and its config."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from velora_tui.cli.common import JSON, SOURCES, Failure, find_experiment, load, require_data
from velora_tui.data.database import ReadFailed
from velora_tui.data.records import json_value
from velora_tui.data.source_names import source_names
from velora_tui.remote.sources import with_host


@click.command("show")
@click.argument("exp_id", metavar="ID", type=int)
@SOURCES
@JSON
def command(exp_id: int, sources: tuple[Path | str, ...], as_json: bool) -> None:
    """Show one experiment: its summary and its config."""
    monitor = load(sources)
    require_data(monitor)
    summary = find_experiment(monitor, exp_id)
    database = monitor.databases[summary.db]
    try:
        database.add_up(exp_id)
    except ReadFailed as exc:
        raise Failure(exc.status.describe()) from None
    config = database.config(exp_id)
    now = datetime.now()
    if as_json:
        data = with_host(monitor, summary.db, summary.to_json(now))  # `db` as the user named it
        data["config"] = json_value(config.data) if config.ok else None  # NaN: "nan", as export
        data["config_error"] = config.error
        click.echo(json.dumps(data, indent=2))
        return
    fields = summary.to_json(now)
    fields["db"] = source_names.name(summary.db)  # a remote one's, not its local stand-in's
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        click.echo(f"{key.ljust(width)}  {'-' if value is None else value}")
    click.echo("")
    if config.error:
        click.echo(f"config: {config.error}", err=True)
        click.echo(config.text[:100_000])
    else:
        click.echo(config.pretty())
