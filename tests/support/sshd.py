"""A real OpenSSH server on 127.0.0.1 with its own keys and config (tests/system/test_remote_*)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.processes import stop_process
from tests.support.waiting import wait_for

SSHD = Path("/usr/sbin/sshd")
RELAY = Path(__file__).with_name("relay.py")
SSH_ALIASES = 16  # vt-00 ... vt-15: the same server under as many names


KEYS = ("host_key", "user_key", "other_key")
_KEYS: list[Path] = []


def generated_keys() -> Path:
    """A folder holding the host key, the user's key and a key the server does not know, made
    once per process (each server copies them: ssh-keygen for every test costs time)."""
    if not _KEYS:
        folder = Path(tempfile.mkdtemp(prefix="velora-tui-test-keys-"))
        atexit.register(shutil.rmtree, folder, True)
        for name in KEYS:
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                check=True,
            )
        _KEYS.append(folder)
    return _KEYS[0]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SshServer:
    """`sshd -D` with its own config, host key, user key and authorized_keys in `folder`, and an
    ssh_config naming it: `vt` (and vt-00 .. vt-15) log in by key, `vt-nokey` offers a key the
    server does not know, `vt-closed` goes to a port nobody listens on."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        for name in KEYS:
            for suffix in ("", ".pub"):
                shutil.copy2(generated_keys() / f"{name}{suffix}", folder / f"{name}{suffix}")
        (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
        (folder / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "MaxSessions 100\nMaxStartups 100\nLogLevel ERROR\n"
        )
        host_key = (folder / "host_key.pub").read_text().split()
        (folder / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n"
        )
        common = (
            f"  HostName 127.0.0.1\n  User {os.environ.get('USER') or 'root'}\n"
            f"  UserKnownHostsFile {folder / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  IdentitiesOnly yes\n"
        )
        aliases = " ".join(f"vt-{n:02d}" for n in range(SSH_ALIASES))
        (folder / "ssh_config").write_text(
            f"Host vt {aliases}\n  Port {self.port}\n  IdentityFile {folder / 'user_key'}\n"
            + common
            + f"Host vt-nokey\n  Port {self.port}\n  IdentityFile {folder / 'other_key'}\n"
            + common
            + f"Host vt-closed\n  Port {free_port()}\n  IdentityFile {folder / 'user_key'}\n"
            + common
            # Through a relay that passes bytes at $VELORA_TUI_RELAY_RATE and counts them.
            + f"Host vt-slow\n  Port {self.port}\n  IdentityFile {folder / 'user_key'}\n"
            + f"  ProxyCommand {sys.executable} {RELAY} %h %p\n"
            + common
        )
        self.config = folder / "ssh_config"

    def start(self) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        log = (self.folder / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(SSHD),
                "-D",
                "-f",
                str(self.folder / "sshd_config"),
                "-E",
                str(self.folder / "sshd.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        import socket

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 10, what="sshd listening")

    def connections(self) -> list[int]:
        """The server's per-connection processes (children of the listener)."""
        if self.process is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(entry.name))
        return found

    def readers(self) -> list[int]:
        """The velora-tui readers this server runs (any depth below the listener)."""
        if self.process is None:
            return []
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    parents[int(entry.name)] = int(fields[1])

        def below(pid: int) -> bool:
            seen = 0
            while pid in parents and seen < 64:
                pid, seen = parents[pid], seen + 1
                if pid == self.process_id:
                    return True
            return False

        found = []
        for pid in parents:
            with contextlib.suppress(OSError):
                if below(pid) and b"velora-tui-reader" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
        return found

    @property
    def process_id(self) -> int:
        assert self.process is not None
        return self.process.pid

    def drop_connections(self) -> int:
        """Kill every connection (as a dropped network would); the listener stays."""
        pids = self.connections()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        """The connections and the listener gone (a host that went down)."""
        self.drop_connections()
        if self.process is not None:
            stop_process(self.process)
            self.process = None
