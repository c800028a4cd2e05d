"""`velora-tui export`: every episode of an experiment (csv, json, jsonl), or with --group /
--group-by, every group's aggregated reward curve."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from velora_tui.cli.common import (
    GROUP,
    GROUP_BY,
    SOURCES,
    Failure,
    SourcePath,
    find_experiment,
    group_keys,
    load,
    require_data,
    user_settings,
)
from velora_tui.data.database import ReadFailed
from velora_tui.report.export import FORMATS, write_episodes


@click.command("export")
@click.argument("exp_id", metavar="[ID]", required=False)
@SOURCES
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="File to write (default: stdout)."
)
@GROUP
@GROUP_BY
@click.option(
    "--x",
    "x_axis",
    type=click.Choice(["episode", "steps", "time"]),
    default="episode",
    show_default=True,
    help="Groups: the curves' x (time: seconds since each run's start).",
)
@click.option(
    "--smoothing",
    type=click.FloatRange(0, 0.999),
    default=0.0,
    show_default=True,
    help="Groups: each run smoothed first (debiased EMA weight).",
)
def command(
    exp_id: str | None,
    sources: tuple[Path | str, ...],
    fmt: str,
    output: Path | None,
    group_seeds: bool,
    group_by: tuple[str, ...],
    x_axis: str,
    smoothing: float,
) -> None:
    """Export every episode of experiment ID (or groups' curves): all columns, as stored: text
    stays text (also in a number column), a time keeps its stored form and offset, floats are
    bit-exact; JSON has inf as "inf" and "-inf", a blob as x'<hex>'. With --group or --group-by,
    every group's aggregated reward curve (mean, std, min, max and runs at each x)."""
    keys = group_keys(group_seeds, group_by)
    if keys is None:
        if exp_id is None or not exp_id.lstrip("-").isdigit():
            raise click.UsageError("export needs an experiment ID (or --group / --group-by)")
    elif exp_id is not None:
        sources = (SourcePath().convert(exp_id, None, None), *sources)  # all are sources here
    monitor = load(sources)
    require_data(monitor)
    try:
        with _output(output) as out:
            if keys is None:
                assert exp_id is not None
                summary = find_experiment(monitor, int(exp_id))
                chunks = monitor.databases[summary.db].iter_episodes(summary.id)
                count = write_episodes(out, fmt, chunks)
                what = "episodes"
            else:
                from velora_tui.cli import group_output

                now = datetime.now()
                monitor.scan_all()  # the best rewards, for the groups' figures
                groups = group_output.make_groups(
                    monitor, monitor.summaries(), keys, now, user_settings().targets
                )
                points = group_output.EXPORT_POINTS
                curves = group_output.group_curves(
                    monitor, groups, axis=x_axis, smoothing=smoothing, points=points
                )
                count = group_output.write_group_curves(
                    out, fmt, groups, curves, axis=x_axis, smoothing=smoothing
                )
                what = "group points"
    except ReadFailed as exc:
        raise Failure(f"export stopped: {exc.status.describe()}") from None
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise Failure(f"cannot write {output}: {exc.strerror or exc}") from None
    if output is not None:
        click.echo(f"wrote {count} {what} to {output}", err=True)


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        yield handle
