"""A remote reader kept for the next command: the process a command leaves behind at its exit,
holding its ssh connection's reader (launch.keep_at_exit) for KEEP seconds after its last use.

A command on a remote source pays, before its first read, for an ssh session, the remote
login shell's start-up files and a Python start there. The next command on the same sources
borrows this reader instead (launch.borrow): it is handed the reader's pipes over a UNIX socket
(SCM_RIGHTS) in a folder of ours alone, uses them as its own, and gives them back by closing
the socket (its exit). It then tells the reader to start again (reader.py `again`), which says
everything anew after what the last user left unread.

While nobody borrows it, the reader's lines are read and dropped here (its heartbeats, its
changes), so it never blocks on a full pipe; while one process borrows it, this process only
waits for the socket to close. A second process asking meanwhile is told "busy" and connects
itself. It ends, and the reader with it (its stdin closes; ssh ends with it), when it has been
idle KEEP seconds, when the reader ends, or when told to (a borrower that found the reader
broken, `velora-tui cache clear`).

It is run by its path with `python -I -S`: the standard library alone, nothing of velora-tui
imported, nothing written but its socket (removed at its end).

One byte asks it something, on a new connection to its socket:
- b"b": borrow the reader: the answer is b"k" and the ssh process's id, with the reader's
  stdin and stdout; or b"n" (lent);
- b"i": what it is: one JSON line (host, its pid, ssh's, seconds left, whether it is lent);
- b"e": end now: the answer is b"k".
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import time

ASK_TIMEOUT = 1.0  # a connection of ours that says nothing is dropped after this long


def serve(
    listener: socket.socket, stdin: int, stdout: int, keep: float, host: str, ssh: int
) -> None:
    """Keep the reader until it has been idle `keep` seconds, it ends, or we are told to end."""
    deadline = time.monotonic() + keep
    lent: socket.socket | None = None
    while True:
        watched = [listener, lent if lent is not None else stdout]
        timeout = None if lent is not None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select(watched, [], [], timeout)
        if not ready:
            return  # idle for `keep` seconds
        if lent is not None and lent in ready:
            said = _receive(lent)
            lent.close()
            lent = None
            if said == b"e":  # the borrower found the reader broken
                return
            deadline = time.monotonic() + keep
        elif stdout in ready and not os.read(stdout, 1 << 16):
            return  # the reader ended (the host or the connection went away)
        if listener in ready:
            lent_now = lent is not None
            borrower, end = _answer(listener, (stdin, stdout), host, ssh, deadline, lent_now)
            if end:
                if lent is not None:
                    lent.close()
                return
            lent = borrower or lent


def _answer(
    listener: socket.socket,
    pipes: tuple[int, int],
    host: str,
    ssh: int,
    deadline: float,
    lent: bool,
) -> tuple[socket.socket | None, bool]:
    """One connection to the socket: (a new borrower, if the reader is lent to it; whether to
    end)."""
    try:
        connection, _ = listener.accept()
    except OSError:
        return None, False
    try:
        if not _ours(connection):
            connection.close()
            return None, False
        connection.settimeout(ASK_TIMEOUT)
        asked = connection.recv(1)
        if asked == b"b" and lent:
            connection.sendall(b"n")
        elif asked == b"b":
            socket.send_fds(connection, [b"k%d" % ssh], list(pipes))
            connection.settimeout(None)
            return connection, False
        if asked == b"i":
            left = max(0.0, deadline - time.monotonic())
            about = {"host": host, "pid": os.getpid(), "ssh": ssh, "left": round(left, 1)}
            about["lent"] = lent
            connection.sendall(json.dumps(about).encode() + b"\n")
        elif asked == b"e":
            connection.sendall(b"k")
            connection.close()
            return None, True
    except OSError:
        pass
    connection.close()
    return None, False


def _ours(connection: socket.socket) -> bool:
    """Whether the process at the other end is of our own user (the folder is ours alone
    already; this says so again where the system can tell)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True
    import struct

    try:
        credentials = connection.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return bool(uid == os.getuid())


def _receive(connection: socket.socket) -> bytes:
    try:
        return connection.recv(1)
    except OSError:
        return b""


def main(argv: list[str]) -> int:
    """argv: the listening socket's descriptor, the reader's stdin and stdout descriptors, the
    seconds to keep it, the host's name, the socket's path (removed at the end), the ssh
    process's id (said to borrowers)."""
    listen_fd, stdin, stdout = int(argv[0]), int(argv[1]), int(argv[2])
    keep, host, path, ssh = float(argv[3]), argv[4], argv[5], int(argv[6])
    # Not the terminal's: its signals are the command's, which has ended.
    for name in ("SIGINT", "SIGHUP", "SIGPIPE"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    listener = socket.socket(fileno=listen_fd)
    try:
        serve(listener, stdin, stdout, keep, host, ssh)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # first: a command that finds no socket connects itself
        listener.close()
        os.close(stdin)  # the reader reads its end: it ends, and ssh with it
        os.close(stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
