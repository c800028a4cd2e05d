"""`velora-tui serve`: the monitor in a browser; options checked, the URL printed, errors in one
line (the server itself is velora_tui/serve/)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from velora_tui.cli.common import (
    POLL,
    SOURCES,
    Failure,
    remote_python,
    say,
    sources_or_default,
)
from velora_tui.data.cleaning import clean_text
from velora_tui.serve.access import TokenError, choose_token
from velora_tui.serve.server import ServeOptions, serve


@click.command("serve")
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
@POLL
def command(
    sources: tuple[Path | str, ...],
    host: str,
    port: int,
    token_file: Path | None,
    max_sessions: int,
    poll: bool,
) -> None:
    """Serve the monitor to a browser (one URL to open, with a token; README: In a browser)."""
    try:
        token = choose_token(token_file)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
    options = ServeOptions(
        sources=sources_or_default(sources),
        token=token,
        host=host,
        port=port,
        poll=poll,
        max_sessions=max_sessions,
        remote_python=remote_python(),
    )

    def out(url: str) -> None:
        shown = clean_text(", ".join(str(source) for source in options.sources), 300)
        say(f"serving {shown}; open this URL in a browser (Ctrl-C stops):")
        click.echo(url)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve(options, out, say)
    except OSError as exc:
        raise Failure(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
