"""The one way the tests wait: for a condition, polled, with a deadline that fails the test and
says what was waited for. `wait_for` from a test's thread (processes, files, sockets), `until`
from a test that runs under asyncio (the app under Pilot, in-process readers): it yields to the
event loop between looks.

A bare sleep is only for "nothing more arrives" checks, where no condition can say when to
stop looking; each one says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

INTERVAL = 0.02  # seconds between looks


def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = INTERVAL, what: str = ""
) -> float:
    """Poll `condition` until it holds; AssertionError (a test failure) after `timeout` s.
    Returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)
    return time.monotonic() - started


async def until(condition: Callable[[], bool], what: str = "", timeout: float = 10.0) -> float:
    """`wait_for` under asyncio: the event loop runs between looks."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(INTERVAL)
    return time.monotonic() - started
