"""How soon a new experiment reaches the list, against a new episode of a known one.

A writer process does what velora does when a run starts: it commits the experiment row, then
its first episode, each through its own SQLModel session (velora_tui.writer.simulate.Writer). It
stamps each commit with CLOCK_MONOTONIC (time.perf_counter() on Linux, the same clock in
every process). Each try gives the new experiment an env name of its own, and a new episode
of the known experiment a reward of its own, so that its arrival on the screen can be told.

Two ways to watch:
- end to end: the app as its own process on a pseudo-terminal (120x40), timed until the env
  name (or the reward) has been written to the terminal;
- traced: the app in this process, headless (120x40), with timestamps at each stage (the read
  that found it, the publish, the list's redraw request, the redraw that shows it, the paint),
  to tell where the time goes. Nothing of velora_tui is changed; its classes are subclassed or
  wrapped here.

Each runs on a quiet file and beside a running experiment (the simulator at 20 episodes/s).
Prints; asserts nothing. `.venv/bin/python bench/new_experiment.py [--tries N] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    Metric,
    load_note,
    median,
    print_header,
    scratch_dir,
    simulator,
    timed_env,
)
from tests.support.databases import RunSpec, build_velora_db
from tests.support.processes import Terminal, python_command, stop_process
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.feed import IDLE_STEP_MS
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import Update
from velora_tui.tui.app import Settings, VeloraApp
from velora_tui.tui.screens.experiments import LIST_INTERVAL, ExperimentsScreen
from velora_tui.tui.widgets.experiment_table import ExperimentTable

GOAL_MS = 100.0
SIZE = (120, 40)
TIMEOUT = 10.0
KNOWN_ENV = "Known-v0"
STREAM_RATE = 20.0  # the running experiment beside: velora's early-training rate
SLOW_FIRST = 1.5  # seconds between a run's experiment row and its first episode (a slow one)

# Reads JSON requests on stdin, writes one JSON answer per request on stdout.
#   {"op": "new", "env": E, "wait": S}: an experiment row, then (S seconds later) its first
#   episode: velora's order; its first episode comes after one episode of training.
#   {"op": "episode", "exp": ID, "num": N, "reward": R}: one episode.
# Commit times are taken as each call returns (the commit, and for the experiment row the
# SELECT that reads its id back, as SQLModel's refresh does).
WRITER = """
import io, json, sys, time
from pathlib import Path
from velora_tui.writer.simulate import RunPlan, Writer, episodes

log = io.StringIO()  # makes the writer keep the episode's id (no SELECT after the commit)
writer = Writer(Path(sys.argv[1]), log=log)

def last_id():
    return int(log.getvalue().splitlines()[-1].split()[0])

for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "new":
        plan = RunPlan("Probe", request["env"], 100, 100, 500.0, 1)
        exp_id = writer.start(plan)
        t_exp = time.perf_counter()
        time.sleep(request["wait"])
        writer.add(exp_id, next(episodes(plan)))
        answer = {"exp": exp_id, "t_exp": t_exp, "t_ep": time.perf_counter(), "id": last_id()}
    else:
        values = {**next(episodes(RunPlan("Probe", "x", 100, 100, 500.0, 1))),
                  "episode_num": request["num"], "reward": request["reward"]}
        writer.add(request["exp"], values)
        answer = {"t": time.perf_counter(), "id": last_id()}
    print(json.dumps(answer), flush=True)
