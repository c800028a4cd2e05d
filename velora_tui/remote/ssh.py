"""The system OpenSSH client, as velora-tui runs it: the user's `~/.ssh/config`, agent,
ProxyJump, Kerberos and known_hosts work unchanged; it never prompts (BatchMode); connections to
one host share one TCP connection (ControlMaster); a dead link is noticed by keepalives within
45 s (3 unanswered probes 15 s apart).

No local shell ever runs: ssh is started with an argument list, the host comes after `--`
(and was refused earlier if it starts with `-`, address.py). The remote command is one string
for the remote user's shell (POSIX sh), every word of it quoted with shlex.quote.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from velora_tui.remote.address import Host, check_name
from velora_tui.remote.folders import FolderError, private_folder

# Environment: another ssh_config file for every connection (`ssh -F`); the tests' own server.
CONFIG_ENV = "VELORA_TUI_SSH_CONFIG"
CACHE_ENV = "VELORA_TUI_CACHE"
READY = "velora-tui-ready"
CONNECT_TIMEOUT = 10  # seconds for the TCP connection and the handshake
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT = 3
PERSIST = 60  # seconds the shared connection stays up after its last user (the next command)
# A UNIX socket path is at most 107 bytes; ssh adds 17 characters to it while it binds; the
# socket's own name is `/<4 hex>-<%C: 40 hex>` (control_path).
_SOCKET_ROOM = 107 - 17 - 46


def cache_dir() -> Path:
    """velora-tui's cache folder: $VELORA_TUI_CACHE, else $XDG_CACHE_HOME/velora-tui, else
    ~/.cache/velora-tui."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "velora-tui"


def control_dir() -> Path:
    """Where the shared connections' sockets live, a folder of ours alone (folders.py): in the
    cache folder, or when that path is too long for a socket, in $XDG_RUNTIME_DIR (per user by
    definition) or the temporary folder, under a name every velora-tui process of ours finds,
    so that they share connections. Another user can make that name first in a folder everyone
    writes to: then this process takes a folder of its own with a name nobody can guess (it
    shares no connection with other processes; one of theirs is never used)."""
    folder = cache_dir() / "ssh"
    if len(str(folder)) <= _SOCKET_ROOM:
        private_folder(cache_dir())
        return private_folder(folder)
    mark = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and os.path.isdir(runtime):
        candidate = Path(runtime) / f"velora-tui-ssh-{mark}"
        if len(str(candidate)) <= _SOCKET_ROOM:
            with contextlib.suppress(FolderError):
                return private_folder(candidate)
    candidate = Path(tempfile.gettempdir()) / f"velora-tui-ssh-{os.getuid()}-{mark}"
    try:
        return private_folder(candidate)
    except FolderError:
        return _unguessable(mark)


# mark -> this process's own socket folder, when the shared name was taken (control_dir).
_OWN: dict[str, Path] = {}


def _unguessable(mark: str) -> Path:
    if mark not in _OWN:
        folder = Path(tempfile.mkdtemp(prefix=f"velora-tui-ssh-{mark}-"))  # made 0700
        atexit.register(shutil.rmtree, folder, True)
        _OWN[mark] = folder
    return _OWN[mark]


@dataclass(frozen=True, slots=True)
class SshOptions:
    config: str | None = None  # an ssh_config file (`-F`), default $VELORA_TUI_SSH_CONFIG
    program: str = "ssh"

    @classmethod
    def from_env(cls) -> SshOptions:
        return cls(config=os.environ.get(CONFIG_ENV) or None)


def ssh_argv(host: Host, remote_words: list[str], options: SshOptions) -> list[str]:
    """The argument list that runs `remote_words` on `host` (each word quoted for its shell)."""
    name = check_name(host.name, "host")
    argv = [options.program]
    if options.config:
        argv += ["-F", options.config]
    for option in (
        "BatchMode=yes",
        "ControlMaster=auto",
        f"ControlPath={control_path(host)}",
        f"ControlPersist={PERSIST}",
        f"ServerAliveInterval={KEEPALIVE_INTERVAL}",
        f"ServerAliveCountMax={KEEPALIVE_COUNT}",
        f"ConnectTimeout={CONNECT_TIMEOUT}",
        # Answers are JSON text: zlib makes them ~3x smaller on the wire (docs/performance.md).
        "Compression=yes",
    ):
        argv += ["-o", option]
    if host.user:
        argv += ["-l", check_name(host.user, "user")]
    if host.port:
        argv += ["-p", str(int(host.port))]
    # The shell says READY before the program starts: what follows it is the program's doing
    # (a missing python3, a reader that dies), what comes without it is ssh's (link.py).
    command = f"echo {READY} && exec " + " ".join(shlex.quote(w) for w in remote_words)
    argv += ["-T", "-e", "none", "--", name, command]
    return argv


def control_path(host: Host) -> Path:
    """The shared connection's socket for `host` as the user named it. ssh's %C alone (a hash
    of the address, port and user) gives two aliases of one address one connection, whatever
    their own ProxyJump, ProxyCommand or IdentityFile: a connection that another alias's key
    or route made would be used for this one. So each name has its own."""
    return control_dir() / f"{host_key(host)[:4]}-%C"


def host_key(host: Host) -> str:
    """A file name for a host (never a name the remote chose)."""
    return hashlib.sha256(host.label.encode()).hexdigest()[:16]


# What ssh says when trying again cannot help (checked in this order), and the state shown.
_REFUSALS = (
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "host key changed"),
    ("Host key verification failed", "host key not known or not accepted (known_hosts)"),
    ("Could not resolve hostname", "unknown host"),
    ("Permission denied", "authentication refused"),
    ("Too many authentication failures", "authentication refused"),
    ("Bad configuration option", "bad ssh configuration"),
    ("ControlPath too long", "ssh control path too long"),
)


def refusal(returncode: int | None, stderr: str, python: str) -> str | None:
    """Why the connection failed for good (None: it may work when tried again)."""
    for marker, reason in _REFUSALS:
        if marker in stderr:
            return reason
    if returncode in (126, 127) and ("not found" in stderr or "No such file" in stderr):
        return f"no {python} on the host (needs Python 3.8 or newer; see --remote-python)"
    if returncode == 126:
        return f"{python} cannot be run on the host"
    # The reader is Python 3.8; an older one stops at its syntax, or before 3.4 at `-I`.
    if "SyntaxError" in stderr or "Unknown option: -I" in stderr:
        return f"{python} on the host is older than Python 3.8 (see --remote-python)"
    return None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
