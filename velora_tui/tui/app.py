"""The Textual app: wires the data layer's monitor and change feed to the screens."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from velora_tui.data.cleaning import clean_text
from velora_tui.data.database import ReadFailed
from velora_tui.data.feed import ChangeFeed, live_updates
from velora_tui.data.files import new_output
from velora_tui.data.monitor import Monitor, sort_summaries
from velora_tui.data.records import ExperimentSummary, Key, Update
from velora_tui.report.alerts import AlertTracker, RunHealth, evaluated_pasts
from velora_tui.report.export import write_episodes
from velora_tui.report.format import shown_path
from velora_tui.report.notify import TerminalNotifier
from velora_tui.tui import runtime
from velora_tui.tui.messages import DataChanged, OpenExperiment
from velora_tui.tui.screens.base import VeloraScreen
from velora_tui.tui.screens.experiments import ExperimentsScreen
from velora_tui.tui.settings import Settings, from_user
from velora_tui.tui.workers import ReportsWorkerFailures, cancelled, read_worker

if TYPE_CHECKING:
    from velora_tui.data.slurm import PathTemplate
    from velora_tui.report.user_settings import UserSettings

__all__ = ["Settings", "VeloraApp", "make_app", "run_app", "run_demo"]

# While commits stream in, the app reads them as often as the tail shows them (`tail -f` reads
# more often): every read is drawn on the list, the header, the tail and the charts, so more
# reads would cost CPU and show nothing more.
STREAM_READ_INTERVAL = 0.1
# How long the app waits, before it starts, for its sources to say whether they are files or
# directories (and for the directories' walks): what has not answered by then is waited for by
# the first read, in a thread, while the screen shows.
STARTUP_PATIENCE = 0.5


class ExperimentCommands(Provider):
    """Command palette: jump to any experiment by id, agent or env."""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, VeloraApp)
        matcher = self.matcher(query)
        for summary in sort_summaries(app.monitor.summaries(), app.now()):
            label = (
                f"Open #{summary.id} {clean_text(summary.agent)} · {clean_text(summary.env)}"
                f" ({summary.status(app.now())})"
            )
            score = matcher.match(label)
            if score > 0:
                # Content, not str: Textual reads a hit's text (and its help) as markup, and
                # names and paths come from the data. The path goes on the prompt's second
                # line, as the help would be.
                where = Content(clean_text(shown_path(summary.db), 200)).stylize("dim")
                yield Hit(
                    score,
                    Content.assemble(highlighted(matcher, label), "\n", where),
                    partial(app.open_experiment, summary.key),
                    text=label,
                )


def highlighted(matcher: Matcher, label: str) -> Content:
    """`matcher.highlight(label)` without reading `label` as markup."""
    content = Content(label)
    score, offsets = matcher.fuzzy_search.match(matcher.query, label)
    if score:
        for offset in offsets:
            if not label[offset].isspace():
                content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


class VeloraApp(ReportsWorkerFailures, App[None]):
    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "velora-tui"
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="quit"),
        Binding("question_mark", "help", "Help", tooltip="this help: every key"),
        Binding("r", "reload", "Re-read", show=False, tooltip="re-read every database anew"),
        # Textual's own, with what our palette holds (the footer shows it apart, as `palette`).
        Binding(
            App.COMMAND_PALETTE_BINDING,
            "command_palette",
            "palette",
            show=False,
            priority=True,
            tooltip="command palette: open any experiment, export it to CSV, save an SVG"
            " screenshot, change the theme",
        ),
    ]
    COMMANDS = App.COMMANDS | {ExperimentCommands}

    def __init__(self, monitor: Monitor, settings: Settings | None = None) -> None:
        super().__init__()
        self.monitor = monitor
        self.settings = settings or Settings()
        self.feed: ChangeFeed | None = None
        self.last_update: datetime | None = None
        self.alerts = AlertTracker(self.settings.health, self.settings.targets)
        # Runs whose newest rows a worker is evaluating for their health (read_health).
        self.health_reading: set[Key] = set()
        self.theme_loaded = False  # the settings' theme applied: later changes are the user's
        notify = self.settings.notify
        self.notifier = TerminalNotifier(notify, os.environ) if notify else None
        self.event_loop: asyncio.AbstractEventLoop | None = None  # once mounted
        self.sub_title = clean_text(", ".join(shown_path(s) for s in monitor.specs), 200)
        # The first read starts now, while Textual starts up, and is shown once both are done.
        self.first_read: Future[list[Update]] = Future()
        threading.Thread(target=self._read_first, name="first-read", daemon=True).start()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's, but text unless asked otherwise: a notification names runs, folders and
        values from the data, and Textual's markup would run `[@click=app.quit]` when clicked
        (or fail on `[/oops]`). The screens' own notifications say `markup=False` too."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _read_first(self) -> None:
        # Started before runtime.guard_exit blocks SIGTERM and SIGHUP everywhere else: such a
        # signal must not end the process here (by its default action) while a source that
        # does not answer keeps this read waiting.
        signal.pthread_sigmask(signal.SIG_BLOCK, runtime.EXIT_SIGNALS)
        try:
            if self.monitor.unsettled:
                self.monitor.discover()
            self.first_read.set_result(self.monitor.refresh())
        except BaseException as exc:  # shown by the worker that waits for it
            self.first_read.set_exception(exc)

    def now(self) -> datetime:
        return self.settings.clock()

    def first_read_done(self) -> bool:
        return self.first_read.done()

    def feed_description(self) -> str:
        if not self.settings.live:
            return "paused"
        if self.feed is None:
            return "polling" if self.settings.poll else "watching"
        return self.feed.describe()

    def get_default_screen(self) -> Screen[None]:
        return ExperimentsScreen()

    def exit_from_thread(self) -> None:
        """Ask the app to exit, from any thread, without waiting for its event loop."""
        loop = self.event_loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(self.exit)

    def on_mount(self) -> None:
        # SIGTERM and SIGHUP are taken by runtime.guard_exit's thread (they are blocked in
        # every other thread), which asks for the exit through exit_from_thread.
        self.event_loop = asyncio.get_running_loop()
        self.apply_user_settings()
        self.initial_load()

    def apply_user_settings(self) -> None:
        """The settings file's theme, and a notification for what in it was not used."""
        theme = self.settings.theme
        if theme is not None and theme in self.available_themes:
            self.theme = theme
        elif theme is not None and self.settings.settings_file is not None:
            self.notify(f"settings: no theme {clean_text(theme, 40)!r}", severity="warning")
        self.theme_loaded = True
        if self.settings.settings_problem:
            self.notify(clean_text(self.settings.settings_problem, 300), severity="warning")

    def smoothing_chosen(self, smoothing: float) -> None:
        """The charts' smoothing the user picks (`s`/`S`) is kept for next time."""
        self.settings.smoothing = smoothing
        self.save_setting("smoothing", smoothing)

    def save_setting(self, key: str, value: str | float) -> None:
        if self.settings.settings_file is None:
            return
        from velora_tui.report.user_settings import save

        problem = save({key: value}, self.settings.settings_file)
        if problem is not None:
            self.notify(clean_text(problem, 300), severity="warning", timeout=8)

    def watch_theme(self, theme: str) -> None:
        """A theme the user picks (the palette's "Change theme") is kept for next time."""
        if not self.theme_loaded or self.settings.settings_file is None:
            return
        if theme == self.settings.theme:
            return
        self.settings.theme = theme
        self.save_setting("theme", theme)

    # -- data flow -------------------------------------------------------------------------

    @read_worker("load", "first read")
    def initial_load(self) -> None:
        updates = self.first_read.result()
        self.call_from_thread(self.publish, updates, True)
        if self.settings.live:
            self.call_from_thread(self.start_watching)

    @read_worker("scan", "add up")
    def add_up(self) -> None:
        """The aggregates the first screen went without (exact counts, best rewards, inf/NaN),
        a short read at a time; each experiment's shown as soon as it is complete."""
        for updates in self.monitor.scan():
            if cancelled():
                return
            if updates:
                self.call_from_thread(self.added_up, updates)

    def added_up(self, updates: list[Update]) -> None:
        """Show what the scan found in existing rows, inf/NaN marks included, without an alert
        for each (alerts are for what happens while watching)."""
        self.alerts.added_up(self.monitor, updates)
        self.publish(updates)

    def start_watching(self) -> None:
        self.feed = ChangeFeed(
            self.monitor, poll=self.settings.poll, stream_interval=STREAM_READ_INTERVAL
        )
        self.watch_changes(self.feed)
        self.set_interval(1.0, self.heartbeat)

    @work(exclusive=True, group="watch", exit_on_error=False, description="watching for changes")
    async def watch_changes(self, feed: ChangeFeed) -> None:
        async for updates in live_updates(self.monitor, feed):
            if updates:
                self.publish(updates)

    def heartbeat(self) -> None:
        self.publish([], heartbeat=True)

    def publish(self, updates: list[Update], heartbeat: bool = False) -> None:
        if updates:
            self.last_update = self.now()
            if any(u.first_load or u.status_changed for u in updates) and self.monitor.scanning():
                self.add_up()  # a first load to add up, or a file that reads again
        for screen in self.screen_stack:
            if not isinstance(screen, VeloraScreen):
                continue
            if screen.is_showing:
                screen.post_message(DataChanged(updates, heartbeat))
            elif updates:
                screen.stale = True
        self.raise_alerts(updates, heartbeat)

    def raise_alerts(self, updates: list[Update], heartbeat: bool) -> None:
        alerts = self.alerts.after(self.monitor, updates, heartbeat, self.now())
        self.read_health_of(updates)
        for alert in alerts:
            self.notify(alert.message, severity=alert.severity, timeout=12)  # type: ignore[arg-type]
        if alerts and self.notifier is not None:
            self.tell_terminal(self.notifier.escape(alerts))

    def read_health_of(self, updates: list[Update]) -> None:
        """Runs these updates name whose health is not known yet: their newest rows read and
        evaluated in a worker (HISTORY of them), never every row of a long run."""
        health = self.alerts.health
        keys = {(u.db, exp) for u in updates for exp in u.experiments}
        keys |= {(u.db, row.experiment_id) for u in updates for row in u.episodes}
        wanted = []
        for key in keys:
            if key in health.runs or key in self.health_reading:
                continue
            summary = self.monitor.summary(key)
            if summary is None:
                continue
            health.expect(key)
            self.health_reading.add(key)
            wanted.append(summary)
        if wanted:
            self.read_health(wanted)

    @read_worker("health", "health of the runs", exclusive=False)
    def read_health(self, summaries: list[ExperimentSummary]) -> None:
        health = self.alerts.health
        for done in evaluated_pasts(self.monitor, summaries, health.rules, health.target):
            if cancelled():
                return
            self.call_from_thread(self.health_read, done)

    def health_read(self, done: list[tuple[ExperimentSummary, RunHealth]]) -> None:
        """Runs' health from their newest rows: their state, not news (no alert)."""
        health = self.alerts.health
        changed: dict[Path, set[int]] = {}
        for summary, run in done:
            self.health_reading.discard(summary.key)
            if self.monitor.summary(summary.key) is not summary:
                health.waiting.pop(summary.key, None)  # its file was replaced meanwhile
                continue
            health.install(summary.key, run, summary)
            if health.label(summary):
                changed.setdefault(summary.db, set()).add(summary.id)
        if changed:
            self.publish([Update(db, experiments=ids) for db, ids in changed.items()])

    def tell_terminal(self, sequence: str) -> None:
        """Write escape sequences to the terminal, between frames: through the driver, which
        owns the terminal's output (as Textual's own copy_to_clipboard and bell do), from the
        event loop that writes the frames. Only while the app runs: the driver's output thread
        has stopped once it closes, and a write then would wait for it forever."""
        driver = self._driver
        if driver is not None and self._running and not self._closed:
            driver.write(sequence)

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        """A failure is reported by ReportsWorkerFailures; here the data keeps coming."""
        if state is not WorkerState.ERROR:
            return
        if worker.group == "watch" and self.feed is not None:
            # The watcher died: keep the data coming by polling.
            self.feed = ChangeFeed(self.monitor, poll=True, stream_interval=STREAM_READ_INTERVAL)
            self.watch_changes(self.feed)
        elif worker.group == "load" and self.settings.live and self.feed is None:
            self.start_watching()  # the first read failed: changes are still read as they come
        elif worker.group == "health":
            self.health_reading.clear()  # asked for again as their rows come

    async def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        self.monitor.close()
        if self.settings.on_exit is not None:
            self.settings.on_exit()

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        from velora_tui.tui.screens.help import HelpScreen  # it imports every screen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    @read_worker("load", "re-read")
    def action_reload(self) -> None:
        updates = self.monitor.reload()
        self.call_from_thread(self.publish, updates, True)
        self.call_from_thread(self.notify, "Re-read every database", timeout=2)

    @on(OpenExperiment)
    def experiment_asked_for(self, message: OpenExperiment) -> None:
        self.open_experiment(message.key)

    def open_experiment(self, key: Key) -> None:
        # Imported when first needed: its charts (plotext) are not part of the first screen.
        from velora_tui.tui.screens.experiment import ExperimentScreen
        from velora_tui.tui.screens.help import HelpScreen

        while isinstance(self.screen, ExperimentScreen | HelpScreen):
            self.pop_screen()
        main = self.screen
        if isinstance(main, ExperimentsScreen):
            main.select(key)
        self.push_screen(ExperimentScreen(key))

    def current_experiment(self) -> Key | None:
        from velora_tui.tui.screens.experiment import ExperimentScreen

        screen = self.screen
        if isinstance(screen, ExperimentScreen):
            return screen.key
        if isinstance(screen, ExperimentsScreen):
            return screen.query_one("#experiments").selected_key  # type: ignore[attr-defined, no-any-return]
        return None

    def action_export_csv(self) -> None:
        key = self.current_experiment()
        if key is None:
            self.notify("Select an experiment first", severity="warning")
            return
        self.export_csv(key)

    @read_worker("export", "export to CSV", exclusive=False)
    def export_csv(self, key: Key) -> None:
        db, exp_id = key
        database = self.monitor.databases[db]
        target = self.settings.output_dir / f"velora-{db.parent.name or 'db'}-exp{exp_id}.csv"
        shown = clean_text(str(target), 300)  # the folder's name is the data's
        stopped: ReadFailed | None = None
        try:
            with new_output(target) as out:
                try:
                    count = write_episodes(out, "csv", database.iter_episodes(exp_id))
                except ReadFailed as exc:
                    stopped = exc  # what was read is kept, and said to be incomplete
        except OSError as exc:
            message = f"Export failed: cannot write {shown}: {exc.strerror or exc}"
            self.call_from_thread(self.notify, message, severity="error")
            return
        if stopped is not None:
            message = clean_text(f"Export stopped, {shown} is incomplete: {stopped}", 300)
            self.call_from_thread(self.notify, message, severity="error")
            return
        self.call_from_thread(self.notify, f"Exported {count} episodes to {shown}", timeout=8)

    def action_save_svg(self) -> None:
        stamp = self.now().strftime("%Y%m%d-%H%M%S")
        path = self.settings.output_dir / f"velora-tui-{stamp}.svg"
        shown = clean_text(str(path), 300)
        try:
            svg = self.export_screenshot()
            with new_output(path) as out:
                out.write(svg)
        except OSError as exc:
            self.notify(
                f"Screenshot failed: cannot write {shown}: {exc.strerror or exc}", severity="error"
            )
            return
        self.notify(f"Saved screenshot to {shown}", timeout=8)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            # Ours replace Textual's: the screenshot goes beside the CSVs and says where; the
            # help lists every key of the app.
            if command.title not in REPLACED_COMMANDS:
                yield command
        yield SystemCommand(
            "Export experiment to CSV",
            "Write the current experiment's episodes to a CSV file",
            self.action_export_csv,
        )
        yield SystemCommand(
            "Save screenshot (SVG)", "Save the screen as an SVG file", self.action_save_svg
        )
        yield SystemCommand(
            "Re-read everything", "Read every database again from scratch", self.action_reload
        )
        yield SystemCommand("Help: keys", "Show every key", self.action_help)
        if self.notifier is not None:
            yield SystemCommand(
                "Test desktop notification",
                "Send one through the terminal, as --notify does for each alert",
                self.action_test_notification,
            )

    def action_test_notification(self) -> None:
        if self.notifier is not None:
            self.tell_terminal(self.notifier.test())
            self.notify(f"Sent a test notification to the terminal ({self.notifier.method})")


