"""Remote at any size: the same files read here and through ssh, side by side in one run.

Files of 100 experiments, 1M and 5M episodes (bench/startup.py's, built once under bench/out/),
read locally and as `vt:<path>` through a loopback sshd behind a relay that counts the bytes
(tests.support.relay; no rate limit here: "remote" is this machine, and a real link is slower;
`--delay 0.01` makes each round trip 20 ms longer, as a link between sites).
The local cache is emptied before every remote run. In interleaved rounds, at each size:

- the app's first rows (`velora-tui SOURCE` on a pseudo-terminal, as bench/startup.py times it);
- `ls --json`, `tail -n 1`, `show 1`: wall time of the command;
- an experiment's charts: its series read whole (data.series.SeriesReader, as the chart does),
  in this process, after a first load;
- the connection's set-up: `ssh vt python3 -c pass` on a fresh connection (no shared master),
  and `ssh vt true` on the shared one: what any command through ssh pays there (the remote
  login shell's start-up files), which no program of ours can avoid;
- bytes from the host per case, and what the cache holds after it.

Each remote command runs three times: from scratch ("remote": no shared ssh connection, no
kept reader), at once again with the shared ssh connection but no kept reader ("shared"), and
again borrowing the reader the last command kept (remote/keeper.py: "kept"), as any command
within a minute of another on the same sources.

Goals (issue 26): first rows within 1.5x of local plus the set-up; the commands and the charts
within 2x of local; the cache at most a tenth of the file. Prints; `main()` returns Metrics.
`.venv/bin/python -m bench.remote_size [--rounds N] [--sizes 1,5]`
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

from bench.common import Metric, big_database, load_note, median, print_header, run_command
from bench.startup import EXPERIMENTS, GROUPS, start_on_terminal
from tests.support.processes import python_command
from tests.support.sshd import SshServer
from velora_tui.data.series import SeriesReader
from velora_tui.remote import launch
from velora_tui.remote.address import Host
from velora_tui.remote.sources import open_sources
from velora_tui.remote.ssh import control_dir, control_path

HOST = "vt-slow"  # through the counting relay (unpaced unless VELORA_TUI_RELAY_RATE is set)
GOAL_FIRST_ROWS = 1.5
GOAL_COMMANDS = 2.0
GOAL_CACHE = 0.1


class Bench:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counts = folder / "relay"
        self.cache = folder / "cache"
        self.server = SshServer(_made(folder / "sshd"))
        os.environ["VELORA_TUI_SSH_CONFIG"] = str(self.server.config)
        os.environ["VELORA_TUI_CACHE"] = str(self.cache)
        os.environ["VELORA_TUI_RELAY_DIR"] = str(self.counts)
        self.runs = 0
        self.times: dict[tuple[str, str, str], list[float]] = {}
        self.bytes: dict[tuple[str, str], list[int]] = {}
        self.cached: dict[tuple[str, str], list[int]] = {}

    @contextmanager
    def remote(self, size: str, case: str) -> Iterator[Callable[[], None]]:
        """A remote run from scratch: no shared connection, an empty cache. What it yields
        records the bytes that came from the host and what the cache holds, so far."""
        launch.end_kept_readers()
        shutil.rmtree(control_dir(), ignore_errors=True)
        shutil.rmtree(self.cache, ignore_errors=True)
        # A folder of its own: an earlier case's relay may still be writing to its own.
        self.runs += 1
        self.counts = _made(self.folder / f"relay-{self.runs}")
        os.environ["VELORA_TUI_RELAY_DIR"] = str(self.counts)

        def count() -> None:
            time.sleep(0.3)  # the relays write their counts within 0.1 s (tests.support.relay)
            came = sum(int(p.read_text().split()[0]) for p in self.counts.glob("relay-*"))
            self.bytes.setdefault((size, case), []).append(came)
            self.cached.setdefault((size, case), []).append(_size_of(self.cache))

        try:
            yield count
        finally:
            subprocess.run(["pkill", "-f", f"ControlPath={control_dir()}"], check=False)

    def time(self, size: str, case: str, where: str, seconds: float) -> None:
        self.times.setdefault((size, case, where), []).append(seconds)

    def median(self, size: str, case: str, where: str) -> float:
        return median(self.times[(size, case, where)])


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _size_of(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def charts_seconds(source: str) -> float:
    """An experiment's series read whole after a first load (the chart's read), in seconds."""
    monitor, _ = open_sources([source])
    try:
        monitor.refresh()
        (database,) = monitor.databases.values()
        exp_id = sorted(database.summaries)[len(database.summaries) // 2]
        started = time.perf_counter()
        series = SeriesReader(database, exp_id, 500 if database.far else 2_000).read()
        took = time.perf_counter() - started
        assert series.complete
        assert len(series) > 0
        return took
    finally:
        monitor.close()


def first_rows(source: str) -> float:
    return start_on_terminal(python_command(source), "velora")[1]


def command_seconds(*args: str) -> float:
    return run_command(python_command(*args))[0]


def setup_seconds() -> float:
    shutil.rmtree(control_dir(), ignore_errors=True)
    config = os.environ["VELORA_TUI_SSH_CONFIG"]
    started = time.perf_counter()
    subprocess.run(["ssh", "-F", config, HOST, "python3", "-c", "pass"], check=True)
    return time.perf_counter() - started


def shell_seconds() -> float:
    """`ssh vt true` on the shared connection (made first): the remote shell's own start."""
    config = os.environ["VELORA_TUI_SSH_CONFIG"]
    options = ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_path(Host(HOST))}"]
    options += ["-o", "ControlPersist=60"]
    subprocess.run(["ssh", "-F", config, *options, HOST, "true"], check=True)
    started = time.perf_counter()
    subprocess.run(["ssh", "-F", config, *options, HOST, "true"], check=True)
    return time.perf_counter() - started


