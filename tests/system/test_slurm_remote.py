"""`slurm:HOST`: the jobs of a real one-node cluster asked through a real sshd on 127.0.0.1
(tests/support/sshd.py; the cluster's SLURM_CONF handed to the ssh session with SetEnv and
AcceptEnv, as a login node has its own), their runs read through the remote layer."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli, strict_json
from tests.support.processes import child_env, python_command
from tests.support.slurm import running_cluster
from tests.support.sshd import SSHD, SshServer
from tests.support.waiting import wait_for


def simulate(episodes: int, rate: float) -> str:
    words = [
        sys.executable,
        "-m",
        "velora_tui",
        "simulate",
        "metrics.db",
        "--episodes",
        str(episodes),
        "--rate",
        str(rate),
    ]
    return " ".join(shlex.quote(w) for w in words)


def test_ls_and_alerts_of_a_cluster_through_ssh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not SSHD.exists():
        pytest.skip("OpenSSH (sshd, ssh) is not installed: apt-get install openssh-server")
    with running_cluster(tmp_path / "cluster") as cluster:
        (tmp_path / "sshd").mkdir()
        server = SshServer(tmp_path / "sshd")
        with (tmp_path / "sshd" / "sshd_config").open("a") as config:
            config.write("AcceptEnv SLURM_CONF\n")
        ssh_config = server.config.read_text()
        server.config.write_text(f"SetEnv SLURM_CONF={cluster.conf}\n" + ssh_config)
        monkeypatch.setenv("VELORA_TUI_SSH_CONFIG", str(server.config))
        monkeypatch.setenv("VELORA_TUI_CACHE", str(tmp_path / "cache"))
        server.start()
        try:
            done, failed = tmp_path / "done", tmp_path / "failed"
            done.mkdir()
            failed.mkdir()
            ok = cluster.sbatch("--wrap", simulate(20, 40), cwd=done)
            bad = cluster.sbatch(
                "--wrap",
                simulate(1000, 20) + " & until [ -s metrics.db ]; do sleep 0.2; done;"
                " sleep 2; kill $!; exit 1",
                cwd=failed,
            )
            wait_for(
                lambda: (cluster.job_state(ok), cluster.job_state(bad)) == ("COMPLETED", "FAILED"),
                60,
                0.5,
                "the jobs to end",
            )
            result = run_cli("ls", "slurm:vt", "--json")
            assert result.code == 0, result.err
            runs = {item["slurm"]["job_id"]: item for item in strict_json(result.out)}
            assert runs[ok]["db"] == f"vt:{done}/metrics.db"
            assert runs[ok]["host"] == "vt"
            assert runs[ok]["slurm"]["state"] == "COMPLETED"
            assert runs[ok]["status"] == "finished"
            assert runs[bad]["slurm"]["state"] == "FAILED"
            assert runs[bad]["slurm"]["exit_code"] == 1
            assert runs[bad]["status"] == "ended"
            alerts = run_cli("alerts", "slurm:vt")
            assert alerts.code == 0, alerts.err
            assert f"job {bad} FAILED at " in alerts.out
            # A host that refuses: one line on stderr, the state named, never a hang.
            refused = subprocess.run(
                python_command("ls", "slurm:vt-closed"),
                capture_output=True,
                text=True,
                timeout=60,
                env=child_env(),
                stdin=subprocess.DEVNULL,
            )
            assert refused.returncode == 1
            assert refused.stdout == ""
            (line,) = refused.stderr.splitlines()
            assert line.startswith("velora-tui: slurm:vt-closed: unreadable: failing (squeue")
            assert "Connection refused" in line
        finally:
            server.stop()
