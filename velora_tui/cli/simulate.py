"""`velora-tui simulate DB`: a fake training run written exactly as velora writes one (the
writer itself is velora_tui/writer/)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import IO

import click

from velora_tui.writer.simulate import run


@click.command("simulate")
@click.argument("db", type=click.Path(path_type=Path))
@click.option("--experiments", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--episodes",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Planned episodes per experiment.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="Episodes per second (0: as fast as possible).",
)
@click.option(
    "--stall-after",
    type=click.IntRange(min=0),
    default=None,
    help="The last run stops writing after this many episodes (the process stays alive).",
)
@click.option("--parallel", is_flag=True, help="Write the experiments at once, interleaved.")
@click.option(
    "--history", is_flag=True, help="First write a finished run and a stalled one, backdated."
)
@click.option("--schema", type=click.Choice(["0.2.0", "0.1.1"]), default="0.2.0", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--parent-pid",
    type=int,
    metavar="PID",
    help="Stop once process PID is no longer this one's parent (it went away).",
)
@click.option(
    "--commit-log",
    type=click.File("w"),
    default=None,
    help="Write 'id unix_time' after each commit (benchmarks).",
)
def command(
    db: Path,
    experiments: int,
    episodes: int,
    rate: float,
    stall_after: int | None,
    parallel: bool,
    history: bool,
    schema: str,
    seed: int,
    commit_log: IO[str] | None,
    parent_pid: int | None,
) -> None:
    """Write a fake training run into DB exactly as velora does."""
    with contextlib.suppress(KeyboardInterrupt):
        run(
            db,
            experiments=experiments,
            n_episodes=episodes,
            rate=rate,
            stall_after=stall_after,
            parallel=parallel,
            history=history,
            seed=seed,
            schema=schema,
            log=commit_log,
            parent=parent_pid,
        )
