"""The one worker pattern of the app, its screens and widgets.

A node asks for data, a thread worker reads it through the data layer and posts a message back
to that node, whose handler shows it (messages.py). Such a worker is declared with `read_worker`: a
thread, exclusive in its group by default (a newer read replaces the one under way), and never
ending the app when it fails. It touches no widget; it hands its result back with `reply`,
which drops it if the worker was cancelled meanwhile (its node asked again, or went away).

Textual tells only the node that started a worker that it ended, and a worker started with
`exit_on_error=False` that raises is otherwise silent. Every node that runs workers takes
`ReportsWorkerFailures`, the one handler of worker state: a failure becomes a notification and a
log line, and then the node's `worker_ended` puts right what that worker leaves behind (a
pacing flag, keys asked for).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec

from textual import work
from textual.message import Message
from textual.message_pump import MessagePump
from textual.worker import Worker, WorkerState, get_current_worker

from velora_tui.data.cleaning import clean_text

log = logging.getLogger("velora_tui")

P = ParamSpec("P")


def read_worker(
    group: str, description: str, *, exclusive: bool = True
) -> Callable[[Callable[P, None]], Callable[P, Worker[None]]]:
    """Declare a method as a read worker of `group` (what a failure notification names it by:
    `description`); calling it starts the worker and returns it."""
    decorator: Callable[[Callable[P, None]], Callable[P, Worker[None]]] = work(
        thread=True,
        exclusive=exclusive,
        group=group,
        exit_on_error=False,
        description=description,
    )
    return decorator


def cancelled() -> bool:
    """Whether the running worker was cancelled (a long read checks between its steps)."""
    return get_current_worker().is_cancelled


def reply(node: MessagePump, message: Message) -> None:
    """From a worker's thread: post `message` to `node`, unless the worker was cancelled."""
    if not cancelled():
        node.post_message(message)


def report_failure(worker: Worker[Any]) -> None:
    """A notification on the screen and a log line (with the traceback) for a failed worker."""
    error = worker.error
    what = worker.description or worker.name
    log.error("%s failed", what, exc_info=error)
    worker.node.app.notify(
        clean_text(f"{what} failed: {type(error).__name__}: {error}", 300),
        severity="error",
        timeout=10,
        markup=False,  # the error's text may hold names and values from the data
    )


class ReportsWorkerFailures:
    """For the app, its screens and the widgets that run workers."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            report_failure(event.worker)
        if event.worker.is_finished:
            self.worker_ended(event.worker, event.state)

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        """A worker of this node ended (succeeded, failed or was cancelled): put right what it
        leaves behind. Nothing by default."""
