"""Key response of the app in a real terminal while a writer commits 2,000 episodes/s.

The app runs as its own process on a pseudo-terminal (120x40), exactly as over SSH. Every
~0.6 s a key is written to the terminal and the time until the app's answer appears in what it
writes back is measured: `?` (the help screen's title appears), then `q` (closes it), and tab
switches `2` (the episode tail's follow line) and `1` (the reward chart's title). The writer is the
simulator (velora's write path) asked for 2,000 episodes/s; the experiment screen is open on
the charts, the most expensive view to keep live.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Sequence

from bench.common import (
    Metric,
    child_env,
    load_note,
    percentile,
    print_header,
    read_commit_log,
    scratch_dir,
    simulator,
    stop_process,
    velora_tui_command,
)

RATE = 2_000.0
SECONDS = 30.0
GOAL_MS = 200.0


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A process on a pseudo-terminal; everything it writes is kept with its arrival time."""

    def __init__(self, command: Sequence[str], size: tuple[int, int] = (120, 40)) -> None:
        self.master, slave = pty.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = child_env() | {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
        self.proc = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            preexec_fn=_controlling_terminal,  # as over SSH: it gets SIGHUP if we go away
        )
        os.close(slave)
        self.output = bytearray()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.output += chunk

    def mark(self) -> int:
        with self.lock:
            return len(self.output)

    def wait_for(self, text: str, start: int, timeout: float) -> bool:
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.output.find(wanted, max(0, start - len(wanted))) >= 0:
                    return True
            time.sleep(0.001)
        return False

    def key(self, keys: str, answer: str, timeout: float = 5.0) -> float:
        """Seconds from writing `keys` to `answer` appearing in the output (inf if never)."""
        start = self.mark()
        sent = time.perf_counter()
        os.write(self.master, keys.encode())
        if self.wait_for(answer, start, timeout):
            return time.perf_counter() - sent
        return float("inf")

    def close(self) -> int:
        code = stop_process(self.proc)
        os.close(self.master)
        self.reader.join(timeout=2)
        return code


# Each key, and text that only the app's answer to it writes.
ROUND = (
    ("?", "velora-tui keys"),
    ("q", "1 Charts"),  # the help screen closes: the tabs under it are painted again
    ("2", "following:"),
    ("1", "reward (blue)"),  # the reward chart's title: the charts are on screen again
)


def measure(seconds: float = SECONDS, rate: float = RATE) -> tuple[dict[str, list[float]], int]:
    """Key response times per key, and how many episodes the writer committed meanwhile."""
    times: dict[str, list[float]] = {key: [] for key, _ in ROUND}
    with scratch_dir("app-keys", tmpfs=True) as folder:
        db = folder / "metrics.db"
        log = folder / "commits.log"
        episodes = int(rate * (seconds + 10))
        terminal = Terminal(velora_tui_command(str(db)))
        try:
            if not terminal.wait_for("Waiting for", 0, 20):
                raise RuntimeError("the app did not start")
            with simulator(db, rate=rate, episodes=episodes, commit_log=log):
                if not terminal.wait_for("NeuroFlow", 0, 20):
                    raise RuntimeError("the experiment never appeared")
                time.sleep(1.0)
                terminal.key("\r", "1 Charts")
                time.sleep(1.0)
                stop = time.monotonic() + seconds
                while time.monotonic() < stop:
                    for key, answer in ROUND:
                        times[key].append(terminal.key(key, answer))
                        time.sleep(0.6)
                committed = len(read_commit_log(log))
        finally:
            terminal.close()
    return times, committed


def main() -> list[Metric]:
    print_header(
        f"app: key response in a terminal, writer asked for {RATE:.0f} episodes/s"
        f" ({SECONDS:.0f} s; {load_note()})"
    )
    times, committed = measure()
    every = [t for values in times.values() for t in values]
    for key, answer in ROUND:
        values = times[key]
        print(
            f"  {key!r} -> {answer!r}: n={len(values)} p50 {percentile(values, 50) * 1e3:.0f} ms"
            f"  p95 {percentile(values, 95) * 1e3:.0f} ms  max {max(values) * 1e3:.0f} ms"
        )
    p50, p95 = percentile(every, 50) * 1e3, percentile(every, 95) * 1e3
    print(
        f"  all keys: p50 {p50:.0f} ms  p95 {p95:.0f} ms  max {max(every) * 1e3:.0f} ms;"
        f" writer committed {committed} episodes ({committed / (SECONDS + 2):.0f}/s while measured)"
    )
    return [
        Metric(
            f"app key response p50/p95 under {RATE:.0f} episodes/s",
            f"p95 <= {GOAL_MS:.0f} ms",
            f"{p50:.0f} / {p95:.0f} ms",
            p95 <= GOAL_MS,
        )
    ]


if __name__ == "__main__":
    main()
