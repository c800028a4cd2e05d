"""`velora-tui alerts [-f]`: the app's alerts (report/alerts.py: stalled, finished, inf/NaN, and
each run's health) without the app, one line or JSON object each, and optionally a command run
for each (`--exec`). Without -f a run's health is what its newest rows say (HISTORY of them).

Without `-f` it reports what holds now and exits; with `-f` it follows the sources as `tail -f`
does and reports each alert as it happens, by the app's rules (the first look only records;
a clock tick every second finds the runs that stall).

The command given to `--exec` is split as a shell would split it (shlex) and run without a shell,
the alert as one JSON line on its stdin: nothing from a database ever reaches its arguments. It
runs in a thread of its own, one at a time in the alerts' order, so a slow command delays neither
the reading nor the printing; it is killed (its whole process group) after `--exec-timeout`
seconds. Its failures are one stderr line each and never stop the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click

from velora_tui.cli.common import (
    JSON,
    POLL,
    SOURCES,
    TARGET,
    Failure,
    load_to_follow,
    say,
    user_settings,
)
from velora_tui.cli.follow import follow
from velora_tui.data.cleaning import clean_text
from velora_tui.data.monitor import Monitor, sort_summaries
from velora_tui.data.records import Update
from velora_tui.report.alerts import (
    Alert,
    AlertTracker,
    HealthRules,
    HealthTracker,
    alert_json,
    current_alerts,
    done_with,
)
from velora_tui.report.format import clock, shown_path

# Alerts waiting for the command while it runs. At the default timeout a full queue is over a
# quarter of an hour of a command that hangs every time; beyond it, with -f, an alert is still
# printed but not handed to the command, and stderr says so.
QUEUE_LIMIT = 100
# How often a clock tick looks at the running experiments for a stall (as the app's heartbeat).
TICK = 1.0
# After SIGTERM to a command's process group that timed out, how long before SIGKILL.
KILL_GRACE = 1.0


def parse_command(text: str) -> list[str]:
    """`--exec`'s value as an argument list (never run through a shell)."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise Failure(f"--exec: cannot split {text!r}: {exc}") from None
    if not argv:
        raise Failure("--exec: no command given")
    argv[0] = os.path.expanduser(argv[0])  # `--exec '~/bin/hook'`: as a shell would have it
    if shutil.which(argv[0]) is None:
        raise Failure(f"--exec: command not found: {argv[0]}")
    return argv


