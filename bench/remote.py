"""Runs on another host, over a real ssh connection to a loopback sshd (tests.support.SshServer):

1. commit -> `tail -f` line, remote (`tail -f vt:/path`) against local, in the same run
   (goal: remote p95 within 30 ms of the local p95), and both ends' idle CPU;
2. commit -> screen in the app on a remote source (goal: p95 <= 100 ms);
3. bytes on the wire per episode (the reader's output; ssh adds its framing and encryption);
4. the writer's p99 commit latency with the remote reader following it, against alone
   (goal: <= 1.2x);
5. 32 remote databases, 20 episodes/s each, in the app: every episode delivered once, the
   app's CPU (goal: under 30% of a core).

Everything runs on this machine: "remote" is the same host through ssh, so the writer, the
reader and the local side share its cores. Prints numbers; `main()` returns them for
bench/run_all.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.app import TimedApp
from bench.common import (
    LineCollector,
    Metric,
    OtherLoad,
    load_note,
    ms,
    print_header,
    process,
    scratch_dir,
    simulator,
    timed_env,
)
from bench.tail_latency import PROBE_EXPERIMENT, wait_until_following
from tests.support.databases import build_velora_db
from tests.support.numbers import cpu_seconds, percentile, read_commit_log
from tests.support.processes import python_command
from tests.support.sshd import SshServer
from velora_tui.remote.sources import open_sources
from velora_tui.remote.ssh import control_dir
from velora_tui.tui.app import Settings

GOAL_EXTRA_P95 = 0.030
GOAL_SCREEN_P95 = 0.100
GOAL_WRITER_RATIO = 1.2
GOAL_APP_CPU = 0.30
IDLE_SECONDS = 5.0


def reader_pids() -> list[int]:
    """The remote readers running on this machine (`python3 -c <link.BOOTSTRAP>`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(words) > 4 and words[3] == b"-c" and b"velora-tui-reader" in words[4]:
            found.append(int(entry.name))
    return found


def tail_run(source: str, db: Path, work: Path, rate: float, episodes: int) -> dict[str, float]:
    """Commit -> line latencies of `tail -f SOURCE`, and its (and a remote reader's) idle CPU."""
    command = python_command("tail", "-f", "--json", "-n", "0", source)
    with process(command, stdout=subprocess.PIPE, stderr=work / "tail.stderr") as tail:
        assert tail.stdout is not None
        lines = LineCollector(tail.stdout).start()
        wait_until_following(db, lines)
        time.sleep(2.5)  # the probes printed; the readers leave their busy pace
        probes = len(lines.lines)
        readers = reader_pids()
        started = time.monotonic()
        cpu_local = cpu_seconds(tail.pid)
        cpu_remote = sum(cpu_seconds(pid) for pid in readers)
        time.sleep(IDLE_SECONDS)
        wall = time.monotonic() - started
        idle_local = (cpu_seconds(tail.pid) - cpu_local) / wall
        idle_remote = (sum(cpu_seconds(pid) for pid in readers) - cpu_remote) / wall
        log = work / f"commits-{len(source)}.log"
        with simulator(db, rate=rate, episodes=episodes, commit_log=log) as sim:
            sim.wait(timeout=episodes / rate + 60.0)
        lines.wait_for(probes + episodes, timeout=20.0)
        time.sleep(0.3)
    commits = read_commit_log(log)
    seen: dict[int, float] = {}
    twice = 0
    for stamp, raw in lines.lines:
        row = json.loads(raw)
        if row["experiment_id"] == PROBE_EXPERIMENT:
            continue
        twice += row["id"] in seen
        seen.setdefault(row["id"], stamp)
    latencies = [seen[i] - t for i, t in commits.items() if i in seen]
    return {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "missing": len(set(commits) - set(seen)),
        "twice": twice,
        "idle_local": idle_local,
        "idle_remote": idle_remote if readers else float("nan"),
        "readers": len(readers),
    }


def tail_latency(rate: float, episodes: int, rounds: int) -> list[Metric]:
    print_header(f"commit -> tail -f line, local and over ssh: {episodes} at {rate:g}/s")
    results: dict[str, list[dict[str, float]]] = {"local": [], "remote": []}
    for index in range(rounds):
        order = ("local", "remote") if index % 2 == 0 else ("remote", "local")
        for kind in order:
            with scratch_dir("remote-tail-") as work:
                db = work / "metrics.db"
                build_velora_db(db, ())
                source = str(db) if kind == "local" else f"vt:{db}"
                result = tail_run(source, db, work, rate, episodes)
                results[kind].append(result)
                print(
                    f"  {kind:<6} p50 {ms(result['p50']):>8}  p95 {ms(result['p95']):>8}"
                    f"  missing {result['missing']:.0f}  twice {result['twice']:.0f}"
                    f"  idle CPU: tail -f {result['idle_local']:.2%}"
                    + (f", remote reader {result['idle_remote']:.2%}" if kind == "remote" else ""),
                    flush=True,
                )
    local_p95 = sorted(r["p95"] for r in results["local"])[len(results["local"]) // 2]
    remote_p95 = sorted(r["p95"] for r in results["remote"])[len(results["remote"]) // 2]
    remote_p50 = sorted(r["p50"] for r in results["remote"])[len(results["remote"]) // 2]
    extra = remote_p95 - local_p95
    lost = sum(r["missing"] + r["twice"] for rs in results.values() for r in rs)
    idle_local = max(r["idle_local"] for r in results["remote"])
    idle_remote = max(r["idle_remote"] for r in results["remote"])
    return [
        Metric(
            "remote commit -> tail -f line p50 / p95 (local p95)",
            f"p95 within {ms(GOAL_EXTRA_P95)} of local",
            f"{ms(remote_p50)} / {ms(remote_p95)} ({ms(local_p95)}; +{ms(extra)})",
            extra <= GOAL_EXTRA_P95,
        ),
        Metric(
            "remote tail -f: every episode exactly once",
            "all",
            f"{lost} lost or doubled",
            lost == 0,
        ),
        Metric(
            "remote idle CPU: local tail -f / remote reader",
            "< 1% of a core each",
            f"{idle_local:.2%} / {idle_remote:.2%}",
            idle_local < 0.01 and idle_remote < 0.01,
        ),
    ]


async def screen_latency(rate: float, episodes: int) -> list[float]:
    """Commit -> the paint that shows it, in the app on a remote source."""
    with scratch_dir("remote-app-") as folder:
        db = folder / "metrics.db"
        log = folder / "commits.log"
        monitor, remotes = open_sources([f"vt:{db}"], sync=False)
        assert remotes is not None
        remotes.start()
        app = TimedApp(monitor, Settings())
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(2.0)
            with simulator(db, rate=rate, episodes=episodes, commit_log=log) as writer:
                deadline = time.monotonic() + episodes / rate + 20
                while writer.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            commits = read_commit_log(log)
            grace = time.monotonic() + 10.0
            while not all(map(app.reached, commits)) and time.monotonic() < grace:
                await asyncio.sleep(0.05)
        missing = [i for i in commits if not app.reached(i)]
        if missing:
            raise RuntimeError(f"{len(missing)} episodes never reached the screen: {missing[:10]}")
        return [app.shown[i] - t for i, t in commits.items() if i in app.shown]


def wire_bytes(episodes: int, rate: float) -> float:
    """Bytes from the host per episode while the data layer follows a writer (its questions'
    answers, the changes said, heartbeats)."""
    with scratch_dir("remote-wire-") as folder:
        db = folder / "metrics.db"
        build_velora_db(db, ())
        monitor, remotes = open_sources([f"vt:{db}"])
        assert remotes is not None
        (link,) = remotes.links
        try:
            monitor.refresh()
            before = link.wire_bytes
            with simulator(db, rate=rate, episodes=episodes, commit_log=folder / "c.log") as sim:
                counted = 0
                deadline = time.monotonic() + episodes / rate + 60
                while counted < episodes and time.monotonic() < deadline:
                    counted += sum(len(u.episodes) for u in monitor.refresh())
                    time.sleep(0.02)
                sim.wait(10)
            return (link.wire_bytes - before) / max(1, counted)
        finally:
            monitor.close()


def writer_impact(rounds: int, commits: int, gap: float) -> list[Metric]:
    print_header(f"writer p99 commit latency, alone and with a remote tail -f ({commits} commits)")
    from bench.writer_impact import __file__ as writer_file

    p99: dict[str, list[float]] = {"alone": [], "remote": []}
    for index in range(rounds):
        order = ("alone", "remote") if index % 2 == 0 else ("remote", "alone")
        for kind in order:
            with scratch_dir("remote-writer-") as work:
                db = work / "metrics.db"
                build_velora_db(db, ())
                out = work / "writer.json"
                writer = [
                    sys.executable,
                    writer_file,
                    "--write",
                    str(db),
                    str(commits),
                    str(gap),
                    str(out),
                ]
                if kind == "alone":
                    subprocess.run(writer, check=True, env=timed_env())
                else:
                    command = python_command("tail", "-f", "--json", "-n", "0", f"vt:{db}")
                    with process(command, stdout=subprocess.PIPE, stderr=work / "t.err") as tail:
                        assert tail.stdout is not None
                        lines = LineCollector(tail.stdout).start()
                        wait_until_following(db, lines)
                        time.sleep(0.5)
                        subprocess.run(writer, check=True, env=timed_env())
                data = json.loads(out.read_text())
                value = percentile(data["latencies"], 99)
                p99[kind].append(value)
                print(f"  {kind:<6} p99 {ms(value)}  locked {data['locked']}", flush=True)
    alone = sorted(p99["alone"])[len(p99["alone"]) // 2]
    remote = sorted(p99["remote"])[len(p99["remote"]) // 2]
    ratio = remote / alone
    return [
        Metric(
            "writer p99 with a remote reader / alone (medians)",
            f"<= {GOAL_WRITER_RATIO}x",
            f"{ratio:.2f}x ({ms(remote)} / {ms(alone)})",
            ratio <= GOAL_WRITER_RATIO,
        )
    ]


def reader_idle(seconds: float) -> list[Metric]:
    """`tail -f -n 0 vt:ROOT` at rest on a tree of 10,000 directories holding 10 databases, and
    on one of 3 holding 3 (the baseline): the reader's and the local side's share of a core."""
    from bench.idle import make_tree

    print_header(f"idle CPU of the remote reader and tail -f on a big tree ({seconds:g} s)")
    metrics = []
    for directories, databases in ((3, 3), (10_000, 10)):
        with scratch_dir("remote-idle-") as folder:
            root = folder / "tree"
            make_tree(root, directories, databases)
            command = python_command("tail", "-f", "-n", "0", f"vt:{root}")
            with process(command, stdout=subprocess.DEVNULL, stderr=folder / "t.err") as tail:
                time.sleep(8.0)  # connected, the first walk and reads done
                (reader,) = reader_pids()
                before = (cpu_seconds(tail.pid), cpu_seconds(reader), time.monotonic())
                time.sleep(seconds)
                wall = time.monotonic() - before[2]
                local = (cpu_seconds(tail.pid) - before[0]) / wall
                remote = (cpu_seconds(reader) - before[1]) / wall
        print(
            f"  {directories:>6} directories, {databases:>2} databases: reader {remote:.2%},"
            f" tail -f {local:.2%} of a core"
        )
        if directories > 3:
            metrics.append(
                Metric(
                    "idle on 10,000 directories / 10 databases: remote reader, tail -f",
                    "< 1% of a core each",
                    f"{remote:.2%}, {local:.2%}",
                    remote < 0.01 and local < 0.01,
                )
            )
    return metrics


def write_many(folder: Path, count: int, rate: float, seconds: float) -> None:
    """`count` databases, each getting `rate` episodes a second velora's way (one INSERT and
    COMMIT each), round robin, from this one process."""
    paths = [folder / f"db{n:02d}" / "metrics.db" for n in range(count)]
    conns = [sqlite3.connect(path, isolation_level=None, timeout=5.0) for path in paths]
    for conn in conns:
        conn.execute("PRAGMA synchronous = FULL")
    step = 1.0 / (rate * count)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        conn = conns[n % count]
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
            " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
            " VALUES (1, ?, 1.0, 10, 1.0, 0.1, -1.0, 0.5, -0.1, datetime('now', 'localtime'))",
            (n // count + 1,),
        )
        conn.execute("COMMIT")
        n += 1
        time.sleep(max(0.0, started + n * step - time.monotonic()))


async def many_databases(
    count: int, rate: float, seconds: float, local: bool = False
) -> tuple[int, int, int, float]:
    """The app on `count` databases written at `rate` each for `seconds` (remote ones, or the
    same folder read locally as the baseline): episodes committed, counted by the app, copies
    that differ from their remote file, and the app's CPU share."""
    where = "local" if local else "remote"
    print_header(f"{count} {where} databases, {rate:g} episodes/s each, in the app, {seconds:g} s")
    with scratch_dir("remote-many-", tmpfs=True) as folder:
        paths = []
        for n in range(count):
            path = folder / f"db{n:02d}" / "metrics.db"
            path.parent.mkdir()
            build_velora_db(path, ())
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "INSERT INTO experiment (id, agent, env, config, created_at)"
                    " VALUES (1, 'NeuroFlow', 'CartPole-v1', '{}', datetime('now'))"
                )
            paths.append(path)
        monitor, remotes = open_sources([folder if local else f"vt:{folder}"], sync=False)
        if remotes is not None:
            remotes.start()
        app = TimedApp(monitor, Settings())
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(3.0)
            meter = OtherLoad()
            cpu_before, started = time.process_time(), time.monotonic()
            writer = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--write-many",
                    str(folder),
                    str(count),
                    str(rate),
                    str(seconds),
                ],
                env=timed_env(),
            )
            while writer.poll() is None:
                await asyncio.sleep(0.1)
            wall = time.monotonic() - started
            cpu = (time.process_time() - cpu_before) / wall
            other = meter.stop()
            expected = {}
            for path in paths:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                    expected[path] = [
                        r[0] for r in conn.execute("SELECT id FROM episode ORDER BY id")
                    ]
            deadline = time.monotonic() + 20
            total = sum(len(ids) for ids in expected.values())
            while time.monotonic() < deadline:
                if sum(s.episodes for s in monitor.summaries()) >= total:
                    break
                await asyncio.sleep(0.1)
            await pilot.pause(1.0)
        counted = sum(s.episodes for s in monitor.summaries())
        # Every episode once: the app's own rows of each database, as the file holds them.
        wrong = sum(
            1
            for path in paths
            for db in [monitor.databases.get(_place_of(monitor, path))]
            if db is not None
            and sum(s.episodes for s in db.summaries.values()) != len(expected[path])
        )
    print(
        f"  {total} episodes committed, {counted} counted by the app; databases that differ:"
        f" {wrong};"
        f" app CPU {cpu:.1%} of a core (other processes {other:.2f} cores: the writer"
        + (", sshd and the reader)" if not local else ")")
    )
    return total, counted, wrong, cpu


def _place_of(monitor: object, path: Path) -> Path:
    """Where the monitor reads a database: its stand-in for a remote one, else itself."""
    remotes = getattr(monitor, "remotes", None)
    for link in remotes.links if remotes is not None else []:
        for (_, remote), stand_in in link.stand_ins.items():
            if remote == str(path):
                return Path(stand_in.path)
    return path


def many_metrics(count: int, rate: float, seconds: float) -> list[Metric]:
    _, _, _, baseline = asyncio.run(many_databases(count, rate, seconds, local=True))
    total, counted, wrong, cpu = asyncio.run(many_databases(count, rate, seconds))
    return [
        Metric(
            f"{count} remote databases x {rate:g} episodes/s: delivered once",
            "all",
            f"{counted}/{total}, {wrong} databases differ",
            counted == total and wrong == 0,
        ),
        Metric(
            f"{count} remote databases x {rate:g} episodes/s: app CPU (the same files local)",
            f"< {GOAL_APP_CPU:.0%} of a core",
            f"{cpu:.1%} ({baseline:.1%})",
            cpu < GOAL_APP_CPU,
        ),
    ]


def main(rounds: int = 3) -> list[Metric]:
    # The local copies on tmpfs: on a real setup they are on the other machine's disk, not on
    # the disk the writer syncs to.
    with scratch_dir("remote-sshd-") as folder, scratch_dir("remote-cache-", tmpfs=True) as cache:
        server = SshServer(folder)
        os.environ["VELORA_TUI_SSH_CONFIG"] = str(server.config)
        os.environ["VELORA_TUI_CACHE"] = str(cache)
        server.start()
        try:
            print(f"({load_note()}; everything on this machine, through loopback ssh)")
            metrics = tail_latency(rate=20.0, episodes=200, rounds=rounds)
            print_header("commit -> screen, the app on a remote source (30 episodes/s)")
            lat = asyncio.run(screen_latency(30.0, 300))
            p50, p95 = percentile(lat, 50), percentile(lat, 95)
            print(f"  n={len(lat)} p50 {ms(p50)}  p95 {ms(p95)}  max {ms(max(lat))}")
            metrics.append(
                Metric(
                    "remote commit -> screen p50 / p95 (app, 30/s)",
                    f"p95 <= {ms(GOAL_SCREEN_P95)}",
                    f"{ms(p50)} / {ms(p95)}",
                    p95 <= GOAL_SCREEN_P95,
                )
            )
            print_header("bytes on the wire per episode (20 episodes/s, 200 episodes)")
            per = wire_bytes(200, 20.0)
            print(f"  {per:.0f} bytes per episode (the reader's JSON lines, heartbeats included)")
            metrics.append(Metric("remote: bytes on the wire per episode", "-", f"{per:.0f} B"))
            metrics += writer_impact(rounds, commits=1000, gap=0.002)
            metrics += many_metrics(32, 20.0, 20.0)
            metrics += reader_idle(30.0)
        finally:
            server.stop()
            shutil.rmtree(control_dir(), ignore_errors=True)
    return metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-many", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--only-many", action="store_true", help="only the 32-database step")
    parser.add_argument("--only-writer", action="store_true", help="only the writer's p99 step")
    parser.add_argument("--only-idle", action="store_true", help="only the idle step")
    args = parser.parse_args()
    if args.write_many:
        folder, count, rate, seconds = args.write_many
        write_many(Path(folder), int(count), float(rate), float(seconds))
    elif args.only_many or args.only_writer or args.only_idle:
        with (
            scratch_dir("remote-sshd-") as place,
            scratch_dir("remote-cache-", tmpfs=True) as cache,
        ):
            server = SshServer(place)
            os.environ["VELORA_TUI_SSH_CONFIG"] = str(server.config)
            os.environ["VELORA_TUI_CACHE"] = str(cache)
            server.start()
            try:
                if args.only_many:
                    found = many_metrics(32, 20.0, 20.0)
                elif args.only_idle:
                    found = reader_idle(30.0)
                else:
                    found = writer_impact(args.rounds, commits=1000, gap=0.002)
                for metric in found:
                    print(f"{metric.name}: {metric.measured} (goal {metric.goal})")
            finally:
                server.stop()
                shutil.rmtree(control_dir(), ignore_errors=True)
    else:
        for metric in main(args.rounds):
            print(f"{metric.name}: {metric.measured} (goal {metric.goal})")
