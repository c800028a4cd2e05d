"""What the commands share: the SOURCE arguments and common options, the first read of the
sources with what could not be read said on stderr, and the one-line failure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from velora_tui.data.monitor import Monitor
from velora_tui.data.records import ExperimentSummary, SourceState
from velora_tui.data.source_names import source_names
from velora_tui.remote.sources import file_statuses
from velora_tui.report.notify import METHODS as NOTIFY_METHODS

if TYPE_CHECKING:
    from velora_tui.report.user_settings import UserSettings

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
        if value.startswith("slurm:"):
            found = slurm_source(value, param, ctx)
            if found is not None:
                return found
        from velora_tui.remote.address import AddressError, looks_remote, parse_source

        if looks_remote(value):  # kept as written (`ssh://h/x` is no path); refused ones now
            try:
                parse_source(value)
            except AddressError as exc:
                self.fail(str(exc), param, ctx)
            return value
        return Path(value)


def slurm_source(
    value: str, param: click.Parameter | None, ctx: click.Context | None
) -> str | None:
    """`slurm:` / `slurm:HOST` kept as written (None: not one). Without Slurm here, `slurm:`
    says so in one line and exits 2."""
    from velora_tui.data.slurm import SlurmSourceError, parse_slurm_source

    try:
        found = parse_slurm_source(value)
    except SlurmSourceError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    if found is None:
        return None
    if found.host is None:
        from velora_tui.data.slurm_client import slurm_here
        from velora_tui.data.slurm_monitor import NO_SLURM

        if not slurm_here():
            say(NO_SLURM)
            raise SystemExit(2)
    return value


def _remember_slurm_path(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        from velora_tui.data.slurm import PathTemplate, SlurmSourceError

        try:
            ctx.meta["slurm_path"] = PathTemplate(value)
        except SlurmSourceError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None


def _remember_python(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta["remote_python"] = value


def SOURCES(command: Any) -> Any:
    """SOURCE... and --remote-python (for the remote ones), --slurm-path (for `slurm:`), on
    every command that reads."""
    command = click.option(
        "--slurm-path",
        metavar="TEMPLATE",
        expose_value=False,
        callback=_remember_slurm_path,
        help="Where a Slurm job's runs are, for slurm: sources (default '{workdir}'; fields:"
        " {workdir} {job_id} {array_job_id} {array_task_id} {name}).",
    )(command)
    command = click.option(
        "--remote-python",
        metavar="PROGRAM",
        expose_value=False,
        callback=_remember_python,
        help="Python 3.8+ on remote hosts (default: python3).",
    )(command)
    return click.argument("sources", nargs=-1, type=SourcePath())(command)


JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
POLL = click.option("--poll", is_flag=True, help="Poll the files instead of watching for events.")
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


def _targets(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    from velora_tui.report.user_settings import parse_target

    found: dict[str, float] = {}
    for text in values:
        try:
            env, value = parse_target(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        found[env] = value
    return found


TARGET = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ENV=VALUE",
    callback=_targets,
    help="The moving average at which ENV counts as solved (over the settings and Gymnasium's"
    " reward_threshold; repeatable).",
)


def user_settings(
    targets: dict[str, float] | None = None, notify: str | None = None, quiet: bool = False
) -> UserSettings:
    """The settings in force (settings.toml, then these flags); the file's problems said once
    (`quiet`: not here, the app shows them)."""
    from velora_tui.report.user_settings import load_settings

    settings = load_settings()
    problem = settings.problem()
    if problem is not None and not quiet:
        say(problem)
    settings.apply_flags(targets=targets, notify=notify)
    return settings


class Failure(click.ClickException):
    """One clear line on stderr and exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"velora-tui: {self.format_message()}", err=True)


def say(message: str) -> None:
    """One line on stderr, named for the program (stdout holds only what was asked for)."""
    click.echo(f"velora-tui: {message}", err=True)


