"""The `velora-tui` command: the app by default, and headless commands for use over SSH."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click

from velora_tui import __version__
from velora_tui.data import labels
from velora_tui.data.database import ReadFailed
from velora_tui.data.records import (
    EPISODE_COLUMNS,
    EpisodeRow,
    ExperimentSummary,
    SourceState,
    json_value,
)
from velora_tui.data.sources import Monitor, sort_summaries
from velora_tui.data.values import clean_text, format_number
from velora_tui.export import FORMATS, write_episodes
from velora_tui.format import ago, clock, table
from velora_tui.notify import METHODS as NOTIFY_METHODS
from velora_tui.remote.sources import RemoteMonitor, file_statuses, several_hosts, with_host

DEFAULT_SOURCE = "metrics.db"


class SourcePath(click.Path):
    """A source's path as given: never looked at here (click's Path stats it, which blocks
    for as long as a dead network file system does). A source that cannot be read is reported
    by the data layer (one stderr line), and never stops the other sources from being shown."""

    def __init__(self) -> None:
        super().__init__(path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path):
            return value
        from velora_tui.remote.address import AddressError, looks_remote, parse_source

        if looks_remote(value):  # kept as written (`ssh://h/x` is no path); refused ones now
            try:
                parse_source(value)
            except AddressError as exc:
                self.fail(str(exc), param, ctx)
            return value
        return Path(value)


def _remember_python(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta["remote_python"] = value


def SOURCES(command: Any) -> Any:
    """SOURCE... and --remote-python (for the remote ones), on every command that reads."""
    command = click.option(
        "--remote-python",
        metavar="PROGRAM",
        expose_value=False,
        callback=_remember_python,
        help="Python 3.8+ on remote hosts (default: python3).",
    )(command)
    return click.argument("sources", nargs=-1, type=SourcePath())(command)


JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
NOTIFY = click.option(
    "--notify",
    is_flag=True,
    help="Alerts also as desktop notifications through the terminal (OSC 777 or 9) and the bell.",
)
NOTIFY_WITH = click.option(
    "--notify-with",
    type=click.Choice(NOTIFY_METHODS),
    help="Which escape --notify sends (implies --notify; auto: by the terminal's name).",
)


class Failure(click.ClickException):
    """One clear line on stderr and exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"velora-tui: {self.format_message()}", err=True)


class DefaultToOpen(click.Group):
    """`velora-tui [SOURCE...]` opens the app; named commands run headless."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        wants_help = any(a in ("--help", "-h", "--version") for a in args)
        if (first is None and not wants_help) or (first is not None and first not in self.commands):
            args = ["open", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultToOpen, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="velora-tui")
def main() -> None:
    """Live monitor for Velora training runs (metrics.db).

    With no command, opens the monitor on SOURCE... (metrics.db files or directories holding
    them; default ./metrics.db); its options (--poll, --notify): velora-tui open --help.
    """


def remote_python() -> str:
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get("remote_python", "python3")) if ctx else "python3"


def monitor_for(sources: Sequence[Path | str]) -> Monitor:
    """A monitor on the sources; remote ones' local copies brought up to date first."""
    from velora_tui.remote.sources import open_sources

    monitor, remotes = open_sources(list(sources) or [Path(DEFAULT_SOURCE)], python=remote_python())
    if remotes is not None:
        refused = [s for s in remotes.host_statuses() if s.state == "refused"]
        for status in remotes.host_statuses():
            if status.state != "connected":
                click.echo(f"velora-tui: {status.describe()}", err=True)
        if refused:
            monitor.close(0)
            raise SystemExit(1)
    return monitor


def load(sources: Sequence[Path | str], quiet_waiting: bool = False) -> Monitor:
    """A monitor after its first read; says on stderr what could not be read."""
    monitor = monitor_for(sources)
    monitor.refresh()
    for status in file_statuses(monitor):  # a host's line was said by monitor_for
        if status.state is SourceState.OK:
            continue
        if quiet_waiting and status.state is SourceState.WAITING:
            continue
        click.echo(f"velora-tui: {status.describe()}", err=True)
    return monitor


