"""`velora-tui cache info|clear`: the local copies of remote databases."""

from __future__ import annotations

import click

from velora_tui.remote.mirror import cache_size, clear_cache, remote_root


@click.group("cache")
def command() -> None:
    """The local copies of remote databases (in the cache folder)."""


@command.command("info")
def info() -> None:
    """Where the local copies are and how much room they take."""
    click.echo(f"{remote_root()}  {cache_size() / 1e6:.1f} MB")


@command.command("clear")
def clear() -> None:
    """Delete every local copy (they are fetched again when next needed)."""
    size = cache_size()
    root = clear_cache()
    click.echo(f"removed {root} ({size / 1e6:.1f} MB)", err=True)
