"""One browser tab's app process, and how many may run at once.

textual-serve's AppService speaks the protocol between the server and the app's web driver
(its screen out, keys and sizes in, downloads) and is kept as it is. Two things are not: it
starts the app with a shell command line, and it waits for the app to quit for as long as that
takes. Here the app is exec'd from an argument list (no shell sees a source path, whatever it
holds), in a session of its own, and a tab that closes ends its process within
QUIT_GRACE + TERM_GRACE + KILL_GRACE seconds whatever state the app is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from asyncio.subprocess import PIPE, Process
from collections.abc import Awaitable, Callable, Iterator, Sequence

from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from velora_tui.serve.access import TOKEN_ENV

# The app is asked to quit (it usually has within 0.3 s), then sent SIGTERM (the app's exit
# guard ends it at most runtime.EXIT_GRACE = 3 s later; it is rarely needed), then SIGKILL.
QUIT_GRACE = 1.5
TERM_GRACE = 2.0
KILL_GRACE = 1.0


class AppProcess(AppService):
    """The app for one websocket: `argv` exec'd, ended by deadline."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        write_bytes: Callable[[bytes], Awaitable[None]],
        write_str: Callable[[str], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
        download_manager: DownloadManager,
    ) -> None:
        # AppService keeps a command line; it is only shown here, never run (see below).
        super().__init__(
            shlex.join(argv),
            write_bytes=write_bytes,
            write_str=write_str,
            close=close,
            download_manager=download_manager,
        )
        self.argv = list(argv)
        self._stopping: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        environment = self._build_environment(width=width, height=height)
        environment.pop(TOKEN_ENV, None)  # the app has no use for the server's token
        # The page is not the terminal the server was started in: it shows colours whatever
        # that terminal's NO_COLOR says (textual-serve asks Textual for truecolor).
        environment.pop("NO_COLOR", None)
        # Its own session: the terminal's Ctrl-C reaches the server alone, which ends every
        # tab's process itself, and the group can be signalled as one.
        process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
            env=environment,
            start_new_session=True,
        )
        assert process.stdin is not None
        self._process, self._stdin = process, process.stdin
        return process

    async def stop(self) -> None:
        """End the app (idempotent: the first call does it, later ones wait for it)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(Exception):  # a pipe already gone, a timeout: signals follow
            await asyncio.wait_for(self._quit(process), QUIT_GRACE)
        for signum, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, KILL_GRACE)):
            if process.returncode is not None:  # reaped: its pid may belong to another by now
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _quit(self, process: Process) -> None:
        """AppService.stop: ask the app to quit and read what it writes until it has."""
        await super().stop()
        await process.wait()


class SessionLimit:
    """How many app processes run at once: a websocket holds a place from before its process
    starts until that process has been reaped."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.open = 0

    def full(self) -> bool:
        return self.open >= self.most

    def reason(self) -> str:
        """What a refused tab is told (a websocket close reason: at most 123 bytes)."""
        return (
            f"{self.open} of {self.most} sessions are open (--max-sessions):"
            " close a tab, then reload this one"
        )

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1