def sources_or_default(sources: Sequence[Path | str]) -> list[Path | str]:
    return list(sources) or [Path(DEFAULT_SOURCE)]


def remote_python() -> str:
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get("remote_python", "python3")) if ctx else "python3"


def slurm_path() -> Any:
    """--slurm-path's template (None: each job's WorkDir)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("slurm_path") if ctx else None


def has_slurm(sources: Sequence[Path | str]) -> bool:
    from velora_tui.data.slurm import is_slurm

    return any(isinstance(s, str) and is_slurm(s) for s in sources)


def slurm_monitor(sources: Sequence[Path | str]) -> Monitor:
    """The monitor of `slurm:` and the local paths beside it, Slurm asked first; Slurm's state
    said on stderr when it did not answer."""
    from velora_tui.data.slurm import is_slurm, parse_slurm_source
    from velora_tui.data.slurm_monitor import SlurmTies, open_slurm
    from velora_tui.remote.address import looks_remote

    named = [s for s in sources if isinstance(s, str) and is_slurm(s)]
    others = [s for s in sources if not (isinstance(s, str) and is_slurm(s))]
    if any(isinstance(s, str) and looks_remote(s) for s in others):
        raise Failure("slurm: cannot be combined with remote sources yet")
    if len(set(named)) > 1:
        raise Failure("one slurm: source at a time")
    found = parse_slurm_source(named[0])
    monitor: SlurmTies
    if found is not None and found.host is not None:
        from velora_tui.slurm.remote import open_remote_slurm

        monitor, remotes = open_remote_slurm(
            found, others, slurm_path(), python=remote_python(), sync=True
        )
        for host in remotes.host_statuses():
            if host.state != "connected":
                say(host.describe())
    else:
        monitor = open_slurm(sources, slurm_path(), wait=True)
    for status in monitor.statuses():
        if status.path == monitor.slurm_path_status and status.state is not SourceState.OK:
            say(status.describe())
    return monitor


def monitor_for(sources: Sequence[Path | str]) -> Monitor:
    """A monitor on the sources; remote ones' hosts connected (and asked what they hold) first."""
    from velora_tui.remote.sources import open_sources

    if has_slurm(sources):
        return slurm_monitor(sources)

    monitor, remotes = open_sources(sources_or_default(sources), python=remote_python())
    if remotes is not None:
        refused = [s for s in remotes.host_statuses() if s.state == "refused"]
        for status in remotes.host_statuses():
            if status.state != "connected":
                say(status.describe())
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
        say(status.describe())
    return monitor


def load_to_follow(sources: Sequence[Path | str], follow: bool) -> Monitor:
    """`load` for a command that may follow (`-f`): a source that does not exist yet is waited
    for (said once) rather than a failure."""
    monitor = load(sources, quiet_waiting=follow)
    if follow:
        for status in monitor.statuses():
            if status.state is SourceState.WAITING:
                say(status.describe())
    else:
        require_data(monitor)
    return monitor


def require_data(monitor: Monitor) -> None:
    own = getattr(monitor, "slurm_path_status", None)
    if own is not None:
        # Slurm's jobs are shown with or without databases (data/slurm_monitor.py): only a
        # Slurm that did not answer, with no database to show, is a failure.
        statuses = monitor.statuses()
        if any(s.path == own and s.state is SourceState.OK for s in statuses) or any(
            s.state is SourceState.OK for s in file_statuses(monitor)
        ):
            return
        monitor.close()
        raise SystemExit(1)
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
        places = ", ".join(source_names.name(m.db) for m in matches)
        raise Failure(f"experiment {exp_id} is in several databases ({places}); name one SOURCE")
    return matches[0]


def group_keys(seeds: bool, keys: tuple[str, ...]) -> list[str] | None:
    """Grouping asked for: its keys ([] for seeds), None for none (the groups' code, and what
    it imports, is loaded only then)."""
    if not seeds and not keys:
        return None
    from velora_tui.cli import group_output

    return group_output.group_keys(seeds, keys)
