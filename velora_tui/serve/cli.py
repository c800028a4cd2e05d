"""`velora-tui serve`'s command line: options checked, the URL printed, errors in one line."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import click

from velora_tui.data.values import clean_text
from velora_tui.serve.access import TokenError, choose_token
from velora_tui.serve.server import ServeOptions, serve


def run_serve(
    sources: Sequence[Path | str],
    host: str,
    port: int,
    token_file: Path | None,
    max_sessions: int,
    poll: bool,
    remote_python: str,
) -> None:
    try:
        token = choose_token(token_file)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
    options = ServeOptions(
        sources=list(sources),
        token=token,
        host=host,
        port=port,
        poll=poll,
        max_sessions=max_sessions,
        remote_python=remote_python,
    )

    def out(url: str) -> None:
        shown = clean_text(", ".join(str(source) for source in sources), 300)
        say(f"serving {shown}; open this URL in a browser (Ctrl-C stops):")
        click.echo(url)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve(options, out, say)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        from velora_tui.cli import Failure

        raise Failure(f"cannot listen on {host}:{port}: {reason}") from None


def say(line: str) -> None:
    click.echo(f"velora-tui: {line}", err=True)