class CommandRunner:
    """Runs the command once per alert, in order, in a thread of its own."""

    def __init__(self, argv: Sequence[str], timeout: float, capacity: int = QUEUE_LIMIT) -> None:
        self.argv = list(argv)
        self.name = clean_text(Path(argv[0]).name, 60)
        self.timeout = timeout
        self.capacity = capacity
        self.queue: queue.Queue[str | None] = queue.Queue(capacity)
        self.lock = threading.Lock()
        self.current: subprocess.Popen[bytes] | None = None
        self.stopping = False  # set under the lock: no command starts after it
        self.thread = threading.Thread(target=self._work, name="velora-tui --exec", daemon=True)
        self.thread.start()

    def submit(self, payload: str, message: str, wait: bool) -> None:
        """Queue one run; `wait`: for room in the queue (without -f, where nothing else waits),
        else an alert that finds it full is not handed to the command."""
        try:
            self.queue.put(payload, block=wait)
        except queue.Full:
            say(
                f"--exec: {self.capacity} alerts are already waiting for {self.name};"
                f" not run for: {message}"
            )

    def close(self, finish: bool) -> None:
        """`finish`: run what is queued, then stop. Else drop it (saying how many) and kill
        the command that runs."""
        if not finish:
            dropped = 0
            with contextlib.suppress(queue.Empty):
                while True:
                    if self.queue.get_nowait() is not None:
                        dropped += 1
            if dropped:
                say(f"--exec: stopped before running {self.name} for {dropped} alerts")
            with self.lock:
                self.stopping = True
                if self.current is not None:
                    _kill_group(self.current, signal.SIGKILL)
        self.queue.put(None)
        self.thread.join(None if finish else 2 * KILL_GRACE)

    def _work(self) -> None:
        while (payload := self.queue.get()) is not None:
            self._run(payload)

    def _run(self, payload: str) -> None:
        with self.lock:
            if self.stopping:
                return
            try:
                # Its own session: a process group to kill as a whole, and no Ctrl-C from the
                # terminal. Its output goes to stderr, so stdout holds alerts only.
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=sys.stderr.fileno(),
                    start_new_session=True,
                )
            except (OSError, ValueError) as exc:
                say(f"--exec: cannot run {self.name}: {getattr(exc, 'strerror', None) or exc}")
                return
            self.current = proc
        try:
            proc.communicate(payload.encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(KILL_GRACE)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.wait()
            say(f"--exec: {self.name} killed after {self.timeout:g} s")
            return
        finally:
            with self.lock:
                self.current = None
        code = proc.returncode
        if code < 0 and self.stopping:
            say(f"--exec: {self.name} killed: stopping")
        elif code < 0:
            say(f"--exec: {self.name} ended by signal {-code}")
        elif code:
            say(f"--exec: {self.name} exited with status {code}")


def _kill_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


class AlertPrinter:
    """One line (or JSON object) per alert on stdout, flushed; and the command's run."""

    def __init__(
        self, monitor: Monitor, as_json: bool, runner: CommandRunner | None, wait: bool
    ) -> None:
        self.monitor = monitor
        self.as_json = as_json
        self.runner = runner
        self.wait = wait

    def emit(self, alerts: Sequence[Alert], now: datetime) -> None:
        for alert in alerts:
            data = alert_json(alert, self.monitor.summary(alert.key), now)
            payload = json.dumps(data)
            if self.as_json:
                line = payload
            else:
                line = f"{clock(now)}  {alert.kind:<10}  {alert.message}"
                if len(self.monitor.databases) > 1:
                    line += f"  ({clean_text(shown_path(alert.key[0]), 200)})"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            if self.runner is not None:
                self.runner.submit(payload + "\n", alert.message, self.wait)


@click.command("alerts")
@SOURCES
@click.option(
    "-f", "--follow", "following", is_flag=True, help="Keep watching: each new alert as it happens."
)
@JSON
@click.option(
    "--exec",
    "command_line",
    metavar="CMD",
    help="Run CMD for each alert, the alert as JSON on its stdin (split like a shell would, run"
    " without one).",
)
@click.option(
    "--exec-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds before CMD (its whole process group) is killed.",
)
@POLL
@TARGET
def command(
    sources: tuple[Path | str, ...],
    following: bool,
    as_json: bool,
    command_line: str | None,
    exec_timeout: float,
    poll: bool,
    targets: dict[str, float],
) -> None:
    """Print the app's alerts: stalled and finished runs, inf/NaN, and each run's health (target
    reached, plateau, collapse, loss spike, entropy collapse, slowdown); with -f, each as it
    happens."""
    argv = parse_command(command_line) if command_line is not None else None
    settings = user_settings(targets)
    rules, targets = settings.health, settings.targets
    monitor = load_to_follow(sources, following)
    runner = CommandRunner(argv, exec_timeout) if argv else None
    printer = AlertPrinter(monitor, as_json, runner, wait=not following)
    finished = False
    try:
        if following:
            _follow(monitor, printer, poll, rules, targets)
        else:
            _report_now(monitor, printer, rules, targets)
        finished = True
    finally:
        if runner is not None:
            runner.close(finish=finished and not following)


def _report_now(
    monitor: Monitor, printer: AlertPrinter, rules: HealthRules, targets: dict[str, float]
) -> None:
    # Exact figures, as `ls` prints them: a source that cannot be added up is named, and left out.
    incomplete = set(monitor.scan_all())
    for path in incomplete:
        say(monitor.databases[path].status.describe())
    now = datetime.now()
    summaries = sort_summaries((s for s in monitor.summaries() if s.db not in incomplete), now)
    # Each run's health from its newest rows (report/alerts.py: HISTORY), as the app has it.
    health = HealthTracker(rules, targets)
    health.read_past(monitor, summaries)
    printer.emit(current_alerts(summaries, now) + health.alerts_now(summaries), now)


def _added_up(monitor: Monitor) -> list[Update]:
    return [update for updates in monitor.scan() for update in updates]


def _follow(
    monitor: Monitor,
    printer: AlertPrinter,
    poll: bool,
    rules: HealthRules,
    targets: dict[str, float],
) -> None:
    tracker = AlertTracker(rules, targets)
    # The first look: what is there is recorded, not reported (inf/NaN in old rows included,
    # hence the rows added up first; each run's health from its newest rows).
    monitor.scan_all()
    tracker.observe(monitor.summaries(), datetime.now())
    # Only the runs that may still write: a finished or long idle one is read if rows come.
    now = datetime.now()
    tracker.health.read_past(monitor, [s for s in monitor.summaries() if not done_with(s, now)])

    async def report(updates: list[Update]) -> None:
        if any(u.first_load or u.status_changed for u in updates) and monitor.scanning():
            tracker.added_up(monitor, await asyncio.to_thread(_added_up, monitor))
        now = datetime.now()
        printer.emit(tracker.after(monitor, updates, False, now), now)
        pending = tracker.health.pending(monitor)  # runs first seen after their first episode
        if pending:
            await asyncio.to_thread(tracker.health.read_past, monitor, pending)

    def tick() -> None:  # the runs that stall, found by the clock
        now = datetime.now()
        printer.emit(tracker.after(monitor, [], True, now), now)

    follow(monitor, poll, report, tick, every=TICK)
