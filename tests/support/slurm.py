"""A real single-node Slurm cluster for the tests (tests/system/test_slurm_*.py), from the OS
packages `slurm-wlm` and `munge`, started in a temporary folder:

- `munged --foreground` run as the `munge` user, its key, socket, pid, log and seed files in the
  folder (`--key-file --socket --pid-file --log-file --seed-file`, `-f`: the folder is below
  /tmp, which munged would otherwise refuse as writable by others);
- `slurmctld -D -i` and `slurmd -D -N NODE` (each `-f` the folder's slurm.conf, also named by
  SLURM_CONF for the client commands), with `AuthInfo=socket=` munged's socket,
  `ProctrackType=proctrack/linuxproc`, `TaskPlugin=task/none`, no cgroup.conf, the short host
  name as `NodeName` (`NodeAddr=127.0.0.1`, its ports free ones), the state and spool folders in
  the folder, and `SlurmUser` = the user who runs the tests. The node says it has CPUS CPUs
  (`SlurmdParameters=config_overrides`: more than the machine's 2), so that the tests' jobs,
  each of one CPU and mostly asleep, run side by side;
- no accounting daemon (`AccountingStorageType=accounting_storage/none`): `sacct` has nothing
  then, and an ended job is known from `scontrol show job` for `MinJobAge` seconds, raised here
  to an hour (velora-tui's data/slurm reads it that way).

Every daemon runs in a session of its own with its output in a file, so a test's pipes never
wait on it; they are stopped (SIGTERM, then SIGKILL) at the end, and then whatever of the
cluster outlived them (the jobs' slurmstepd, which leaves slurmd's session; what they ran).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.waiting import wait_for

PROJECT = Path(__file__).resolve().parents[2]
DAEMONS = ("munged", "slurmctld", "slurmd")
CPUS = 12
CLIENTS = ("squeue", "sbatch", "scancel", "scontrol", "sinfo")


def missing() -> str | None:
    """What of Slurm or munge cannot be found here (None: all of it)."""
    for name in DAEMONS:
        if shutil.which(name) is None and not Path("/usr/sbin", name).exists():
            return f"{name} is not installed (apt-get install slurm-wlm munge)"
    for name in CLIENTS:
        if shutil.which(name) is None:
            return f"{name} is not installed (apt-get install slurm-wlm)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (apt-get install munge)"
    return None


def _daemon(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class SlurmCluster:
    """One controller and one compute node on this machine, under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.node = socket.gethostname().split(".")[0]
        self.cpus = CPUS
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "slurm.conf"
        # munged's own folder, which its user must reach: one of its own below /tmp (a test's
        # temporary folders are 0700 all the way down), removed by stop().
        munge = pwd.getpwnam("munge") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        self.munge_dir = Path(tempfile.mkdtemp(prefix="velora-tui-munge-"))
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for path in (self.munge_dir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        self.munge_uid, self.munge_gid = munge.pw_uid, munge.pw_gid
        self.socket = self.munge_dir / "munge.socket"
        for name in ("state", "spool", "log"):
            (folder / name).mkdir()
        ctl_port, node_port = free_ports(2)
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=velora-test",
                    f"SlurmctldHost={self.node}",
                    f"SlurmctldPort={ctl_port}",
                    f"SlurmdPort={node_port}",
                    f"SlurmUser={self.user}",
                    f"SlurmdUser={self.user}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.socket}",
                    f"StateSaveLocation={folder / 'state'}",
                    f"SlurmdSpoolDir={folder / 'spool'}",
                    f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
                    f"SlurmdPidFile={folder / 'slurmd.pid'}",
                    f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "MpiDefault=none",
                    "SlurmdParameters=config_overrides",
                    "ReturnToService=2",
                    "MinJobAge=3600",
                    "SchedulerParameters=sched_interval=1",
                    "KillWait=2",
                    "InactiveLimit=0",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN",
                    f"PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    @property
    def env(self) -> dict[str, str]:
        """The environment in which Slurm's commands find this cluster (and the jobs, which
        inherit sbatch's, this checkout)."""
        path = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "SLURM_CONF": str(self.conf), "PYTHONPATH": path}

    def _start(self, name: str, argv: Sequence[str], as_munge: bool = False) -> None:
        log = (self.folder / "log" / f"{name}.out").open("ab")
        own = not as_munge or self.munge_uid == os.geteuid()
        self.processes[name] = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=self.env,
            start_new_session=True,
            user=None if own else self.munge_uid,
            group=None if own else self.munge_gid,
        )

    def start(self) -> None:
        munge = self.munge_dir
        self._start(
            "munged",
            [
                _daemon("munged"),
                "--foreground",
                "--force",
                f"--key-file={munge / 'munge.key'}",
                f"--socket={self.socket}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            as_munge=True,
        )
        wait_for(self.socket.exists, 15, what="munged's socket")
        self._start("slurmctld", [_daemon("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._start("slurmd", [_daemon("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)])
        wait_for(self.node_idle, 60, what=f"slurm node {self.node} idle ({self.logs()})")

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        result = subprocess.run(
            list(argv),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode:
            raise AssertionError(f"{argv}: exit {result.returncode}: {result.stderr}")
        return result.stdout

    def node_idle(self) -> bool:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}: {self.logs()}")
        try:
            out = self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return out.strip().rstrip("*") in ("idle", "mixed", "allocated")

    def sbatch(self, *args: str, cwd: Path | None = None) -> str:
        """Submits a job (`sbatch --parsable ARGS`), its id."""
        out = subprocess.run(
            ["sbatch", "--parsable", *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if out.returncode:
            raise AssertionError(f"sbatch {args}: {out.stderr}")
        return out.stdout.strip().split(";")[0]

    def job_state(self, job_id: str) -> str:
        out = self.run("scontrol", "show", "job", "-o", job_id, check=False)
        for word in out.split():
            if word.startswith("JobState="):
                return word.split("=", 1)[1]
        return ""

    def logs(self) -> str:
        texts = []
        for path in sorted((self.folder / "log").iterdir()):
            with contextlib.suppress(OSError):
                texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(texts)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run("scancel", "--user", self.user, check=False, timeout=10)
        for name in reversed(list(self.processes)):
            proc = self.processes[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)  # a daemon's own shutdown
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.processes.clear()
        self.kill_leftovers()
        shutil.rmtree(self.munge_dir, ignore_errors=True)

    def kill_leftovers(self) -> list[int]:
        """Every process of this cluster still there once its daemons are gone: the jobs'
        step daemons (slurmstepd leaves slurmd's session and waits for it a long time) and
        what they ran, known by SLURM_CONF naming this cluster's slurm.conf in their
        environment. Returns their pids."""
        mark = f"SLURM_CONF={self.conf}".encode()
        killed = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if mark in environ.split(b"\0"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed.append(int(entry.name))
        return killed


@contextlib.contextmanager
def running_cluster(folder: Path) -> Iterator[SlurmCluster]:
    """A cluster started in `folder`, SLURM_CONF naming it for this process and its children
    (the CLI's, the app's), stopped at the end; the test skips where Slurm cannot be had."""
    import pytest

    why = missing()
    if why is not None:
        pytest.skip(f"no Slurm cluster: {why}")
    cluster = SlurmCluster(folder)
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
