"""How the app's process is set up so that keys are answered while rows pour in, and so that
it stays out of the training process's way.

These settings are for the process that runs the app (the command line's `open` and `demo`), not
for a library that imports velora_tui: they change process-wide behaviour.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import termios
import threading
import time
from collections.abc import Callable

from velora_tui.data import placement

# Threads hand the GIL over at most this often (Python's default: 5 ms). Short turns let a read
# thread that holds SQLite's read lock finish sooner, so a writer's commit waits less for it
# (its p99 beside a fast writer was lower than with the default), and keys are answered as fast.
SWITCH_INTERVAL = 0.0002
# Python collects its youngest generation every 700 new container objects by default. Drawing
# the tail and the charts under a fast writer makes such objects by the ten thousand a second,
# so collections ran dozens of times a second and every few seconds a full one held the UI
# thread long enough for keys to wait.
YOUNG_THRESHOLD = 20_000
OLDER_THRESHOLDS = (20, 20)
# SIGTERM and SIGHUP end the app. They are taken by a thread of their own, which also looks at
# the terminal every GUARD_INTERVAL seconds; the app is asked to exit, and if it has not after
# EXIT_GRACE seconds (its main thread stuck, see guard_exit), the process ends regardless.
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
GUARD_INTERVAL = 1.0
EXIT_GRACE = 3.0


def favour_the_ui_thread() -> None:
    """Reads and plot builds run in threads; a key press waits for the GIL up to the switch
    interval (5 ms by default) at every hand-over."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def calm_the_collector() -> None:
    """Take what the imports made (objects that live as long as the process) out of
    the collector's sight, and collect young objects in larger, rarer batches."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def terminal_alive(fd: int) -> bool:
    """False once the terminal on `fd` has hung up (its SSH connection or tmux pane gone)."""
    try:
        termios.tcgetattr(fd)
    except (termios.error, OSError):
        return False
    return True


def guard_exit(
    request_exit: Callable[[], None],
    before_hard_exit: Callable[[], None] | None = None,
    terminal: int | None = None,
) -> threading.Thread:
    """End the process on SIGTERM, SIGHUP, or its terminal going away, whatever its other
    threads are doing.

    When a terminal hangs up, only its session leader is sent SIGHUP: run under `make`, a
    wrapper or a shell that does not pass it on, the app never gets one. Its next write fails,
    Textual's output thread ends on that error, and the next frames wait for room in that
    thread's queue forever: the event loop, and the signal handlers it would run, with it
    (a demo left busy on a core, its simulator still writing). So the signals are
    blocked in every thread (call this before starting any) and waited for in one of its own,
    which also notices the hang-up itself. It calls `request_exit`, gives the app EXIT_GRACE
    seconds, then calls `before_hard_exit` and ends the process (the app writes nothing: no
    data is lost).
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, EXIT_SIGNALS)

    def guard() -> None:
        while True:
            caught = signal.sigtimedwait(EXIT_SIGNALS, GUARD_INTERVAL)
            if caught is not None:
                code = 128 + caught.si_signo
                break
            if terminal is not None and not terminal_alive(terminal):
                code = 128 + signal.SIGHUP
                break
        request_exit()
        time.sleep(EXIT_GRACE)
        if before_hard_exit is not None:
            before_hard_exit()
        os._exit(code)

    thread = threading.Thread(target=guard, name="velora-tui exit guard", daemon=True)
    thread.start()
    return thread


def terminal_fd() -> int | None:
    """The file descriptor of the terminal the app draws on, if it is one."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else -1
    except (OSError, ValueError):
        return None
    return fd if fd >= 0 and os.isatty(fd) else None


def prepare(
    request_exit: Callable[[], None], before_hard_exit: Callable[[], None] | None = None
) -> None:
    """Set up this process for the app (before any thread is started)."""
    favour_the_ui_thread()
    calm_the_collector()
    placement.stay_off_io_cpus()
    guard_exit(request_exit, before_hard_exit, terminal_fd())
