"""Each source's file system calls and reads, run off the caller's thread and waited for with a
deadline, so that one source that does not answer never holds up another, nor the app.

On a dead NFS or Lustre server (or an ssh mount whose connection hangs) `stat`, `open` and
`read` block in the kernel until the server answers, which may be never; no timeout can be
put on the call itself. So each source has a *lane*: its calls, one at a time, run by a small
pool of worker threads, and whoever needs a result waits for it at most a deadline. A lane
whose call has been running longer than that is *stuck*: its source is shown as not responding,
and further calls fail at once instead of queueing behind it, until the call comes back. The
worker it holds no longer counts: another takes its place, so the other lanes go on.

The workers are daemon threads: one blocked in the kernel never keeps the process from ending.
Only they may block on a source. Threads that something else joins or waits for without a
deadline (Textual's workers, asyncio's default executor, which the interpreter waits for at
exit) only ever wait for a lane's future, with a deadline.

A few workers, not a thread per source: with many sources, a thread each made a first load
slower (every SQLite call that gave up the GIL waited to get it back among them all) and each
heartbeat's look at every file dearer (a thread woken per file).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any, TypeVar

T = TypeVar("T")

# A source whose call has not come back after this long is "not responding". Far above what a
# healthy source takes: a read waits out a writer's lock for at most the busy timeout (1 s).
DEADLINE = 5.0
# Whoever waits for calls waits this much past the deadline: a call that has not come back by
# then counts as stuck when they look.
SETTLE = 0.05
# Workers that run calls at once, besides those stuck in a call (they live as long as the
# process; one started in place of a stuck one ends once that call has come back).
WORKERS = 4
# Signals a worker never takes: the process's own handling gets them (the app's exit guard
# waits for them in a thread of its own, with them blocked everywhere else; a worker started
# before it would otherwise take them, and die of their default action).
ASIDE = frozenset({signal.SIGTERM, signal.SIGHUP})

Job = tuple[Future[Any], Callable[[], Any]]

# Whether the calls this thread makes go before the queued ones (`urgent`).
_URGENT = threading.local()


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """The calls this thread makes in this block go before the calls queued in their lanes
    (after the one under way): what the user looks at is read before the background's work
    (a first load's scan, every run's health, the sparklines), which otherwise comes first
    when each of its reads takes a round trip to a remote host."""
    before = getattr(_URGENT, "on", False)
    _URGENT.on = True
    try:
        yield
    finally:
        _URGENT.on = before


class NotResponding(Exception):
    """A source's call did not come back within its deadline, or its lane is stuck."""