REPLACED_COMMANDS = frozenset({"Screenshot", "Keys"})


def make_app(
    sources: Sequence[Path | str],
    settings: Settings | None = None,
    remote_python: str = "python3",
    slurm_path: PathTemplate | None = None,
) -> VeloraApp:
    from velora_tui.data.slurm import is_slurm
    from velora_tui.remote.sources import open_sources

    if any(isinstance(s, str) and is_slurm(s) for s in sources):
        # Slurm's jobs: asked in a thread of their own, their folders added as Slurm answers
        # (data/slurm_monitor.py); the app never waits for squeue.
        from velora_tui.data.slurm import parse_slurm_source
        from velora_tui.data.slurm_monitor import open_slurm

        named = [parse_slurm_source(s) for s in sources if isinstance(s, str) and is_slurm(s)]
        on_host = next((s for s in named if s is not None and s.host is not None), None)
        if on_host is not None:  # slurm:HOST: its jobs asked through ssh before the app starts
            from velora_tui.slurm.remote import open_remote_slurm

            local = [s for s in sources if not (isinstance(s, str) and is_slurm(s))]
            on_cluster, cluster_links = open_remote_slurm(
                on_host,
                local,
                slurm_path,
                python=remote_python,
                sync=False,
                patience=STARTUP_PATIENCE,
            )
            cluster_links.start()
            return VeloraApp(on_cluster, settings)
        slurm = open_slurm(sources, slurm_path, wait=False, patience=STARTUP_PATIENCE)
        return VeloraApp(slurm, settings)

    # Remote sources: their links run in threads of their own from now on (closed with the
    # monitor); the app reads their databases through their stand-ins like any file.
    monitor, remotes = open_sources(
        sources, python=remote_python, sync=False, patience=STARTUP_PATIENCE
    )
    if remotes is not None:
        remotes.start()
    return VeloraApp(monitor, settings)