def require_data(monitor: Monitor) -> None:
    if not any(s.state is SourceState.OK for s in file_statuses(monitor)):
        monitor.close()
        raise SystemExit(1)


def find_experiment(monitor: Monitor, exp_id: int) -> ExperimentSummary:
    matches = monitor.find(exp_id)
    if not matches:
        silent = [s.path for s in monitor.statuses() if s.state is SourceState.NOT_RESPONDING]
        if silent:
            names = ", ".join(str(path) for path in silent)
            raise Failure(
                f"no experiment with id {exp_id} in the sources that answered"
                f" (not responding: {names})"
            )
        raise Failure(f"no experiment with id {exp_id}")
    if len(matches) > 1:
        places = ", ".join(labels.name(m.db) for m in matches)
        raise Failure(f"experiment {exp_id} is in several databases ({places}); name one SOURCE")
    return matches[0]


@main.command("open")
@SOURCES
@click.option("--poll", is_flag=True, help="Poll the files instead of watching for events.")
@NOTIFY
@NOTIFY_WITH
def open_app(
    sources: tuple[Path | str, ...], poll: bool, notify: bool, notify_with: str | None
) -> None:
    """Open the monitor (the default command)."""
    from velora_tui.app import run_app

    run_app(
        list(sources) or [Path(DEFAULT_SOURCE)],
        poll=poll,
        notify=notify_with or ("auto" if notify else None),
        remote_python=remote_python(),
    )


GROUP = click.option(
    "--group", "group_seeds", is_flag=True, help="Group the seeds of each config (seed, device)."
)
GROUP_BY = click.option(
    "--group-by",
    "group_by",
    multiple=True,
    metavar="KEY",
    help="Group by these config keys (dotted; repeatable or comma-separated).",
)


def _group_keys(seeds: bool, keys: tuple[str, ...]) -> list[str] | None:
    """Grouping asked for: its keys ([] for seeds), None for none (the groups' code, and what
    it imports, is loaded only then)."""
    if not seeds and not keys:
        return None
    from velora_tui import group_output

    return group_output.group_keys(seeds, keys)


@main.command("ls")
@SOURCES
@JSON
@GROUP
@GROUP_BY
def list_experiments(
    sources: tuple[Path | str, ...], as_json: bool, group_seeds: bool, group_by: tuple[str, ...]
) -> None:
    """List experiments with their progress and rewards (or their groups)."""
    keys = _group_keys(group_seeds, group_by)
    monitor = load(sources)
    require_data(monitor)
    # Users script on these numbers: every aggregate exact, or the source named as failing.
    incomplete = set(monitor.scan_all())
    for path in incomplete:
        click.echo(f"velora-tui: {monitor.databases[path].status.describe()}", err=True)
    now = datetime.now()
    summaries = sort_summaries((s for s in monitor.summaries() if s.db not in incomplete), now)
    if keys is not None:
        from velora_tui import group_output

        groups = group_output.make_groups(monitor, summaries, keys, now)
        text = group_output.groups_json if as_json else group_output.groups_table
        click.echo(text(groups, now))
        return
    if as_json:
        click.echo(
            json.dumps([with_host(monitor, s.db, s.to_json(now)) for s in summaries], indent=2)
        )
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
            row.append(labels.host(s.db) or "local")
        rows.append([*row, labels.name(s.db)] if several else row)
    if hosts:
        headers.append("HOST")
    if several:
        headers.append("DB")
    if not rows:
        click.echo("no experiments yet", err=True)
        return
    click.echo(table(headers, rows, right={1, 4, 5, 6, 7}))


@main.command()
@click.argument("exp_id", metavar="ID", type=int)
@SOURCES
@JSON
def show(exp_id: int, sources: tuple[Path | str, ...], as_json: bool) -> None:
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
        data = summary.to_json(now)
        data["config"] = json_value(config.data) if config.ok else None  # NaN: "nan", as export
        data["config_error"] = config.error
        click.echo(json.dumps(data, indent=2))
        return
    fields = summary.to_json(now)
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        click.echo(f"{key.ljust(width)}  {'-' if value is None else value}")
    click.echo("")
    if config.error:
        click.echo(f"config: {config.error}", err=True)
        click.echo(config.text[:100_000])
    else:
        click.echo(config.pretty())