class Pool:
    """The worker threads that run the lanes' calls: `size` of them, besides those stuck in a
    call. A worker whose call has been running longer than its lane's deadline no longer
    counts: while lanes wait, the pool's watcher starts another in its place."""

    def __init__(self, size: int = WORKERS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # idle workers wait here
        self._changed = threading.Condition(self._lock)  # the watcher waits here
        self._ready: deque[Lane] = deque()  # lanes with calls to run, none of them running
        self._busy: dict[threading.Thread, Lane] = {}
        self._workers = 0  # alive (or being started)
        self._idle = 0  # waiting for work, none promised to them
        self._promised = 0  # woken or started for a waiting lane, not yet looking
        self._watcher = False

    @property
    def workers(self) -> int:
        """Worker threads alive, stuck ones included."""
        return self._workers

    # -- with the lock held ----------------------------------------------------------------

    def ready(self, lane: Lane) -> None:
        """`lane` has a call to run."""
        self._ready.append(lane)
        self._dispatch()

    def drop(self, lane: Lane) -> None:
        with contextlib.suppress(ValueError):
            self._ready.remove(lane)

    def _unserved(self) -> int:
        return len(self._ready) - self._promised

    def _counted(self) -> int:
        """Workers that count: all but those stuck in a call."""
        return self._workers - sum(1 for lane in self._busy.values() if lane.stuck)

    def _dispatch(self) -> None:
        """A worker for every waiting lane: an idle one, or a new one while fewer than `size`
        count; else the watcher waits for a busy one to finish or to count as stuck."""
        unserved = self._unserved()
        while unserved > 0 and self._idle:
            self._idle -= 1
            self._promised += 1
            self._work.notify()
            unserved -= 1
        while unserved > 0 and self._counted() < self.size:
            self._workers += 1
            self._promised += 1
            _start(self._serve, "velora-tui reader")
            unserved -= 1
        if unserved > 0:
            if not self._watcher:
                self._watcher = True
                _start(self._watch, "velora-tui reader watch")
            else:
                self._changed.notify()

    # -- threads ---------------------------------------------------------------------------

    def _serve(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, ASIDE)
        me = threading.current_thread()
        with self._lock:
            while True:
                self._promised -= 1
                while self._ready:
                    lane = self._ready.popleft()
                    job = lane.take(me)
                    if job is None:
                        continue
                    self._call(me, lane, *job)
                    if self._counted() > self.size:
                        self._workers -= 1  # another took its place while it was stuck
                        return
                self._idle += 1
                self._work.wait()

    def _call(
        self, me: threading.Thread, lane: Lane, future: Future[Any], call: Callable[[], Any]
    ) -> None:
        """Run one call, the lock released meanwhile."""
        self._busy[me] = lane
        self._lock.release()
        error: BaseException | None = None
        result: Any = None
        try:
            result = call()
        except BaseException as exc:
            error = exc
        finally:
            self._lock.acquire()
        del self._busy[me]
        # Unstuck before its future is done: whoever sees the call done sees the lane answer.
        if lane.done():
            self.ready(lane)
        elif self._unserved() > 0:
            self._changed.notify()
        self._lock.release()
        try:
            _settle(future, error, result)
        finally:
            self._lock.acquire()

    def _watch(self) -> None:
        """While lanes wait and every worker that counts is busy: wait until one of them is
        done or counts as stuck (then another is started in its place)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, ASIDE)
        with self._lock:
            while True:
                if self._unserved() <= 0:
                    self._changed.wait()
                    continue
                if self._idle or self._counted() < self.size:
                    self._dispatch()
                    continue
                now = time.monotonic()
                due = [lane.stuck_at() for lane in self._busy.values() if not lane.stuck]
                self._changed.wait(max(0.005, min(due, default=now + 0.1) - now))


def answer(future: Future[T] | None, otherwise: T) -> T:
    """A call's result if it has come back; `otherwise` if it has not, failed, or was given up
    on (a closing monitor abandons its lanes: their calls end cancelled or NotResponding)."""
    if future is None or not future.done() or future.cancelled() or future.exception():
        return otherwise
    return future.result()


def _start(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


class Lane:
    """One source's calls, one at a time, each waited for at most the deadline."""

    def __init__(self, name: str, deadline: float = DEADLINE, pool: Pool | None = None) -> None:
        self.name = name
        self.deadline = deadline
        self._pool = pool if pool is not None else POOL
        self._jobs: deque[Job] = deque()
        # The call under way: its future, when it started (monotonic), the thread running it.
        self._running: Future[Any] | None = None
        self._since = 0.0
        self._runner: threading.Thread | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def stuck(self) -> bool:
        """A call has been running longer than the deadline."""
        return self._running is not None and time.monotonic() - self._since >= self.deadline

    def stuck_at(self) -> float:
        """When the call under way will count as stuck."""
        return self._since + self.deadline

    @property
    def running(self) -> bool:
        """A call is under way."""
        return self._running is not None

    @property
    def idle(self) -> bool:
        return self._running is None and not self._jobs

    # -- calls -----------------------------------------------------------------------------

    def submit(self, call: Callable[[], T]) -> Future[T]:
        """Queue a call; NotResponding at once if the lane is stuck."""
        future: Future[T] = Future()
        with self._pool._lock:
            if self.stuck:
                raise NotResponding(self.name)
            if getattr(_URGENT, "on", False):
                self._jobs.appendleft((future, call))
            else:
                self._jobs.append((future, call))
            if self._running is None and len(self._jobs) == 1:
                self._pool.ready(self)
        return future

    def run(self, call: Callable[[], T], wait: float | None = None) -> T:
        """The call's result, waited for at most `wait` (the deadline by default); raises
        NotResponding when it does not come back in time (the call is dropped if it has not
        started, else left to finish)."""
        if threading.current_thread() is self._runner:
            return call()  # a call made by a call of this lane
        future = self.submit(call)
        try:
            return future.result(timeout=self.deadline + SETTLE if wait is None else wait)
        except TimeoutError:
            future.cancel()
            raise NotResponding(self.name) from None
        except CancelledError:
            raise NotResponding(self.name) from None

    def abandon(self) -> None:
        """Stop waiting for this lane: queued calls are dropped and whoever waits for the call
        under way is told it is not responding; that call finishes on its own, in a thread
        that never keeps the process alive."""
        with self._pool._lock:
            jobs = list(self._jobs)
            self._jobs.clear()
            self._pool.drop(self)
            running = self._running
        for future, _ in jobs:
            future.cancel()
        if running is not None:
            with contextlib.suppress(InvalidStateError):  # it may have just finished
                running.set_exception(NotResponding(self.name))

    # -- for the pool (its lock held) ------------------------------------------------------

    def take(self, runner: threading.Thread) -> Job | None:
        """The next call to run, marked as under way (None: all were dropped)."""
        while self._jobs:
            future, call = self._jobs.popleft()
            if future.set_running_or_notify_cancel():
                self._running, self._since, self._runner = future, time.monotonic(), runner
                return future, call
        return None

    def done(self) -> bool:
        """The call under way is over; whether the lane has more to run."""
        self._running = self._runner = None
        return bool(self._jobs)


def _settle(future: Future[Any], error: BaseException | None, result: Any = None) -> None:
    """Give a future its outcome, unless someone gave up on it meanwhile (abandon)."""
    with contextlib.suppress(InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


POOL = Pool()