CASES = ("app first rows", "ls --json", "tail -n 1", "show 1", "charts")


def one_round(bench: Bench, files: dict[str, Path], chosen: tuple[str, ...] = CASES) -> None:
    for size, db in files.items():
        for where in ("local", "remote"):
            source = str(db) if where == "local" else f"{HOST}:{db}"
            cases: list[tuple[str, Callable[[], float]]] = [
                ("app first rows", partial(first_rows, source)),
                ("ls --json", partial(command_seconds, "ls", "--json", source)),
                ("tail -n 1", partial(command_seconds, "tail", "-n", "1", source)),
                ("show 1", partial(command_seconds, "show", "1", source)),
                ("charts", partial(charts_seconds, source)),
            ]
            for case, run in cases:
                if case not in chosen:
                    continue
                if where == "local":
                    bench.time(size, case, where, run())
                    continue
                with bench.remote(size, case) as count:
                    bench.time(size, case, where, run())
                    count()
                    # Again at once: ssh's shared connection is still up (ControlPersist),
                    # as for any command within a minute of another; its reader not kept.
                    launch.end_kept_readers()
                    bench.time(size, case, "shared", run())
                    if case != "charts":  # read in this process: nothing kept after it
                        # Again: the reader the last command kept (remote/keeper.py).
                        bench.time(size, case, "kept", run())
        bench.time(size, "ssh set-up", "remote", setup_seconds())
        bench.time(size, "remote shell", "remote", shell_seconds())


