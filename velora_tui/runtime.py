"""How the app's process is set up so that keys are answered while rows pour in, and so that
it stays out of the training process's way.

These settings are for the process that runs the app (the command line's `open` and `demo`), not
for a library that imports velora_tui: they change process-wide behaviour.
"""

from __future__ import annotations

import gc
import sys

from velora_tui import placement

# Threads hand the GIL over at most this often. Beside a writer committing ~285 times a second
# the writer's p99 was 3-4x its own at 1 ms, 2.3-2.5x at 0.2 ms, when reads still held SQLite's
# lock while waiting for the GIL; with reads copied out in one step (data/database.py), 0.2 ms
# still gave a lower p99 than 5 ms (4.4 against 5.1 ms, 6 interleaved runs each). Keys are
# answered as fast (p95 61-87 ms under 2,000 episodes/s).
SWITCH_INTERVAL = 0.0002
# Python collects its youngest generation every 700 new container objects by default. Drawing
# the tail and the charts makes ~30,000 a second at 2,000 episodes/s, so collections ran ~50
# times a second and every few seconds a full one held the UI thread for 100-165 ms.
YOUNG_THRESHOLD = 20_000
OLDER_THRESHOLDS = (20, 20)


def favour_the_ui_thread() -> None:
    """Reads and plot builds run in threads; a key press waits for the GIL up to the switch
    interval (5 ms by default) at every hand-over."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def calm_the_collector() -> None:
    """Take what the imports made (~80,000 objects that live as long as the process) out of
    the collector's sight, and collect young objects in larger, rarer batches."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def prepare() -> None:
    favour_the_ui_thread()
    calm_the_collector()
    placement.stay_off_io_cpus()
