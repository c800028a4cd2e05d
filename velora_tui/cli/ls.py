"""`velora-tui ls`: the experiments with their progress and rewards, or their groups."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from velora_tui.cli.common import (
    GROUP,
    GROUP_BY,
    JSON,
    SOURCES,
    TARGET,
    group_keys,
    load,
    require_data,
    user_settings,
)
from velora_tui.data.cleaning import format_number
from velora_tui.data.monitor import sort_summaries
from velora_tui.data.source_names import source_names
from velora_tui.remote.sources import several_hosts, with_host
from velora_tui.report.format import ago, table


def slurm_view(monitor: object) -> Any:
    """The Slurm columns' maker when the sources hold `slurm:` (its module loaded only then)."""
    if not hasattr(monitor, "slurm_path_status"):  # data/slurm_monitor.py's SlurmTies
        return None
    from velora_tui.cli.slurm_output import SlurmView

    return SlurmView(monitor)  # type: ignore[arg-type]


@click.command("ls")
@SOURCES
@JSON
@GROUP
@GROUP_BY
@click.option(
    "--compare",
    is_flag=True,
    help="With --group/--group-by: the probability that a run of the first group (best final"
    " reward) beats a run of each other group, with its 95% bootstrap interval.",
)
@TARGET
def command(
    sources: tuple[Path | str, ...],
    as_json: bool,
    group_seeds: bool,
    group_by: tuple[str, ...],
    compare: bool,
    targets: dict[str, float],
) -> None:
    """List experiments with their progress and rewards (or their groups)."""
    keys = group_keys(group_seeds, group_by)
    if compare and keys is None:
        raise click.UsageError("--compare compares groups: add --group or --group-by KEY")
    monitor = load(sources)
    require_data(monitor)
    # Users script on these numbers: every aggregate exact, or the source named as failing.
    incomplete = set(monitor.scan_all())
    for path in incomplete:
        click.echo(f"velora-tui: {monitor.databases[path].status.describe()}", err=True)
    now = datetime.now()
    summaries = sort_summaries((s for s in monitor.summaries() if s.db not in incomplete), now)
    if keys is not None:
        from velora_tui.cli import group_output

        overrides = user_settings(targets).targets  # episodes to the target
        groups = group_output.make_groups(monitor, summaries, keys, now, overrides)
        text = group_output.groups_json if as_json else group_output.groups_table
        click.echo(text(groups, now, compare))
        return
    slurm = slurm_view(monitor)
    if as_json:
        # Each run's health (report/alerts.py), from its newest LS_HISTORY rows.
        from velora_tui.report.alerts import LS_HISTORY, HealthTracker

        settings = user_settings(targets)
        health = HealthTracker(settings.health, settings.targets)
        health.read_past(monitor, summaries, LS_HISTORY)
        listed = []
        for s in summaries:
            data = s.to_json(now)
            run = health.get(s.key)
            if run is not None:
                data["health"] = run.to_json()
            listed.append(with_host(monitor, s.db, data))
        if slurm is not None:
            listed = slurm.add_json(listed, summaries, now)
        click.echo(json.dumps(listed, indent=2))
        return
    several = len(monitor.databases) > 1
    hosts = several_hosts(monitor)
    headers = ["STATUS", "ID", "AGENT", "ENV", "EPISODES", "LAST", "BEST", "AVG", "ACTIVE"]
    rows = []
    for s in summaries:
        planned = f"/{s.n_episodes}" if s.n_episodes else ""
        row = [
            str(s.status(now)),
            str(s.id),
            s.agent,
            s.env,
            f"{s.episodes}{planned}",
            format_number(s.last_reward),
            format_number(s.best_reward),
            format_number(s.reward_moving_avg),
            ago(s.last_activity, now),
        ]
        if hosts:
            row.append(source_names.host(s.db) or "local")
        if slurm is not None:
            row.append(slurm.cell(s, now))
        rows.append([*row, source_names.name(s.db)] if several else row)
    if hosts:
        headers.append("HOST")
    if slurm is not None:
        headers.append("SLURM")
        rows.extend(slurm.job_rows(len(headers) + several, len(headers) - 1, now))
    if several:
        headers.append("DB")
    if not rows:
        click.echo("no experiments yet", err=True)
        return
    click.echo(table(headers, rows, right={1, 4, 5, 6, 7}))
