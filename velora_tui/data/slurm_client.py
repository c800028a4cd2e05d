"""Asking Slurm about the user's jobs: its commands run without a shell, each with a timeout,
at most once every INTERVAL seconds however many sources, screens and commands ask (they all
read the one Snapshot; a read older than INTERVAL starts one new query in a thread of its own
and returns at once with what is known).

- The jobs: `squeue --me --json`, or, where this Slurm has no `--json`, `squeue --me --states
  all --noheader --format ...` (data/slurm.py's SQUEUE_FORMAT). Both list the jobs that ended
  within the controller's MinJobAge too.
- A job known before and no longer listed: `sacct` for its final state where accounting runs,
  else `scontrol show job --oneliner` (which knows it for MinJobAge after it ended); else it
  stays with the state last seen (an ended job), or is GONE (it was running: it ended, and
  nothing says how).

On another host (`slurm:HOST`) the same commands go through ssh: `through` turns a command's
words into the ssh command line the remote layer builds (each word quoted for the remote
shell), and `ready` is the line its shell says before the command's own output.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from velora_tui.data.cleaning import clean_text
from velora_tui.data.slurm import (
    SACCT_FORMAT,
    SQUEUE_FORMAT,
    Job,
    Snapshot,
    parse_sacct_text,
    parse_scontrol,
    parse_squeue_json,
    parse_squeue_text,
)

INTERVAL = 5.0  # seconds between two queries of Slurm, at most one at a time
TIMEOUT = 10.0  # seconds one command may take before it is killed and Slurm "not responding"
OUTPUT_LIMIT = 64 * 1024 * 1024  # a reply larger than this is refused, not parsed


class SlurmState(StrEnum):
    WAITING = "asking"
    OK = "ok"
    NOT_RESPONDING = "not responding"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class Reply:
    code: int | None  # None: it did not answer in time
    out: str
    err: str


# How a command is run: argv, timeout -> Reply (tests put a counting or slow one here).
Runner = Callable[[Sequence[str], float], Reply]


def run_command(argv: Sequence[str], timeout: float) -> Reply:
    """Runs argv without a shell, its stdin closed, killed after `timeout` seconds."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            start_new_session=True,  # no terminal signal reaches it, and it reaches no terminal
        )
    except subprocess.TimeoutExpired:
        return Reply(None, "", "")
    except OSError as exc:
        return Reply(127, "", exc.strerror or str(exc))
    out = proc.stdout[:OUTPUT_LIMIT].decode("utf-8", "replace")
    return Reply(proc.returncode, out, proc.stderr[-4000:].decode("utf-8", "replace"))


def slurm_here() -> bool:
    """Whether this machine has Slurm's commands."""
    return shutil.which("squeue") is not None


