"""What velora-tui costs the training process: the writer's commit latency and its "database is
locked" errors, alone vs with `tail -f` (watching, then polling) vs with the app (in a terminal,
on the experiment's charts: the view that reads the most; watching, then polling).

The writer is a subprocess doing exactly what velora does (velora_tui.writer.simulate.Writer:
a SQLModel session, add, commit, one episode per commit, default pysqlite settings, 5 s busy
timeout), about 2 ms apart; each Writer.add is timed. The machine has 2 cores, so runs are
repeated in rounds (as many as there are conditions: their order rotates each round) and the
median of the runs is reported, with the spread of the runs alone as the noise floor.
3267b21's `tail -f` runs in the same rounds (its files by `git archive`, bench.common.old_checkout;
`--condition` picks conditions; `--app-commit COMMIT` adds the app as of COMMIT, in the same
rounds, for a before/after of the app's own cost).
Goals: p99 with a reader <= 1.1x p99 alone, and `tail -f`'s never above 3267b21's; 0 locked
errors. `--busy-timeout 0` counts the commits a reader's lock held up; with WRITER_LOCKED_AT=FILE
in the environment each writer appends to FILE when (time.monotonic()) they were, to set beside
a trace of the reader's statements (docs/performance.md, The writer beside the app).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    QUIET,
    LineCollector,
    Metric,
    OtherLoad,
    load_note,
    median,
    ms,
    old_checkout,
    old_env,
    print_header,
    process,
    ratio,
    scratch_dir,
    timed_env,
)
from bench.tail_latency import PROBE_EXPERIMENT, wait_until_following
from tests.support.databases import build_velora_db
from tests.support.numbers import cpu_seconds, percentile
from tests.support.processes import Terminal, python_command

GOAL_RATIO = 1.1
MIN_QUIET = 3  # rounds undisturbed by other processes needed to judge on them alone
CONDITIONS = ("alone", "tail -f", "tail -f --poll", "app", "app --poll")
# An older reader, run in the same rounds: today's may never cost the writer more (issue 26).
OLD_COMMIT = "3267b21"
OLD = f"tail -f ({OLD_COMMIT})"
# --busy-timeout MS: the writer's own busy timeout (velora's is pysqlite's 5 s). At 0 a commit
# that meets a reader's lock fails at once and is counted as "locked": how often a reader makes
# the writer wait, which at 5 s is a sleep of at least 1 ms in SQLite's busy handler.
WRITER_BUSY_MS: int | None = None


@dataclass(frozen=True, slots=True)
class WriterRun:
    condition: str
    latencies: list[float]
    locked: int
    other_errors: int
    tail_rows: int | None  # rows tail -f printed (None: no tail)
    tail_cpu: float  # tail's CPU seconds / the writer's wall time (NaN: no tail)
    other_load: float  # other processes on the machine meanwhile, in cores

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    @property
    def max(self) -> float:
        return max(self.latencies, default=math.nan)


# -- the writer (runs in its own process) ----------------------------------------------------


def write_rows(db: Path, commits: int, gap: float, out: Path, busy_ms: int | None = None) -> None:
    from sqlalchemy.exc import OperationalError

    from velora_tui.writer.simulate import RunPlan, Writer, episodes

    writer = Writer(db)
    if busy_ms is not None:  # --busy-timeout: see main()
        from sqlalchemy import event

        @event.listens_for(writer.engine, "connect")
        def busy_timeout(connection: Any, _record: Any) -> None:
            connection.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")

        writer.engine.dispose()  # the connection that made the tables: made again with it
    plan = RunPlan("NeuroFlow", "CartPole-v1", commits, commits, 500.0, seed=1)
    rows = list(episodes(plan))  # computed up front: only the writes are timed
    exp_id = writer.start(plan)
    latencies: list[float] = []
    locked = other = 0
    locked_at: list[float] = []  # time.monotonic() of each, to set beside a reader's trace
    for values in rows:
        started = time.perf_counter()
        try:
            writer.add(exp_id, values)
        except OperationalError as exc:
            if "locked" in str(exc):
                locked += 1
                locked_at.append(time.monotonic())
            else:
                other += 1
        latencies.append(time.perf_counter() - started)
        time.sleep(gap)
    writer.engine.dispose()
    trace = os.environ.get("WRITER_LOCKED_AT")  # a file to append the times of "locked" to
    if trace:
        with Path(trace).open("a") as times:
            times.write(json.dumps(locked_at) + "\n")
    out.write_text(
        json.dumps(
            {"latencies": latencies, "locked": locked, "other": other, "locked_at": locked_at}
        )
    )


# -- the benchmark ---------------------------------------------------------------------------


def one_run(condition: str, commits: int, gap: float) -> WriterRun:
    meter = OtherLoad()
    with scratch_dir("writer-") as work:
        db = work / "metrics.db"
        build_velora_db(db, ())
        out = work / "writer.json"
        writer_command = [
            sys.executable,
            __file__,
            "--write",
            str(db),
            str(commits),
            str(gap),
            str(out),
            *([] if WRITER_BUSY_MS is None else [str(WRITER_BUSY_MS)]),
        ]
        if condition == "alone":
            subprocess.run(writer_command, check=True, env=timed_env())
            tail_rows, tail_cpu = None, math.nan
        elif condition.startswith("app"):
            poll = condition.endswith("--poll")
            commit = condition.partition("(")[2].rstrip(")") or None
            checkout = old_checkout(commit) if commit else None
            if commit and checkout is None:
                raise RuntimeError(f"no checkout of {commit}")
            tail_rows, tail_cpu = None, app_run(db, writer_command, poll, checkout)
        else:
            command = python_command("tail", "-f", "--json", "-n", "0", str(db))
            if condition.endswith("--poll"):
                command.append("--poll")
            checkout = old_checkout(OLD_COMMIT) if condition == OLD else None
            env, cwd = (old_env(checkout), checkout) if checkout else (None, None)
            with process(
                command, stdout=subprocess.PIPE, stderr=work / "tail.stderr", env=env, cwd=cwd
            ) as tail:
                assert tail.stdout is not None
                lines = LineCollector(tail.stdout).start()
                wait_until_following(db, lines)
                time.sleep(0.3)
                probes = len(lines.lines)
                started, cpu_before = time.monotonic(), cpu_seconds(tail.pid)
                subprocess.run(writer_command, check=True, env=timed_env())
                tail_cpu = (cpu_seconds(tail.pid) - cpu_before) / (time.monotonic() - started)
                lines.wait_for(probes + commits, timeout=10.0)
            lines.join()
            tail_rows = sum(
                1 for _, raw in lines.lines if json.loads(raw)["experiment_id"] != PROBE_EXPERIMENT
            )
        data = json.loads(out.read_text())
    return WriterRun(
        condition,
        data["latencies"],
        data["locked"],
        data["other"],
        tail_rows,
        tail_cpu,
        meter.stop(),
    )


def app_run(db: Path, writer_command: list[str], poll: bool, checkout: Path | None = None) -> float:
    """The writer with the app watching from a terminal; the app's CPU share meanwhile. With
    `checkout`, the app of those files (-P: not today's from the working folder)."""
    command = python_command(str(db), *(["--poll"] if poll else []))
    env = timed_env()
    if checkout is not None:
        command = [command[0], "-P", *command[1:]]
        env = old_env(checkout)
    terminal = Terminal(command, env=env)
    try:
        if not terminal.wait_for("No experiments yet", 0, 20):
            raise RuntimeError("the app did not start")
        time.sleep(0.3)
        started, cpu_before = time.monotonic(), cpu_seconds(terminal.proc.pid)
        writer = subprocess.Popen(writer_command, env=timed_env())
        # Open the experiment as soon as it is listed: its charts are read while rows arrive.
        if terminal.wait_for("NeuroFlow", 0, 20):
            terminal.key("\r", "1 Charts")
        if writer.wait() != 0:
            raise RuntimeError("the writer failed")
        return (cpu_seconds(terminal.proc.pid) - cpu_before) / (time.monotonic() - started)
    finally:
        terminal.close()


Round = dict[str, WriterRun]


def run_round(index: int, commits: int, gap: float, conditions: tuple[str, ...]) -> Round:
    """The conditions back to back, in an order that rotates from round to round."""
    shift = index % len(conditions)
    round_runs: Round = {}
    for condition in conditions[shift:] + conditions[:shift]:
        run = one_run(condition, commits, gap)
        round_runs[condition] = run
        shown = "-" if run.tail_rows is None else f"{run.tail_rows}/{commits}"
        cpu = "-" if math.isnan(run.tail_cpu) else f"{run.tail_cpu:.0%}"
        errors = f"{run.locked}" + (f" (+{run.other_errors} other)" if run.other_errors else "")
        print(
            f"  {index + 1:<5} {condition:<15} {ms(run.p50):>9} {ms(run.p99):>9}"
            f" {ms(run.max):>9} {errors:>6}  {shown:>9}  {cpu:>8}  {run.other_load:>10.2f}",
            flush=True,
        )
    return round_runs


def is_quiet(round_runs: Round) -> bool:
    return all(run.other_load < QUIET for run in round_runs.values())


def main(
    rounds: int = len(CONDITIONS) + 1,
    commits: int = 1000,
    gap: float = 0.002,
    conditions: tuple[str, ...] = (*CONDITIONS, OLD),
) -> list[Metric]:
    """`rounds` rounds, then more (up to half as many again) while fewer than 3 were quiet."""
    if OLD in conditions and old_checkout(OLD_COMMIT) is None:
        print(f"  (no checkout of {OLD_COMMIT}: its reader is left out)")
        conditions = tuple(c for c in conditions if c != OLD)
    print_header(
        f"writer impact: {commits} commits ~{gap * 1000:g} ms apart, {rounds}+ rounds"
        f" ({load_note()})"
    )
    print(
        f"  {'round':<5} {'condition':<15} {'p50':>9} {'p99':>9} {'max':>9} locked"
        "  tail rows  its CPU   other load"
    )
    done: list[Round] = []
    while len(done) < rounds or (
        sum(map(is_quiet, done)) < MIN_QUIET and len(done) < rounds + rounds // 2
    ):
        done.append(run_round(len(done), commits, gap, conditions))
    quiet = [r for r in done if is_quiet(r)]
    used = quiet if len(quiet) >= MIN_QUIET else done
    print(
        "  (its CPU: the reader's, of one core, over the writer's run; other load: cores used by"
        f" other processes during the run; a round is quiet when every run's is < {QUIET})"
    )
    which = (
        f"the {len(used)} quiet rounds"
        if used is quiet
        else f"all {len(used)} rounds (only {len(quiet)} quiet: machine busy, numbers noisy)"
    )
    print(f"\n  median over {which}:")
    summary: dict[str, tuple[float, float, float]] = {}
    for condition in conditions:
        results = [r[condition] for r in used]
        p50 = median([r.p50 for r in results])
        p99 = median([r.p99 for r in results])
        worst = median([r.max for r in results])
        summary[condition] = (p50, p99, worst)
        pooled = percentile([x for r in results for x in r.latencies], 99)
        print(
            f"  {condition:<15} p50 {ms(p50):>9}  p99 {ms(p99):>9}  max {ms(worst):>9}"
            f"  | pooled p99 {ms(pooled)}"
        )
    alone_runs = [r["alone"].p99 for r in used]
    print(
        f"  noise floor: p99 alone ranged {ms(min(alone_runs))} - {ms(max(alone_runs))}"
        f" ({ratio(max(alone_runs), min(alone_runs)):.2f}x); {load_note()} at the end"
    )
    alone_p99 = summary["alone"][1]
    metrics = [
        Metric(
            "writer commit alone (p50 / p99 / max, median of runs)",
            "-",
            " / ".join(ms(v) for v in summary["alone"]),
        )
    ]
    for condition in conditions[1:]:
        p99 = summary[condition][1]
        of_medians = ratio(p99, alone_p99)
        # Each round's run against the same round's run alone: slow drift cancels out.
        paired = median([ratio(r[condition].p99, r["alone"].p99) for r in used])
        print(
            f"  p99 ratio {condition} / alone: {paired:.2f}x (median of per-round ratios),"
            f" {of_medians:.2f}x (ratio of medians)"
        )
        if condition.startswith("tail -f") and condition != OLD and OLD in conditions:
            than_old = median([ratio(r[condition].p99, r[OLD].p99) for r in used])
            print(f"  p99 ratio {condition} / {OLD}: {than_old:.2f}x (median of per-round ratios)")
            metrics.append(
                Metric(
                    f"writer p99 with `{condition}` / with {OLD}'s",
                    "<= 1.0x",
                    f"{than_old:.2f}x (median of per-round ratios)",
                    than_old <= 1.0,
                )
            )
        locked = sum(r[condition].locked for r in done)
        metrics.append(
            Metric(
                f"writer p99 with `{condition}` / alone",
                f"<= {GOAL_RATIO}x",
                f"{paired:.2f}x (median of per-round ratios; median p99 {ms(p99)} vs"
                f" {ms(alone_p99)}; {len(used)} rounds"
                + ("" if used is quiet else ", noisy")
                + ")",
                paired <= GOAL_RATIO,
            )
        )
        metrics.append(
            Metric(
                f'"database is locked" with `{condition}`',
                "0",
                f"{locked} in {len(done) * commits} commits",
                locked == 0,
            )
        )
    return metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=len(CONDITIONS))
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--gap", type=float, default=0.002, help="seconds between commits")
    parser.add_argument("--write", nargs="+", help=argparse.SUPPRESS)  # DB COMMITS GAP OUT [BUSY]
    parser.add_argument(
        "--busy-timeout",
        type=int,
        metavar="MS",
        help="the writer's busy timeout; 0 counts the commits a reader's lock held up",
    )
    parser.add_argument(
        "--condition",
        action="append",
        choices=[*CONDITIONS, OLD],
        help="run only these (with 'alone' always); repeatable",
    )
    parser.add_argument(
        "--app-commit",
        action="append",
        default=[],
        help="also the app as of this commit, in the same rounds (condition 'app (COMMIT)')",
    )
    args = parser.parse_args()
    if args.write:
        db, commits, gap, out, *busy = args.write
        write_rows(Path(db), int(commits), float(gap), Path(out), *(int(b) for b in busy))
    else:
        WRITER_BUSY_MS = args.busy_timeout
        chosen = ("alone", *(c for c in args.condition if c != "alone")) if args.condition else None
        older = tuple(f"app ({commit})" for commit in args.app_commit)
        if older:
            chosen = (*(chosen or (*CONDITIONS, OLD)), *older)
        main(args.rounds, args.commits, args.gap, *((chosen,) if chosen else ()))