@main.command()
@click.argument("left_id", metavar="ID1", type=int)
@click.argument("right_id", metavar="ID2", type=int)
@SOURCES
@click.option("--all", "show_all", is_flag=True, help="Every key, not only the differing ones.")
@JSON
def diff(
    left_id: int, right_id: int, sources: tuple[Path | str, ...], show_all: bool, as_json: bool
) -> None:
    """Compare two experiments' configs key by key (~ changed, + added, - removed)."""
    from velora_tui.data.diff import diff_configs, format_value

    monitor = load(sources)
    require_data(monitor)
    left, right = find_experiment(monitor, left_id), find_experiment(monitor, right_id)
    configs = []
    for summary in (left, right):
        config = monitor.databases[summary.db].config(summary.id)
        if config.error is not None:
            reason = clean_text(config.error, 160)
            click.echo(f"velora-tui: #{summary.id}: {reason}; compared as empty", err=True)
        configs.append(config.data if config.error is None else {})
    rows = diff_configs(*configs)
    shown = rows if show_all else [r for r in rows if r.kind != "same"]
    if as_json:
        click.echo(json.dumps([r.to_json() for r in shown], indent=2, ensure_ascii=False))
        return
    if not shown:
        click.echo("velora-tui: no differences" if rows else "velora-tui: no config keys", err=True)
        return

    def label(s: ExperimentSummary) -> str:
        return clean_text(f"#{s.id} {s.agent} {s.env}", 60)

    headers = ["KEY", label(left), label(right), ""]
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


@main.command()
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
def export(
    exp_id: str | None,
    sources: tuple[Path | str, ...],
    fmt: str,
    output: Path | None,
    group_seeds: bool,
    group_by: tuple[str, ...],
    x_axis: str,
    smoothing: float,
) -> None:
    """Export every episode of experiment ID, all columns, as stored: text stays text (also in
    a number column), a time keeps its stored form and offset, floats are bit-exact; JSON has
    inf as "inf" and "-inf", a blob as x'<hex>'. With --group or --group-by, every group's
    aggregated reward curve (mean, std, min, max and runs at each x)."""
    keys = _group_keys(group_seeds, group_by)
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
                from velora_tui import group_output

                now = datetime.now()
                groups = group_output.make_groups(monitor, monitor.summaries(), keys, now)
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


@main.command()
@SOURCES
@click.option(
    "-e", "--experiment", "experiments", type=int, multiple=True, help="Only this id (repeatable)."
)
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Episodes to show first.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing episodes as they are committed.")
@JSON
@click.option("--poll", is_flag=True, help="With -f: poll instead of watching for file events.")
def tail(
    sources: tuple[Path | str, ...],
    experiments: tuple[int, ...],
    count: int,
    follow: bool,
    as_json: bool,
    poll: bool,
) -> None:
    """Print the latest episodes; with -f, every new one as it is committed."""
    monitor = load(sources, quiet_waiting=follow)
    if follow:
        for status in monitor.statuses():
            if status.state is SourceState.WAITING:
                click.echo(f"velora-tui: {status.describe()}", err=True)
    else:
        require_data(monitor)
    wanted = set(experiments)
    printer = EpisodePrinter(monitor, as_json, several=len(monitor.databases) > 1)
    for path, row in latest_episodes(monitor, wanted, count):
        printer.print(path, row)
    if not follow:
        return
    from velora_tui.placement import stay_off_io_cpus

    stay_off_io_cpus()  # before the threads that read are started: they inherit it
    monitor.start_replaying()
    keep_remotes_live(monitor)
    _follow(monitor, printer, wanted, poll)