def run_app(
    sources: Sequence[Path | str],
    poll: bool = False,
    notify: str | None = None,
    remote_python: str = "python3",
    slurm_path: PathTemplate | None = None,
    user: UserSettings | None = None,
) -> None:
    settings = from_user(user, poll=poll, notify=notify)
    run_prepared(make_app(sources, settings, remote_python, slurm_path))


def run_prepared(app: VeloraApp) -> None:
    """Run the app in a process set up for it (runtime.prepare: interpreter-wide settings)."""
    runtime.prepare(app.exit_from_thread, app.settings.on_exit)
    app.run()


def run_demo(
    poll: bool = False,
    rate: float = 4.0,
    notify: str | None = None,
    user: UserSettings | None = None,
) -> None:
    """The app on a live simulated run: a finished, a stalled and two running experiments."""
    with tempfile.TemporaryDirectory(prefix="velora-demo-") as folder:
        db = Path(folder) / "metrics.db"
        command = [
            sys.executable,
            "-m",
            "velora_tui",
            "simulate",
            str(db),
            "--history",
            "--experiments",
            "2",
            "--parallel",
            "--episodes",
            "3000",
            "--rate",
            str(rate),
            "--parent-pid",
            str(os.getpid()),
        ]
        simulator = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )

        def stop() -> None:
            if simulator.poll() is None:
                simulator.terminate()
                try:
                    simulator.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    simulator.kill()

        try:
            settings = from_user(user, poll=poll, on_exit=stop, notify=notify)
            run_prepared(make_app([db], settings))
        finally:
            stop()
            if os.environ.get("VELORA_TUI_KEEP_DEMO"):
                print(f"demo database was {db}")