"""


class ProbeWriter:
    def __init__(self, db: Path, stderr: Path) -> None:
        with stderr.open("wb") as errors:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(db)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=timed_env(),
            )
        self.episodes: dict[int, int] = {}

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the probe writer ended (exit {self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def new_experiment(self, env: str, wait: float = 0.0) -> dict[str, Any]:
        answer = self.ask({"op": "new", "env": env, "wait": wait})
        self.episodes[answer["exp"]] = 1
        return answer

    def episode(self, exp_id: int, reward: float) -> dict[str, Any]:
        self.episodes[exp_id] += 1
        return self.ask(
            {"op": "episode", "exp": exp_id, "num": self.episodes[exp_id], "reward": reward}
        )

    def close(self) -> None:
        stop_process(self.proc)


@dataclass
class Try:
    """Seconds from commits to the screen: a new experiment with its first episode at once, a
    new episode of the known experiment, a new experiment whose first episode comes later."""

    env: str
    reward_text: str
    from_row: float = math.nan  # the new experiment's row commit -> its env on screen
    from_episode: float = math.nan  # its first episode's commit -> its env on screen
    known: float = math.nan  # the known experiment's new episode commit -> its reward on screen
    row_alone: float = math.nan  # row commit -> env on screen, its first episode SLOW_FIRST later
    stages: dict[str, float] = field(default_factory=dict)  # traced only
    known_stages: dict[str, float] = field(default_factory=dict)
    slow_stages: dict[str, float] = field(default_factory=dict)


def probes(tries: int, seed: int) -> Iterator[tuple[str, float, float]]:
    """Per try: an env name (the slow-first-episode experiment's is the same with an `S`), a
    reward nobody else writes, and a pause before each step (0.6-1.6 s: the steps fall at every
    phase of the app's 1 s heartbeat)."""
    rng = random.Random(seed)
    for index in range(tries):
        env = f"Probe{seed % 100:02d}{index:02d}-v0"
        yield env, 7000.25 + index + 100 * (seed % 10), rng.uniform(0.6, 1.6)


def slow_env(env: str) -> str:
    return env.replace("-v0", "S-v0")


@contextmanager
def scenario(folder: Path, busy: bool) -> Iterator[tuple[Path, ProbeWriter, int]]:
    """A file with three finished runs and the known experiment; with `busy`, a simulator
    writing another run at STREAM_RATE. Yields the file, the probe writer, the known id."""
    db = folder / "metrics.db"
    build_velora_db(db, [RunSpec(planned=50)] * 3)
    with ExitStack() as stack:
        writer = ProbeWriter(db, folder / "writer.stderr")
        stack.callback(writer.close)
        known = writer.new_experiment(KNOWN_ENV)["exp"]
        if busy:
            stack.enter_context(
                simulator(db, rate=STREAM_RATE, episodes=100_000, commit_log=folder / "sim.log")
            )
        yield db, writer, known


# -- end to end, in a terminal -------------------------------------------------------------


def on_terminal(busy: bool, tries: int, seed: int) -> list[Try]:
    results = []
    with scratch_dir("new-experiment") as folder, scenario(folder, busy) as (db, writer, known):
        terminal = Terminal(python_command(db), SIZE, env=timed_env())
        try:
            if not terminal.wait_for(KNOWN_ENV, 0, 30):
                raise RuntimeError("the app did not list the known experiment")
            time.sleep(1.5)
            for env, reward, pause in probes(tries, seed):
                result = Try(env, f"{reward:.2f}")
                time.sleep(pause)
                mark = terminal.mark()
                answer = writer.new_experiment(env)
                if terminal.wait_for(env, mark, TIMEOUT):
                    shown = terminal.shown_at(env, mark)
                    result.from_row = shown - answer["t_exp"]
                    result.from_episode = shown - answer["t_ep"]
                time.sleep(pause)
                mark = terminal.mark()
                answer = writer.episode(known, reward)
                if terminal.wait_for(result.reward_text, mark, TIMEOUT):
                    result.known = terminal.shown_at(result.reward_text, mark) - answer["t"]
                time.sleep(pause)
                mark = terminal.mark()
                answer = writer.new_experiment(slow_env(env), SLOW_FIRST)
                if terminal.wait_for(slow_env(env), mark, TIMEOUT):
                    result.row_alone = terminal.shown_at(slow_env(env), mark) - answer["t_exp"]
                results.append(result)
        finally:
            terminal.close()
    return results


# -- traced, in this process ---------------------------------------------------------------

Event = tuple[float, str, Any]


class Trace:
    """Timestamped events from the app's stages (perf_counter)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def mark(self, what: str, detail: Any = None) -> None:
        self.events.append((time.perf_counter(), what, detail))

    def last(self, what: str, before: float) -> Event | None:
        found = [event for event in self.events if event[1] == what and event[0] < before]
        return found[-1] if found else None

    def first(self, what: str, after: float, test: Callable[[Any], bool]) -> Event | None:
        for event in self.events:
            if event[1] == what and event[0] >= after and test(event[2]):
                return event
        return None


TRACE = Trace()


def traced_refresh(original: Callable[[MetricsDatabase], Update]) -> Callable[..., Update]:
    def refresh(self: MetricsDatabase) -> Update:
        started = time.perf_counter()
        update = original(self)
        TRACE.mark(
            "read",
            (started, set(update.experiments), {row.id for row in update.episodes}),
        )
        return update

    return refresh


class TracedList(ExperimentsScreen):
    def show_later(self, changed: Any) -> None:
        pace = self.list_pace
        TRACE.mark(
            "request",
            (pace.timer is not None, max(0.0, pace.shown + pace.interval - time.monotonic())),
        )
        super().show_later(changed)

    def refresh_view(self, changed: Any = None) -> None:
        super().refresh_view(changed)
        order = set(self.query_one(ExperimentTable).order)
        TRACE.mark("drawn", (order, None if changed is None else set(changed)))
        stamp = len(TRACE.events)
        self.app.call_after_refresh(
            lambda: self.app.call_after_refresh(lambda: TRACE.mark("painted", stamp))
        )


class TracedApp(VeloraApp):
    def get_default_screen(self) -> TracedList:
        return TracedList()

    def publish(self, updates: list[Update], heartbeat: bool = False) -> None:
        experiments = {exp for u in updates for exp in u.experiments}
        ids = {row.id for u in updates for row in u.episodes}
        TRACE.mark("publish", (heartbeat, experiments, ids))
        super().publish(updates, heartbeat)


def stages_of(
    commit: float, found: Callable[[Any], bool], shown: Callable[[Any], bool]
) -> dict[str, float]:
    """Seconds spent in each stage from `commit` until the list showed it (a stage the trace
    lacks is left out). `found` tests a read's or publish's (experiments, episode ids), `shown`
    a redraw's (rows in the list, rows it redrew: None for all)."""
    stages: dict[str, float] = {}
    read = TRACE.first("read", commit, lambda d: bool(found((d[1], d[2]))))
    if read is None:
        return stages
    read_start = read[2][0]
    stages["commit -> read starts"] = read_start - commit
    stages["read"] = read[0] - read_start
    publish = TRACE.first("publish", read[0], lambda d: bool(found((d[1], d[2]))))
    if publish is None:
        return stages
    stages["read -> published"] = publish[0] - read[0]
    request = TRACE.first("request", publish[0], lambda d: True)
    drawn = TRACE.first("drawn", publish[0], shown)
    if request is None or drawn is None:
        return stages
    stages["published -> redraw asked"] = request[0] - publish[0]
    stages["redraw asked -> drawn"] = drawn[0] - request[0]
    stages["of which paced"] = request[2][1]  # until the list's pacing let it redraw
    previous = TRACE.last("drawn", request[0])
    cause = None if previous is None else TRACE.last("publish", previous[0])
    if request[2][1] > 0 and cause is not None:
        # What the redraw it had to wait behind was for: the app's once-a-second heartbeat
        # (times, statuses), or data.
        kind = "a heartbeat's" if cause[2][0] else "data's"
        stages[f"  paced behind {kind} redraw"] = request[2][1]
    index = TRACE.events.index(drawn) + 1
    painted = TRACE.first("painted", drawn[0], lambda d: bool(d == index))
    if painted is not None:
        stages["drawn -> painted"] = painted[0] - drawn[0]
        stages["total"] = painted[0] - commit
    return stages


def experiment_stages(commit: float, key: tuple[Path, int]) -> dict[str, float]:
    def found(detail: Any) -> bool:
        return key[1] in detail[0]

    def shown(detail: Any) -> bool:
        return key in detail[0]

    return stages_of(commit, found, shown)


def episode_stages(commit: float, key: tuple[Path, int], episode_id: int) -> dict[str, float]:
    def found(detail: Any) -> bool:
        return episode_id in detail[1]

    def shown(detail: Any) -> bool:
        return detail[1] is None or key in detail[1]

    return stages_of(commit, found, shown)


async def traced_run(busy: bool, tries: int, seed: int) -> list[Try]:
    TRACE.events.clear()
    results = []
    original = MetricsDatabase.refresh
    setattr(MetricsDatabase, "refresh", traced_refresh(original))  # noqa: B010 (for mypy)
    try:
        with (
            scratch_dir("new-experiment-trace") as folder,
            scenario(folder, busy) as (db, writer, known),
        ):
            app = TracedApp(Monitor([db]), Settings())
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause(1.5)
                for env, reward, pause in probes(tries, seed):
                    result = Try(env, f"{reward:.2f}")
                    await asyncio.sleep(pause)
                    made = await asyncio.to_thread(writer.new_experiment, env)
                    await asyncio.sleep(pause)
                    added = await asyncio.to_thread(writer.episode, known, reward)
                    await asyncio.sleep(pause)
                    slow = await asyncio.to_thread(writer.new_experiment, slow_env(env), SLOW_FIRST)
                    await asyncio.sleep(1.0)  # every stage of all three is over by then
                    result.stages = experiment_stages(made["t_exp"], (db, made["exp"]))
                    result.from_row = result.stages.get("total", math.nan)
                    result.from_episode = result.from_row - (made["t_ep"] - made["t_exp"])
                    result.known_stages = episode_stages(added["t"], (db, known), added["id"])
                    result.known = result.known_stages.get("total", math.nan)
                    result.slow_stages = experiment_stages(slow["t_exp"], (db, slow["exp"]))
                    result.row_alone = result.slow_stages.get("total", math.nan)
                    results.append(result)
    finally:
        setattr(MetricsDatabase, "refresh", original)  # noqa: B010
    return results


# -- report --------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    kept = [v for v in values if not math.isnan(v)]
    missed = len(values) - len(kept)
    if not kept:
        return f"never shown ({missed} tries)"
    text = f"median {median(kept) * 1e3:5.0f} ms, max {max(kept) * 1e3:5.0f} ms"
    return text + (f", {missed} never shown" if missed else "")


def print_tries(title: str, results: list[Try]) -> None:
    print(f"  {title} ({len(results)} tries):")
    for label, values in (
        ("new experiment, from its first episode's commit", [r.from_episode for r in results]),
        ("new experiment, from its row's commit", [r.from_row for r in results]),
        ("new episode of a known experiment", [r.known for r in results]),
        (
            f"new experiment, first episode {SLOW_FIRST:g} s after its row: from the row",
            [r.row_alone for r in results],
        ),
    ):
        verdict = ""
        if label.endswith("first episode's commit"):
            met = all(v <= GOAL_MS / 1e3 for v in values)  # NaN (never shown) fails too
            verdict = f"  (goal <= {GOAL_MS:.0f} ms every try: {'met' if met else 'NOT met'})"
        print(f"    {label:<66} {ms(values)}{verdict}")


def print_stages(title: str, results: list[Try]) -> None:
    for label, attribute in (
        ("new experiment (from its row's commit)", "stages"),
        ("new episode of a known experiment", "known_stages"),
        (f"new experiment, first episode {SLOW_FIRST:g} s later (from its row)", "slow_stages"),
    ):
        print(f"  {title}, {label}: stage medians (max) in ms")
        each: list[dict[str, float]] = [getattr(r, attribute) for r in results]
        names: list[str] = []
        for stages in each:
            names += [n for n in stages if n not in names]
        for name in names:
            values = [stages.get(name, math.nan) for stages in each]
            kept = [v for v in values if not math.isnan(v)]
            if kept:
                print(
                    f"    {name:<28} {median(kept) * 1e3:6.1f} ({max(kept) * 1e3:6.1f})"
                    f"  n={len(kept)}"
                )
        paced = [stages for stages in each if stages.get("of which paced", 0.0) > 0]
        print(
            f"    {len(paced)} of {len(results)} waited for the list's redraw pacing"
            f" (at most one redraw per LIST_INTERVAL, {LIST_INTERVAL * 1e3:.0f} ms)"
        )


def main(tries: int = 7) -> list[Metric]:
    print_header(
        f"a new experiment reaching the list, 120x40 ({load_note()}); data layer: a new"
        f" experiment row seen by the next read of new episodes; watcher idle step"
        f" {IDLE_STEP_MS} ms; list redrawn at most every {LIST_INTERVAL * 1e3:.0f} ms, a new"
        " experiment at once"
    )
    metrics = []
    for busy, label in ((False, "quiet file"), (True, f"beside a run at {STREAM_RATE:g}/s")):
        results = on_terminal(busy, tries, seed=1 if busy else 0)
        print_tries(f"app in a terminal, {label}", results)
        traced = asyncio.run(traced_run(busy, tries, seed=3 if busy else 2))
        print_tries(f"traced in-process (headless), {label}", traced)
        print_stages(label, traced)
        first = [r.from_episode for r in results]
        kept = [v for v in first if not math.isnan(v)]
        known = [r.known for r in results if not math.isnan(r.known)]
        worst = max(kept) * 1e3 if len(kept) == len(first) and kept else math.inf
        metrics.append(
            Metric(
                f"new experiment -> list, terminal, {label} (median / max of {len(first)})",
                f"<= {GOAL_MS:.0f} ms",
                f"{median(kept) * 1e3:.0f} / {worst:.0f} ms",
                worst <= GOAL_MS,
            )
        )
        metrics.append(
            Metric(
                f"known experiment's new episode -> list, terminal, {label}",
                "-",
                f"{median(known) * 1e3:.0f} / {max(known, default=math.inf) * 1e3:.0f} ms",
            )
        )
    return metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tries", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="5 tries")
    args = parser.parse_args()
    main(5 if args.quick else args.tries)
