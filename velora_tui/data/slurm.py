"""Slurm jobs as Slurm's own commands tell them, parsed: `squeue --json` (and its format-string
form), `scontrol show job --oneliner`, `sacct --json` (and its `--parsable2` form).

Everything here is untrusted text from another program: a job's name, reason and working
directory may hold spaces, `$(...)`, escapes or any byte; numbers may be missing, text or
Slurm's "no value" objects. Nothing here fails on it: a job that cannot be read is left out, a
field that cannot be read is unknown (None). Names are cleaned where they are shown
(`clean_text`); the working directory is used as a path only when it is absolute.

Which job wrote which run is decided in `tie` (by database and time), and how a source names
Slurm (`slurm:`, `slurm:HOST`) and where runs are found below a job (`--slurm-path`) in
`SlurmSource` and `PathTemplate`. Running the commands is slurm_client.py's.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from velora_tui.data.cleaning import clean_text

PREFIX = "slurm:"
# States of a job that is over (the first word of Slurm's state: "CANCELLED by 0" is CANCELLED).
ENDED = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "CANCELLED",
        "PREEMPTED",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "REVOKED",
        "SPECIAL_EXIT",
        "GONE",  # ours: it left the queue and nothing says how it ended (no accounting)
    }
)
PENDING = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
UNKNOWN = "UNKNOWN"
_STATE = re.compile(r"[A-Z][A-Z_]*")
_MAX_EPOCH = 2**33  # year 2242: anything later is garbage
# Runs created this long before a job's start (or after its end) still count as its own:
# Slurm's times are whole seconds, velora's are the writer's clock.
SLACK = timedelta(seconds=2)


class SlurmSourceError(ValueError):
    """A `slurm:` source or `--slurm-path` that is refused."""


# -- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlurmSource:
    """`slurm:` (this machine's Slurm) or `slurm:HOST` (squeue and the files through ssh)."""

    host: str | None

    @property
    def label(self) -> str:
        return PREFIX + (self.host or "")


def is_slurm(text: str) -> bool:
    return text == PREFIX or (text.startswith(PREFIX) and "/" not in text[len(PREFIX) :])


def parse_slurm_source(text: str) -> SlurmSource | None:
    """`slurm:` / `slurm:HOST` (None for anything else; `slurm:path/x` stays a remote host's
    path). A host that ssh could take for an option, or with whitespace or control
    characters, is refused."""
    if not is_slurm(text):
        return None
    host = text[len(PREFIX) :]
    if not host:
        return SlurmSource(None)
    if host.startswith("-") or re.search(r"[\s\x00-\x1f\x7f:@\[\],]", host):
        raise SlurmSourceError(f"refused Slurm host {host!r}")
    return SlurmSource(host)


TEMPLATE_FIELDS = ("workdir", "job_id", "array_job_id", "array_task_id", "name")
DEFAULT_TEMPLATE = "{workdir}"


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """Where a job's runs are: `--slurm-path`, with only the fields of TEMPLATE_FIELDS, each
    plain (`{workdir}`, no attribute, index, conversion or format). A field that is unknown
    for a job (an array index for a plain job) makes the template name no folder for it."""

    text: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        try:
            parsed = list(string.Formatter().parse(self.text))
        except ValueError as exc:
            raise SlurmSourceError(f"--slurm-path {self.text!r}: {exc}") from None
        if "\x00" in self.text:
            raise SlurmSourceError("--slurm-path holds a NUL character")
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in TEMPLATE_FIELDS or spec or conversion:
                fields = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
                raise SlurmSourceError(
                    f"--slurm-path {self.text!r}: {{{name}}} is not one of {fields}"
                )

    def folder(self, job: Job) -> str | None:
        values: dict[str, str | None] = {
            "workdir": job.work_dir,
            "job_id": job.job_id,
            "array_job_id": job.array_job_id,
            "array_task_id": job.array_task if job.array_task_single else None,
            "name": job.name if job.name and "/" not in job.name and job.name not in ".." else None,
        }
        out = []
        for literal, name, _, _ in string.Formatter().parse(self.text):
            out.append(literal)
            if name is not None:
                value = values[name]
                if value is None or value == "":
                    return None
                out.append(value)
        path = "".join(out)
        return path if path.startswith("/") or path.startswith("~") else None


# -- jobs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str  # as Slurm shows it: "123", "123_4" (an array task), "123_[5-9]" (pending ones)
    state: str
    name: str = ""
    reason: str = ""
    array_job_id: str | None = None
    array_task: str | None = None  # "4", or "5-9" for the tasks that have not started
    exit_code: int | None = None
    signal: int | None = None
    work_dir: str | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    time_limit: timedelta | None = None  # None: unlimited or unknown
    elapsed_seen: timedelta | None = None  # as Slurm said it (the format-string form)

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def pending(self) -> bool:
        return self.state in PENDING

    @property
    def running(self) -> bool:
        return not self.ended and not self.pending and self.start_time is not None

    @property
    def array_task_single(self) -> bool:
        return self.array_task is not None and self.array_task.isdigit()

    def elapsed(self, now: datetime) -> timedelta | None:
        if self.start_time is None or self.pending:
            return self.elapsed_seen
        end = self.end_time if self.ended and self.end_time else now
        return max(timedelta(0), end - self.start_time)

    def time_left(self, now: datetime) -> timedelta | None:
        if self.time_limit is None or not self.running:
            return None
        elapsed = self.elapsed(now)
        return None if elapsed is None else max(timedelta(0), self.time_limit - elapsed)

    def to_json(self, now: datetime) -> dict[str, Any]:
        """`ls --json`'s `slurm` object (texts cleaned of control characters)."""
        elapsed = self.elapsed(now)
        left = self.time_left(now)
        return {
            "job_id": clean_text(self.job_id, 60),
            "array_job_id": clean_text(self.array_job_id, 40) if self.array_job_id else None,
            "array_index": clean_text(self.array_task, 200) if self.array_task else None,
            "name": clean_text(self.name),
            "state": self.state,
            "reason": None if self.reason in ("", "None") else clean_text(self.reason),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "elapsed_seconds": None if elapsed is None else int(elapsed.total_seconds()),
            "time_limit_seconds": (
                None if self.time_limit is None else int(self.time_limit.total_seconds())
            ),
            "time_left_seconds": None if left is None else int(left.total_seconds()),
            "work_dir": clean_text(self.work_dir or "", 400) or None,
            "start_time": self.start_time.isoformat(sep=" ") if self.start_time else None,
            "end_time": self.end_time.isoformat(sep=" ") if self.end_time and self.ended else None,
        }


def clean_state(value: object) -> str:
    """Slurm's state as one word of capitals (its first: "CANCELLED by 0" -> CANCELLED; the
    newer JSON's list -> its first); anything else UNKNOWN."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if not isinstance(value, str):
        return UNKNOWN
    match = _STATE.match(value.strip())
    return match.group()[:40] if match else UNKNOWN


def _number(value: object) -> int | None:
    """An integer from Slurm's JSON: a number, or the newer `{"set", "infinite", "number"}`."""
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or abs(value) > 2**62:  # NaN, absurd
        return None
    return int(value)


def _epoch(value: object) -> datetime | None:
    seconds = _number(value)
    if seconds is None or not 0 < seconds < _MAX_EPOCH:
        return None
    try:
        return datetime.fromtimestamp(seconds)
    except (OverflowError, OSError, ValueError):
        return None


def _minutes(value: object) -> timedelta | None:
    minutes = _number(value)
    if minutes is None or not 0 < minutes < 2**31:
        return None
    return timedelta(minutes=minutes)


def _text(value: object, limit: int = 4096) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _dir(value: object) -> str | None:
    text = _text(value)
    return text if text.startswith("/") and "\x00" not in text else None


def _exit_code_json(value: object) -> tuple[int | None, int | None]:
    """(exit code, signal): the older JSON gives the wait status (768: exit 3), the newer an
    object with `return_code` and `signal`."""
    if isinstance(value, Mapping):
        code = _number(value.get("return_code"))
        sig = value.get("signal")
        signal = _number(sig.get("id") if isinstance(sig, Mapping) else sig)
        return code, signal or None
    status = _number(value)
    if status is None or status < 0:
        return None, None
    if status & 0x7F:
        return None, status & 0x7F
    return (status >> 8) & 0xFF, None


def job_from_json(data: Mapping[str, Any]) -> Job | None:
    """One job of `squeue --json` (v0.0.38 and later shapes); None when it has no id."""
    job_number = _number(data.get("job_id"))
    if job_number is None:
        return None
    array_job = _number(data.get("array_job_id"))
    task = _number(data.get("array_task_id"))
    task_text = _text(data.get("array_task_string"), 200) or None
    if array_job and task is not None:
        job_id, array_task = f"{array_job}_{task}", str(task)
    elif array_job and task_text:
        job_id, array_task = f"{array_job}_[{task_text}]", task_text
    else:
        job_id, array_task = str(job_number), None
    code, signal = _exit_code_json(data.get("exit_code"))
    return Job(
        job_id=job_id,
        state=clean_state(data.get("job_state")),
        name=_text(data.get("name")),
        reason=_text(data.get("state_reason"), 400),
        array_job_id=str(array_job) if array_job else None,
        array_task=array_task,
        exit_code=code,
        signal=signal,
        work_dir=_dir(data.get("current_working_directory")),
        submit_time=_epoch(data.get("submit_time")),
        start_time=_epoch(data.get("start_time")),
        end_time=_epoch(data.get("end_time")),
        time_limit=_minutes(data.get("time_limit")),
    )


def parse_squeue_json(text: str) -> list[Job]:
    """`squeue --json`'s jobs (ValueError when it is no such document)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ValueError("no 'jobs' list in squeue's JSON")
    jobs = []
    for item in data["jobs"]:
        if isinstance(item, dict):
            job = job_from_json(item)
            if job is not None:
                jobs.append(job)
    return jobs


# The format-string form (Slurm without --json): fields split by a character no Slurm field
# holds in practice; the name last, so one that holds it anyway stays whole.
SEPARATOR = "\x1f"
SQUEUE_FIELDS = ("%i", "%A", "%K", "%T", "%r", "%V", "%S", "%e", "%l", "%M", "%Z", "%j")
SQUEUE_FORMAT = SEPARATOR.join(SQUEUE_FIELDS)


def parse_time(text: str) -> datetime | None:
    """Slurm's `2026-12-05T19:01:24` (local time); N/A, Unknown, None: None."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


_DURATION = re.compile(r"^(?:(\d{1,6})-)?(?:(\d{1,6}):)?(\d{1,6}):(\d{1,2})(?:\.\d+)?$")


def parse_duration(text: str) -> timedelta | None:
    """Slurm's `[days-][hours:]minutes:seconds` (`1-02:03:04`, `1:00:00`, `5:00`);
    UNLIMITED, NOT_SET, INVALID, a bare number of minutes (`60`) as Slurm takes it."""
    text = text.strip()
    if text.isdigit() and len(text) < 9:
        return timedelta(minutes=int(text))
    match = _DURATION.match(text)
    if not match:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    if match.group(2) is None and match.group(1) is not None:
        hours, minutes = minutes, seconds  # `1-02:03`: days-hours:minutes
        seconds = 0
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_squeue_text(text: str) -> list[Job]:
    """`squeue --noheader --format SQUEUE_FORMAT`'s lines (one that does not parse is skipped)."""
    jobs = []
    for line in text.splitlines():
        parts = line.split(SEPARATOR, len(SQUEUE_FIELDS) - 1)
        if len(parts) != len(SQUEUE_FIELDS) or not parts[0].strip():
            continue
        job_id, array_job, task, state, reason = (p.strip() for p in parts[:5])
        submit, start, end, limit, elapsed, work_dir, name = parts[5:]
        single = task if task.isdigit() else None
        array = array_job if array_job.isdigit() and (single or "_" in job_id) else None
        state = clean_state(state)
        jobs.append(
            Job(
                job_id=job_id[:80],
                state=state,
                name=name[:4096],
                reason=reason[:400],
                array_job_id=array,
                array_task=single or (task if array and task not in ("N/A", "") else None),
                work_dir=_dir(work_dir),
                submit_time=parse_time(submit),
                start_time=parse_time(start) if state not in PENDING else None,
                end_time=parse_time(end),
                time_limit=parse_duration(limit),
                elapsed_seen=parse_duration(elapsed),
            )
        )
    return jobs


_KEY = re.compile(r"(?:^|\s)(?=[A-Z][A-Za-z/:_]*=)")


def parse_fields(line: str) -> dict[str, str]:
    """`Key=value Key=value ...` of `scontrol show job --oneliner`: values may hold spaces,
    so a field runs to the next ` Key=` (a name that holds ` Key=` itself is cut there)."""
    fields: dict[str, str] = {}
    for part in _KEY.split(line.strip()):
        key, eq, value = part.partition("=")
        if eq and key not in fields:
            fields[key] = value.rstrip()
    return fields


def _exit_pair(text: str) -> tuple[int | None, int | None]:
    code, _, sig = text.partition(":")
    exit_code = int(code) if code.strip().isdigit() else None
    signal = int(sig) if sig.strip().isdigit() and int(sig) else None
    return exit_code, signal


def parse_scontrol(text: str) -> list[Job]:
    """`scontrol show job --oneliner [IDS]`'s jobs."""
    jobs = []
    for line in text.splitlines():
        fields = parse_fields(line)
        job_number = fields.get("JobId", "")
        if not job_number.isdigit():
            continue
        array_job = fields.get("ArrayJobId", "")
        task = fields.get("ArrayTaskId", "")
        if array_job.isdigit() and task:
            job_id = f"{array_job}_{task}" if task.isdigit() else f"{array_job}_[{task}]"
        else:
            job_id, array_job, task = job_number, "", ""
        exit_code, signal = _exit_pair(fields.get("ExitCode", ""))
        state = clean_state(fields.get("JobState", ""))
        jobs.append(
            Job(
                job_id=job_id,
                state=state,
                name=fields.get("JobName", "")[:4096],
                reason=fields.get("Reason", "")[:400],
                array_job_id=array_job or None,
                array_task=task or None,
                exit_code=exit_code,
                signal=signal,
                work_dir=_dir(fields.get("WorkDir", "")),
                submit_time=parse_time(fields.get("SubmitTime", "")),
                start_time=None if state in PENDING else parse_time(fields.get("StartTime", "")),
                end_time=parse_time(fields.get("EndTime", "")),
                time_limit=parse_duration(fields.get("TimeLimit", "")),
                elapsed_seen=parse_duration(fields.get("RunTime", "")),
            )
        )
    return jobs


SACCT_FIELDS = ("JobID", "State", "ExitCode", "Submit", "Start", "End", "Timelimit", "WorkDir")
SACCT_FORMAT = ",".join(SACCT_FIELDS) + ",JobName"


def parse_sacct_text(text: str) -> list[Job]:
    """`sacct --noheader --parsable2 --allocations --format SACCT_FORMAT`'s jobs."""
    jobs = []
    for line in text.splitlines():
        parts = line.split("|", len(SACCT_FIELDS))
        if len(parts) != len(SACCT_FIELDS) + 1:
            continue
        job_id, state, exit_pair, submit, start, end, limit, work_dir, name = parts
        exit_code, signal = _exit_pair(exit_pair)
        array_job, _, task = job_id.partition("_")
        jobs.append(
            Job(
                job_id=job_id[:80],
                state=clean_state(state),
                name=name[:4096],
                array_job_id=array_job if task else None,
                array_task=task.strip("[]") or None,
                exit_code=exit_code,
                signal=signal,
                work_dir=_dir(work_dir),
                submit_time=parse_time(submit),
                start_time=parse_time(start),
                end_time=parse_time(end),
                time_limit=parse_duration(limit),
            )
        )
    return jobs


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_sacct_json(text: str) -> list[Job]:
    """`sacct --json`'s jobs (their state, exit code and times)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ValueError("no 'jobs' list in sacct's JSON")
    jobs = []
    for item in data["jobs"]:
        if not isinstance(item, dict):
            continue
        number = _number(item.get("job_id"))
        if number is None:
            continue
        array, times, state, exit_code = (
            _mapping(item.get(key)) for key in ("array", "time", "state", "exit_code")
        )
        array_job, task = _number(array.get("job_id")), _number(array.get("task_id"))
        code, signal = _exit_code_json(exit_code) if exit_code else (None, None)
        jobs.append(
            Job(
                job_id=f"{array_job}_{task}" if array_job and task is not None else str(number),
                state=clean_state(state.get("current")),
                name=_text(item.get("name")),
                reason=_text(state.get("reason"), 400),
                array_job_id=str(array_job) if array_job and task is not None else None,
                array_task=str(task) if array_job and task is not None else None,
                exit_code=code,
                signal=signal,
                work_dir=_dir(item.get("working_directory")),
                submit_time=_epoch(times.get("submission")),
                start_time=_epoch(times.get("start")),
                end_time=_epoch(times.get("end")),
                time_limit=_minutes(times.get("limit")),
            )
        )
    return jobs


# -- runs and jobs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobTie:
    """The job(s) a run may have been written by. One: its job. Several: ambiguous (array
    tasks writing one file, jobs sharing a folder at the same time): said so, never guessed."""

    jobs: tuple[Job, ...]

    @property
    def job(self) -> Job | None:
        return self.jobs[0] if len(self.jobs) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.jobs) > 1

    @property
    def ended(self) -> bool:
        """Every job that may have written it is over: its silence is no stall."""
        return bool(self.jobs) and all(job.ended for job in self.jobs)

    def to_json(self, now: datetime) -> dict[str, Any]:
        job = self.job
        if job is not None:
            return job.to_json(now)
        return {
            "ambiguous": True,
            "job_ids": [clean_text(j.job_id, 60) for j in self.jobs],
            "states": sorted({j.state for j in self.jobs}),
        }


def ran_when(job: Job, moment: datetime | None, now: datetime) -> bool:
    """Whether a run created at `moment` was created while the job ran."""
    if moment is None or job.start_time is None or job.pending:
        return False
    end = job.end_time if job.ended and job.end_time else now
    return job.start_time - SLACK <= moment <= end + SLACK


def tie(
    db: Path,
    created_at: datetime | None,
    folders: Mapping[str, Sequence[Path]],
    jobs: Iterable[Job],
    now: datetime,
) -> JobTie | None:
    """The jobs whose folder holds `db` and that ran when the run was created (None: no job).
    `folders`: each job's folders (by job id)."""
    found = []
    for job in jobs:
        roots = folders.get(job.job_id, ())
        if any(root == db.parent or root in db.parents for root in roots) and ran_when(
            job, created_at, now
        ):
            found.append(job)
    if not found:
        return None
    # A job seen twice (an array task that also shows as its array's line) counts once.
    unique = tuple(dict.fromkeys(found))
    return JobTie(unique)


# -- what the list and the header say ---------------------------------------------------------


def _clock(delta: timedelta | None) -> str:
    if delta is None:
        return "?"
    seconds = int(max(delta.total_seconds(), 0))
    hours, rest = divmod(seconds, 3600)
    if hours >= 48:
        return f"{hours // 24} d {hours % 24} h"
    if hours:
        return f"{hours} h {rest // 60:02d} min"
    return f"{rest // 60} min" if rest >= 60 else f"{rest} s"


def describe(job: Job, now: datetime) -> str:
    """One short plain line: `RUNNING 1 h 02 min left of 2 h 00 min`, `PENDING (Resources)`,
    `FAILED exit 1`, `TIMEOUT after 2 h 00 min`, `CANCELLED`."""
    state = job.state
    if job.pending:
        reason = clean_text(job.reason, 40)
        return f"{state} ({reason})" if reason and reason != "None" else state
    if not job.ended:
        if job.time_limit is None:
            return f"{state} {_clock(job.elapsed(now))}, no limit"
        return f"{state} {_clock(job.time_left(now))} left of {_clock(job.time_limit)}"
    if state == "FAILED" or (state == "COMPLETED" and job.exit_code):
        if job.signal:
            return f"{state} signal {job.signal}"
        return f"{state} exit {job.exit_code}" if job.exit_code is not None else state
    if state == "TIMEOUT" and job.time_limit is not None:
        return f"TIMEOUT after {_clock(job.time_limit)}"
    if state == "GONE":
        return "ended (no accounting to say how)"
    return state


def describe_tie(found: JobTie, now: datetime) -> str:
    job = found.job
    if job is not None:
        return f"job {clean_text(job.job_id, 40)} {describe(job, now)}"
    ids = ", ".join(clean_text(j.job_id, 30) for j in found.jobs[:3])
    more = f" and {len(found.jobs) - 3} more" if len(found.jobs) > 3 else ""
    return f"ambiguous: jobs {ids}{more} wrote here at that time"


def limit_text(delta: timedelta | None) -> str:
    return _clock(delta)


@dataclass(slots=True)
class Snapshot:
    """What is known of the user's jobs: each by id, in the order Slurm listed them."""

    jobs: dict[str, Job] = field(default_factory=dict)

    def merged(self, seen: Iterable[Job], final: Iterable[Job] = ()) -> Snapshot:
        """The jobs listed now, the ended ones' final states, and every job known before that
        neither mentions (an ended job stays with its final state; one that vanished while it
        ran is GONE: it ended, and nothing says how)."""
        jobs = {job.job_id: job for job in seen}
        for job in final:
            jobs.setdefault(job.job_id, job)
        for job_id, before in self.jobs.items():
            if job_id in jobs:
                continue
            if before.pending and "[" in job_id:
                continue  # pending array tasks that started: each has its own line now
            jobs[job_id] = before if before.ended else replace(before, state="GONE", reason="")
        return Snapshot(jobs)
