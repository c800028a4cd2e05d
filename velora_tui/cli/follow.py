"""The one loop that follows the sources as they are written: `tail -f` and `alerts -f`.

It runs until Ctrl-C, SIGTERM or SIGHUP (a terminal or ssh session that went away), says on
stderr what a user must know (watching fell back to polling, a file was replaced, a source
stopped or started answering) and hands each batch of updates to the command. The reading
threads are kept off the CPUs that complete the disk's writes before they start (placement.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from velora_tui.cli.common import say
from velora_tui.data.feed import ChangeFeed, live_updates
from velora_tui.data.monitor import Monitor
from velora_tui.data.placement import stay_off_io_cpus
from velora_tui.data.records import Update
from velora_tui.data.source_names import source_names
from velora_tui.remote.sources import RemoteMonitor

OnUpdates = Callable[[list[Update]], Awaitable[None]]


def keep_remotes_live(monitor: Monitor) -> None:
    """For a command that follows: remote sources' links keep running (in threads of their
    own), and each change of a host's state is said on stderr."""
    if isinstance(monitor, RemoteMonitor):
        for link in monitor.remotes.links:
            link.tell(lambda status: say(status.describe()))
        monitor.remotes.start()


def follow(
    monitor: Monitor,
    poll: bool,
    on_updates: OnUpdates,
    tick: Callable[[], None] | None = None,
    every: float = 1.0,
) -> None:
    """Follow `monitor`'s sources: each batch of updates to `on_updates`, and `tick()` every
    `every` seconds if given (an exception from it ends the stream: stdout was closed)."""
    stay_off_io_cpus()  # before the threads that read are started: they inherit it
    monitor.start_replaying()
    keep_remotes_live(monitor)

    async def run() -> None:
        feed = ChangeFeed(monitor, poll=poll)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            feed.stop()
            monitor.close(0)  # whatever waits for a source that does not respond stops waiting

        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stop)

        async def ticks() -> None:
            assert tick is not None
            try:
                while True:
                    await asyncio.sleep(every)
                    tick()
            except Exception:
                stop()
                raise

        ticker = asyncio.create_task(ticks()) if tick is not None else None
        try:
            await watch(feed)
        finally:
            monitor.close(0)  # also on Ctrl-C: asyncio.run then waits for its threads
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    async def watch(feed: ChangeFeed) -> None:
        states = {s.path: s for s in monitor.statuses()}
        mode = feed.mode
        async for updates in live_updates(monitor, feed):
            if feed.mode is not mode:  # watching failed: say that it polls now, and why
                mode = feed.mode
                say(feed.describe())
            for update in updates:
                if update.reset:
                    say(
                        f"{source_names.name(update.db)}: replaced by a new database;"
                        " following it from its first episode"
                    )
                if update.status_changed:
                    status = monitor.databases[update.db].status
                    if states.get(update.db) != status:
                        states[update.db] = status
                        say(status.describe())
            await on_updates(updates)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
