"""ChangeFeed + live_updates against a real writer process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.folders import dir_snapshot
from velora_tui.data.feed import ChangeFeed, live_updates
from velora_tui.data.monitor import Monitor


async def test_stop_ends_the_feed(sample_db: Path) -> None:
    folder = sample_db.parent
    snapshot = dir_snapshot(folder)
    monitor = Monitor([sample_db])
    feed = ChangeFeed(monitor, heartbeat=0.1)
    count = 0

    async def consume() -> None:
        nonlocal count
        async for _updates in live_updates(monitor, feed):
            count += 1

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.35)
    feed.stop()
    await asyncio.wait_for(task, 5)
    monitor.close()
    assert count >= 1
    assert dir_snapshot(folder) == snapshot