class SlurmClient:
    """The user's jobs on one cluster (this machine's, or a host's `through` ssh)."""

    def __init__(
        self,
        prefix: Sequence[str] = (),
        through: Callable[[list[str]], list[str]] | None = None,
        ready: str | None = None,
        *,
        interval: float = INTERVAL,
        timeout: float = TIMEOUT,
        runner: Runner = run_command,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = list(prefix)
        self.through = through
        self.ready = ready
        self.interval = interval
        self.timeout = timeout
        self.runner = runner
        self.clock = clock
        self.snapshot = Snapshot()
        self.state = SlurmState.WAITING
        self.message = ""
        self.calls = 0  # commands run (the tests count them)
        self.queries = 0  # queries made (each one squeue, and at times sacct or scontrol)
        self.json: bool | None = None  # whether squeue has --json (None: not known yet)
        self.accounting: bool | None = None
        self._lock = threading.Lock()
        self._asked_at: float | None = None
        self._busy = False
        self._done = threading.Condition(self._lock)

    # -- asking --------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """What is known now; a query started in the background when the last is older than
        INTERVAL (never two at once). Never waits."""
        self.poll()
        return list(self.snapshot.jobs.values())

    def poll(self) -> None:
        with self._lock:
            if not self._due():
                return
            self._busy = True
            self._asked_at = self.clock()
        threading.Thread(target=self._query, name="velora-tui slurm", daemon=True).start()

    def refresh(self, wait: float | None = None) -> None:
        """A query now, or the one under way, waited for (at most `wait`, default the
        commands' timeouts): for the one-shot commands. Within INTERVAL of the last query, what
        it found is kept."""
        limit = self.clock() + (wait if wait is not None else 3 * self.timeout + 1)
        with self._lock:
            while self._busy:
                left = limit - self.clock()
                if left <= 0:
                    return
                self._done.wait(min(left, 0.5))
            if not self._due() and self.state is not SlurmState.WAITING:
                return
            self._busy = True
            self._asked_at = self.clock()
        self._query()

    def _due(self) -> bool:
        if self._busy:
            return False
        return self._asked_at is None or self.clock() - self._asked_at >= self.interval

    def describe(self) -> str:
        """The status line's words: `3 jobs: 1 running, 2 pending`, `not responding (...)`."""
        if self.state is SlurmState.OK:
            jobs = list(self.snapshot.jobs.values())
            if not jobs:
                return "no jobs"
            running = sum(1 for j in jobs if j.running)
            pending = sum(1 for j in jobs if j.pending)
            ended = sum(1 for j in jobs if j.ended)
            parts = [
                f"{n} {what}"
                for n, what in ((running, "running"), (pending, "pending"), (ended, "ended"))
                if n
            ]
            first = next((j for j in jobs if j.pending), None)
            if first is not None and first.reason not in ("", "None"):  # why, as Slurm says
                index = parts.index(f"{pending} pending")
                parts[index] += f" (job {first.job_id}: {first.reason})"
            return clean_text(f"{len(jobs)} jobs: " + ", ".join(parts), 160)
        if self.state is SlurmState.WAITING:
            return "asking squeue"
        return f"{self.state}" + (f" ({self.message})" if self.message else "")

    # -- the query -----------------------------------------------------------------------

    def _query(self) -> None:
        try:
            self._ask()
        except Exception as exc:  # a failed query is a state, never a crash
            self._fail(SlurmState.FAILING, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._busy = False
                self._asked_at = self.clock()  # the next one INTERVAL after this one ended
                self._done.notify_all()

    def _run(self, words: Sequence[str]) -> Reply:
        self.calls += 1
        if self.through is not None:
            argv = self.through(list(words))
        elif self.prefix:
            argv = [*self.prefix, " ".join(shlex.quote(w) for w in words)]
        else:
            argv = list(words)
        reply = self.runner(argv, self.timeout)
        if self.ready is not None:
            first, _, rest = reply.out.partition("\n")
            if first.strip() != self.ready:
                # The shell never ran the command: ssh's own failure (unreachable, refused).
                code = reply.code if reply.code is None else (reply.code or 255)
                return Reply(code, "", reply.err or "ssh failed")
            reply = Reply(reply.code, rest, reply.err)
        return reply

    def _fail(self, state: SlurmState, message: str) -> None:
        self.state = state
        self.message = clean_text(message, 160)

    def _ask(self) -> None:
        self.queries += 1
        jobs = self._squeue()
        if jobs is None:
            return
        listed = {job.job_id for job in jobs}
        missing = [
            job_id
            for job_id, job in self.snapshot.jobs.items()
            if job_id not in listed and not job.ended and "[" not in job_id
        ]
        final = self._final(missing) if missing else []
        merged = self.snapshot.merged(jobs, final)
        if merged.jobs != self.snapshot.jobs:  # the same object while nothing changed: the
            self.snapshot = merged  # runs' ties are kept (slurm_monitor.py), not made anew
        self.state, self.message = SlurmState.OK, ""

    def _squeue(self) -> list[Job] | None:
        silent = f"squeue gave no answer in {self.timeout:g} s"
        if self.json is not False:
            reply = self._run(["squeue", "--me", "--json"])
            if reply.code is None:
                self._fail(SlurmState.NOT_RESPONDING, silent)
                return None
            if reply.code == 0:
                try:
                    jobs = parse_squeue_json(reply.out)
                except ValueError:
                    self.json = False  # a reply that is not its JSON: the format string then
                else:
                    self.json = True
                    return jobs
            elif "unrecognized option" in reply.err or "invalid option" in reply.err:
                self.json = False
            elif reply.code in (126, 127) and not self.prefix and self.through is None:
                self._fail(SlurmState.FAILING, "squeue not found")
                return None
            else:
                self._fail(SlurmState.FAILING, _why("squeue", reply))
                return None
        words = ["squeue", "--me", "--states", "all", "--noheader", "--format", SQUEUE_FORMAT]
        reply = self._run(words)
        if reply.code is None:
            self._fail(SlurmState.NOT_RESPONDING, silent)
            return None
        if reply.code != 0:
            self._fail(SlurmState.FAILING, _why("squeue", reply))
            return None
        return parse_squeue_text(reply.out)

    def _final(self, job_ids: list[str]) -> list[Job]:
        """The final states of jobs no longer listed: sacct where accounting runs, else
        scontrol within its retention."""
        ids = ",".join(job_ids)
        if self.accounting is not False:
            reply = self._run(
                [
                    "sacct",
                    "--noheader",
                    "--parsable2",
                    "--allocations",
                    "--jobs",
                    ids,
                    "--format",
                    SACCT_FORMAT,
                ]
            )
            if reply.code == 0:
                self.accounting = True
                return parse_sacct_text(reply.out)
            if reply.code is not None:
                self.accounting = False  # "Slurm accounting storage is disabled"
        # Every job the controller still holds, in one call (it takes no list of ids).
        reply = self._run(["scontrol", "show", "job", "--oneliner"])
        wanted = set(job_ids)
        found = parse_scontrol(reply.out) if reply.code == 0 else []
        return [job for job in found if job.job_id in wanted]


def _why(command: str, reply: Reply) -> str:
    lines = [line.strip() for line in reply.err.splitlines() if line.strip()]
    return f"{command} exited {reply.code}" + (f": {lines[-1]}" if lines else "")