def latest_episodes(
    monitor: Monitor, wanted: set[int], count: int
) -> list[tuple[Path, EpisodeRow]]:
    """The last `count` episodes committed (of the `wanted` experiments, or all), oldest
    first. In a database, commit order is the row id (times step back with the clock, or do
    not parse); databases have no common order, so theirs are interleaved by time, each one's
    rows kept in its own commit order."""
    if count <= 0:
        return []
    per_database: list[list[tuple[datetime, Path, EpisodeRow]]] = []
    for path in sorted(monitor.databases, key=str):
        database = monitor.databases[path]
        if wanted:
            each = [database.latest_episodes(exp, count) for exp in sorted(wanted)]
            rows = list(heapq.merge(*each, key=lambda row: row.id))[-count:]
        else:
            rows = database.latest_episodes(None, count)
        moment = datetime.min  # a row without a readable time sorts with the one before it
        timed = []
        for row in rows:
            moment = row.created_at or moment
            timed.append((moment, path, row))
        per_database.append(timed)
    # heapq.merge keeps each input's order even where its times go back (a clock step).
    merged = heapq.merge(*per_database, key=lambda item: item[0])
    return [(path, row) for _, path, row in merged][-count:]


def keep_remotes_live(monitor: Monitor) -> None:
    """For a command that follows: remote sources' links keep running (in threads of their
    own), and each change of a host's state is said on stderr."""
    if isinstance(monitor, RemoteMonitor):
        for link in monitor.remotes.links:
            link.on_change = lambda status: click.echo(f"velora-tui: {status.describe()}", err=True)
        monitor.remotes.start()


