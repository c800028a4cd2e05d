"""The `velora-tui` command: the app by default, and headless commands for use over SSH.

Each command lives in a module of its own here, named for it, and is imported only when it runs:
`velora-tui --help` lists the table below without importing any of them, and `velora-tui ls`
imports `ls`'s module and what it uses, never Textual (tests/system/test_imports.py checks).
The options and helpers the commands share are in `common.py`; the one loop that follows the
sources for `tail -f` and `alerts -f` is `follow.py`.
"""

from __future__ import annotations

import importlib
import os
from typing import NamedTuple

import click

from velora_tui import __version__


class Entry(NamedTuple):
    module: str  # velora_tui.cli.<module> defines `command`
    help: str  # the line `velora-tui --help` shows (the command's docstring says it in full)


# In the order `--help` lists them.
COMMANDS = {
    "open": Entry("open_app", "Open the monitor (the default command)."),
    "demo": Entry("demo", "Open the monitor on a live simulated training run."),
    "ls": Entry("ls", "List experiments with their progress and rewards (or their groups)."),
    "show": Entry("show", "Show one experiment: its summary and its config."),
    "diff": Entry("diff", "Compare two experiments' configs key by key."),
    "tail": Entry("tail", "Print the latest episodes; with -f, every new one as it is committed."),
    "export": Entry("export", "Export every episode of experiment ID (or groups' curves)."),
    "alerts": Entry("alerts", "Print the app's alerts: stalled and finished runs, inf/NaN."),
    "settings": Entry("settings", "Show the settings file and the settings in force."),
    "serve": Entry("serve", "Serve the monitor to a browser."),
    "cache": Entry("cache", "What velora-tui keeps of remote sources (in the cache folder)."),
    "simulate": Entry("simulate", "Write a fake training run into DB exactly as velora does."),
}

# The commands that read their SOURCEs in this process: their hosts get a head start
# (remote/launch.py). `serve` reads them in each browser tab's process (serve/tab.py).
READS_SOURCES = frozenset({"open", "ls", "show", "diff", "tail", "export", "alerts"})


class Commands(click.Group):
    """The table above, each command imported when it is asked for; and `velora-tui
    [SOURCE...]` opens the app (a first argument that is no command name is a source)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"{__name__}.{entry.module}")
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.help) for name, entry in COMMANDS.items()])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        wants_help = any(a in ("--help", "-h", "--version") for a in args)
        if (first is None and not wants_help) or (first is not None and first not in COMMANDS):
            args = ["open", *args]
        if not wants_help:
            head_start(args)
        return super().parse_args(ctx, args)


def head_start(args: list[str]) -> None:
    """Connect to the hosts of the command's remote SOURCEs now, while its module is imported
    (remote/launch.py): nothing is imported for a command without a remote-looking word."""
    name = next((a for a in args if not a.startswith("-")), None)
    if name not in READS_SOURCES:
        return
    words = args[args.index(name) + 1 :]
    if any(":" in word for word in words):
        from velora_tui.remote import launch

        launch.keep_readers()  # a command of the user's: the next one borrows its readers
        launch.head_start(words)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="velora-tui")
def main() -> None:
    """Live monitor for Velora training runs (metrics.db).

    With no command, opens the monitor on SOURCE... (metrics.db files or directories holding
    them; default ./metrics.db); its options (--poll, --notify): velora-tui open --help.
    """


def entry() -> None:
    """Console entry point: no traceback for anything a file can contain."""
    try:
        main(prog_name="velora-tui")
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("VELORA_TUI_DEBUG"):
            raise
        from velora_tui.remote.folders import FolderError  # only when something failed

        if isinstance(exc, FolderError):  # a cache or ssh folder that is not ours alone
            click.echo(f"velora-tui: {exc}", err=True)
            raise SystemExit(1) from None
        click.echo(f"velora-tui: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("velora-tui: set VELORA_TUI_DEBUG=1 for details, and please report it", err=True)
        raise SystemExit(1) from None
