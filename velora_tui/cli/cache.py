"""`velora-tui cache info|clear`: the stand-ins of remote databases (a few hundred bytes each:
the hosts answer every read, stand_ins.py) and the Python each host runs (interpreters.py), in
the cache folder; and the remote readers kept for the next command (launch.py, keeper.py)."""

from __future__ import annotations

import click

from velora_tui.data.cleaning import clean_text
from velora_tui.remote import interpreters, launch
from velora_tui.remote.stand_ins import cache_size, cache_sizes, clear_cache, remote_root


@click.group("cache")
def command() -> None:
    """What velora-tui keeps of remote sources (in the cache folder), and the remote readers
    it keeps for the next command ($VELORA_TUI_KEEP seconds, 60 by default)."""


@command.command("info")
def info() -> None:
    """Where it is, how much room each source takes, and the readers kept."""
    click.echo(f"{remote_root()}  {cache_size() / 1e6:.1f} MB")
    for name, size in cache_sizes().items():
        click.echo(f"  {clean_text(name, 200)}  {size:,} bytes")
    remembered = interpreters.listed()
    if remembered:
        click.echo(f"{interpreters.folder()}  the Python each host runs")
        for host, python, exe in remembered:
            shown = f"{clean_text(host, 100)}: {clean_text(python, 100)} is {clean_text(exe, 300)}"
            click.echo(f"  {shown}")
    kept = launch.kept_readers()
    if kept:
        click.echo("readers kept for the next command (ended by `velora-tui cache clear`)")
        for about in kept:
            host = clean_text(about.get("host"), 100)
            left = about.get("left")
            state = "in use" if about.get("lent") else f"{left} s left"
            click.echo(f"  {host}  process {about.get('pid')}, {state}")


@command.command("clear")
def clear() -> None:
    """Delete it, and end the readers kept for the next command (a running velora-tui makes
    its stand-ins again at their host's next change)."""
    size = cache_size()
    root = clear_cache()
    interpreters.clear()
    ended = launch.end_kept_readers()
    click.echo(f"removed {root} ({size / 1e6:.1f} MB)", err=True)
    if ended:
        click.echo(f"ended {ended} kept reader{'s' if ended != 1 else ''}", err=True)