def _follow(monitor: Monitor, printer: EpisodePrinter, wanted: set[int], poll: bool) -> None:
    from velora_tui.data.feed import ChangeFeed, live_updates

    async def run() -> None:
        feed = ChangeFeed(monitor, poll=poll)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            feed.stop()
            monitor.close(0)  # whatever waits for a source that does not respond stops waiting

        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stop)
        try:
            await show(feed)
        finally:
            monitor.close(0)  # also on Ctrl-C: asyncio.run then waits for its threads

    async def show(feed: ChangeFeed) -> None:
        states = {s.path: s for s in monitor.statuses()}
        mode = feed.mode
        async for updates in live_updates(monitor, feed):
            if feed.mode is not mode:  # watching failed: say that it polls now, and why
                mode = feed.mode
                click.echo(f"velora-tui: {feed.describe()}", err=True)
            for update in updates:
                if update.reset:
                    click.echo(
                        f"velora-tui: {labels.name(update.db)}: replaced by a new database;"
                        " following it from its first episode",
                        err=True,
                    )
                for row in update.episodes:
                    if not wanted or row.experiment_id in wanted:
                        printer.print(update.db, row)
                if update.status_changed:
                    status = monitor.databases[update.db].status
                    if states.get(update.db) != status:
                        states[update.db] = status
                        click.echo(f"velora-tui: {status.describe()}", err=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


class EpisodePrinter:
    COLUMNS = [
        "EXP",
        "EPISODE",
        *(column.label.split()[0].upper() for column in EPISODE_COLUMNS),
        "TIME",
        "RUN",
    ]

    def __init__(self, monitor: Monitor, as_json: bool, several: bool) -> None:
        self.monitor = monitor
        self.as_json = as_json
        self.several = several
        self.header_done = False

    def print(self, db: Path, row: EpisodeRow) -> None:
        summary = self.monitor.summary((db, row.experiment_id))
        agent, env = (summary.agent, summary.env) if summary else ("?", "?")
        if self.as_json:
            data = {
                "db": labels.name(db),
                **row.to_json(),
                "agent": agent,
                "env": env,
                "host": labels.host(db),
            }
            line = json.dumps(data)
        else:
            if not self.header_done:
                self.header_done = True
                self._write(self._format(self.COLUMNS))
            cells = [
                str(row.experiment_id),
                "-" if row.episode_num is None else str(row.episode_num),
                *(format_number(getattr(row, c.name), c.digits) for c in EPISODE_COLUMNS),
                clock(row.created_at),
                f"{agent}/{env}" + (f" ({labels.name(db)})" if self.several else ""),
            ]
            line = self._format(cells)
        self._write(line)

    @staticmethod
    def _format(cells: list[str]) -> str:
        widths = [4, 8, 10, 7, 10, 9, 9, 9, 9, 19, 0]
        return "  ".join(
            c.rjust(w) if i < 9 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    @staticmethod
    def _write(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@main.command()
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
def simulate(
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
    """Write a fake training run into DB exactly the way velora does."""
    from velora_tui.simulate import run

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


@main.command("serve")
@SOURCES
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free."
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    help="A fixed token (else $VELORA_TUI_TOKEN, else a random one).",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Browser tabs (app processes) at once.",
)
@click.option("--poll", is_flag=True, help="Poll the files instead of watching for events.")
def serve(
    sources: tuple[Path | str, ...],
    host: str,
    port: int,
    token_file: Path | None,
    max_sessions: int,
    poll: bool,
) -> None:
    """Serve the monitor to a browser (one URL to open, with a token; README: In a browser)."""
    from velora_tui.serve.cli import run_serve

    run_serve(
        list(sources) or [Path(DEFAULT_SOURCE)],
        host,
        port,
        token_file,
        max_sessions,
        poll,
        remote_python(),
    )


@main.command()
@click.option("--poll", is_flag=True, help="Poll the files instead of watching for events.")
@click.option("--rate", type=click.FloatRange(min=0.1), default=4.0, show_default=True)
@NOTIFY
@NOTIFY_WITH
def demo(poll: bool, rate: float, notify: bool, notify_with: str | None) -> None:
    """Open the monitor on a live simulated training run (in a temporary directory)."""
    from velora_tui.app import run_demo

    run_demo(poll=poll, rate=rate, notify=notify_with or ("auto" if notify else None))


@main.command()
@SOURCES
@click.option("-f", "--follow", is_flag=True, help="Keep watching: each new alert as it happens.")
@JSON
@click.option(
    "--exec",
    "command",
    metavar="CMD",
    help="Run CMD for each alert, the alert as JSON on its stdin (split like a shell would, run"
    " without one).",
)
@click.option(
    "--exec-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds before CMD (its whole process group) is killed.",
)
@click.option("--poll", is_flag=True, help="With -f: poll instead of watching for file events.")
def alerts(
    sources: tuple[Path, ...],
    follow: bool,
    as_json: bool,
    command: str | None,
    exec_timeout: float,
    poll: bool,
) -> None:
    """Print the app's alerts: stalled and finished runs, inf/NaN; with -f, each as it happens."""
    from velora_tui.alert_cli import run

    run(
        sources,
        follow=follow,
        as_json=as_json,
        command=command,
        exec_timeout=exec_timeout,
        poll=poll,
    )


@main.group()
def cache() -> None:
    """The local copies of remote databases (in the cache folder)."""


@cache.command("info")
def cache_info() -> None:
    """Where the local copies are and how much room they take."""
    from velora_tui.remote.mirror import cache_size, remote_root

    click.echo(f"{remote_root()}  {cache_size() / 1e6:.1f} MB")


@cache.command("clear")
def cache_clear() -> None:
    """Delete every local copy (they are fetched again when next needed)."""
    from velora_tui.remote.mirror import cache_size, clear_cache

    size = cache_size()
    root = clear_cache()
    click.echo(f"removed {root} ({size / 1e6:.1f} MB)", err=True)


def entry() -> None:
    """Console entry point: no traceback for anything a file can contain."""
    try:
        main(prog_name="velora-tui")
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("VELORA_TUI_DEBUG"):
            raise
        from velora_tui.remote.folders import FolderError

        if isinstance(exc, FolderError):  # a cache or ssh folder that is not ours alone
            click.echo(f"velora-tui: {exc}", err=True)
            raise SystemExit(1) from None
        click.echo(f"velora-tui: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("velora-tui: set VELORA_TUI_DEBUG=1 for details, and please report it", err=True)
        raise SystemExit(1) from None