def report(bench: Bench, files: dict[str, Path], cases: tuple[str, ...] = CASES) -> list[Metric]:
    metrics = []
    print(
        f"\n{'':<18}{'local':>10}{'remote':>10}{'ratio':>8}{'shared':>10}{'ratio':>8}"
        f"{'kept':>10}{'ratio':>8}{'from host':>12}{'cache':>10}"
    )
    for size, db in files.items():
        setup = bench.median(size, "ssh set-up", "remote")
        shell = bench.median(size, "remote shell", "remote")
        file_size = db.stat().st_size
        print(
            f"{size} ({file_size / 1e6:.0f} MB; a fresh ssh connection: {setup:.2f} s;"
            f" `ssh {HOST} true` on the shared one: {shell:.2f} s)"
        )
        for case in cases:
            local = bench.median(size, case, "local")
            remote = bench.median(size, case, "remote")
            shared = bench.median(size, case, "shared")
            came = median([float(b) for b in bench.bytes[(size, case)]])
            cached = max(bench.cached[(size, case)])
            ratio = remote / local
            kept = bench.median(size, case, "kept") if case != "charts" else math.nan
            print(
                f"  {case:<16}{local:>9.2f}s{remote:>9.2f}s{ratio:>7.2f}x{shared:>9.2f}s"
                f"{shared / local:>7.2f}x{kept:>9.2f}s{kept / local:>7.2f}x"
                f"{came / 1e3:>10.0f}kB{cached / 1e3:>8.1f}kB"
            )
            kept_text = "" if math.isnan(kept) else f", {kept / local:.2f}x kept"
            if case == "app first rows":
                goal_text = f"<= {GOAL_FIRST_ROWS}x local + set-up"
                met = remote <= GOAL_FIRST_ROWS * local + setup
            elif case == "charts":
                goal_text = f"<= {GOAL_COMMANDS}x local (shared connection)"
                met = shared / local <= GOAL_COMMANDS
            else:  # as a command within a minute of another runs
                goal_text = f"<= {GOAL_COMMANDS}x local (kept reader)"
                met = kept / local <= GOAL_COMMANDS
            metrics.append(
                Metric(
                    f"remote {case}, {size}: remote / local",
                    goal_text,
                    f"{ratio:.2f}x fresh ({remote:.2f} s / {local:.2f} s), {shared / local:.2f}x"
                    f" shared{kept_text}; {came / 1e3:.0f} kB from the host",
                    met,
                )
            )
            metrics.append(
                Metric(
                    f"remote {case}, {size}: cache / file",
                    f"<= {GOAL_CACHE}",
                    f"{cached / file_size:.6f} ({cached} bytes)",
                    cached / file_size <= GOAL_CACHE,
                )
            )
    return metrics


def main(
    rounds: int = 3, sizes: tuple[int, ...] = (1, 5), cases: tuple[str, ...] = CASES
) -> list[Metric]:
    files = {
        f"{n}M": big_database(EXPERIMENTS, n * 1_000_000 // EXPERIMENTS, groups=GROUPS)
        for n in sizes
    }
    print_header(f"remote vs local at {', '.join(files)} episodes ({load_note()})")
    with _scratch() as folder:
        bench = Bench(folder)
        bench.server.start()
        try:
            for index in range(rounds):
                print(f"  round {index + 1} of {rounds}", flush=True)
                one_round(bench, files, cases)
        finally:
            bench.server.stop()
            shutil.rmtree(control_dir(), ignore_errors=True)
        return report(bench, files, cases)


@contextmanager
def _scratch() -> Iterator[Path]:
    from bench.common import scratch_dir

    with scratch_dir("remote-size-") as folder:
        yield folder


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1,5")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"some of: {', '.join(CASES)} (comma-separated)"
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="seconds the relay holds each chunk each way (a round trip: twice that more)",
    )
    args = parser.parse_args()
    chosen = tuple(c.strip() for c in args.cases.split(","))
    os.environ["VELORA_TUI_RELAY_DELAY"] = str(args.delay)  # the relay's, ssh's child's
    if not set(chosen) <= set(CASES):
        parser.error(f"--cases: some of {', '.join(CASES)}")
    for metric in main(args.rounds, tuple(int(s) for s in args.sizes.split(",")), chosen):
        print(f"{metric.name}: {metric.measured} (goal {metric.goal})")
