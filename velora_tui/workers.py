"""Worker failures, made visible where the worker ran.

Textual tells only the node that started a worker (app, screen or widget) that it ended, and a
worker started with `exit_on_error=False` that raises is otherwise silent. Every node that runs
workers takes `ReportsWorkerFailures`: a failure becomes a notification and a log line. What a
failed worker leaves behind (a pacing flag, keys asked for) is put right by the node itself, on
the same `Worker.StateChanged`.
"""

from __future__ import annotations

import logging
from typing import Any

from textual.worker import Worker, WorkerState

from velora_tui.data.values import clean_text

log = logging.getLogger("velora_tui")


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
