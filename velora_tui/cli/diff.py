"""`velora-tui diff ID1 ID2`: two experiments' configs compared key by key."""

from __future__ import annotations

import json
from pathlib import Path

import click

from velora_tui.cli.common import JSON, SOURCES, find_experiment, load, require_data, say
from velora_tui.data.cleaning import clean_text
from velora_tui.data.diff import diff_configs, format_value
from velora_tui.report.format import experiment_label, table


@click.command("diff")
@click.argument("left_id", metavar="ID1", type=int)
@click.argument("right_id", metavar="ID2", type=int)
@SOURCES
@click.option("--all", "show_all", is_flag=True, help="Every key, not only the differing ones.")
@JSON
def command(
    left_id: int, right_id: int, sources: tuple[Path | str, ...], show_all: bool, as_json: bool
) -> None:
    """Compare two experiments' configs key by key (~ changed, + added, - removed)."""
    monitor = load(sources)
    require_data(monitor)
    left, right = find_experiment(monitor, left_id), find_experiment(monitor, right_id)
    configs = []
    for summary in (left, right):
        config = monitor.databases[summary.db].config(summary.id)
        if config.error is not None:
            reason = clean_text(config.error, 160)
            say(f"#{summary.id}: {reason}; compared as empty")
        configs.append(config.data if config.error is None else {})
    rows = diff_configs(*configs)
    shown = rows if show_all else [r for r in rows if r.kind != "same"]
    if as_json:
        click.echo(json.dumps([r.to_json() for r in shown], indent=2, ensure_ascii=False))
        return
    if not shown:
        say("no differences" if rows else "no config keys")
        return

    headers = ["KEY", experiment_label(left), experiment_label(right), ""]
    cells = [
        [
            clean_text(r.key, 80),
            "" if r.kind == "added" else format_value(r.left),
            "" if r.kind == "removed" else format_value(r.right),
            r.marker,
        ]
        for r in shown
    ]
    click.echo(table(headers, cells))
