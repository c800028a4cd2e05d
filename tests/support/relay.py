"""A relay for ssh's ProxyCommand that passes bytes at a set rate, and counts them: a slow link
between this machine and the test sshd (`vt-slow` in tests.support.sshd's ssh_config).

    python3 relay.py HOST PORT

$VELORA_TUI_RELAY_RATE: bytes per second in each direction (unset or 0: as fast as they come).
$VELORA_TUI_RELAY_DELAY: seconds each chunk is held in each direction (a round trip then takes
twice that more: a link's latency; unset or 0: none).
$VELORA_TUI_RELAY_DIR: where each relay keeps `relay-<pid>`, "<bytes to ssh> <bytes from ssh>",
rewritten within 0.1 s of a change (a connection that ssh keeps open for later commands counts
on).
Standard library only: ssh runs it as its own child.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time

CHUNK = 16_384


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    rate = float(os.environ.get("VELORA_TUI_RELAY_RATE") or 0)
    delay = float(os.environ.get("VELORA_TUI_RELAY_DELAY") or 0)
    folder = os.environ.get("VELORA_TUI_RELAY_DIR")
    sock = socket.create_connection((host, port))
    counts = [0, 0]  # to ssh (from the server), from ssh (to the server)
    lock = threading.Lock()

    def record() -> None:
        if folder:
            path = os.path.join(folder, f"relay-{os.getpid()}")
            part = os.path.join(folder, f".part-{os.getpid()}")  # not matched by relay-*
            with open(part, "w") as out:
                out.write(f"{counts[0]} {counts[1]}\n")
            os.replace(part, path)

    def note() -> None:
        """The counts written within 0.1 s of a change (a connection ssh keeps open for later
        commands ends much later: what passed must be known before)."""
        written = None
        while True:
            time.sleep(0.1)
            with lock:
                if counts != written:
                    written = list(counts)
                    record()

    def pump(read: object, write: object, index: int) -> None:
        began, sent = time.monotonic(), 0
        while True:
            try:
                data = read(CHUNK)  # type: ignore[operator]
            except OSError:
                data = b""
            if not data:
                break
            if delay > 0:
                time.sleep(delay)
            if rate > 0:  # paced: this chunk leaves when the rate allows it
                sent += len(data)
                wait = began + sent / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            try:
                write(data)  # type: ignore[operator]
            except OSError:
                break
            with lock:
                counts[index] += len(data)
        with lock:
            record()

    def write_all(data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(1, view)
            view = view[written:]

    def from_stdin(size: int) -> bytes:
        return os.read(0, size)

    threading.Thread(target=note, daemon=True).start()
    down = threading.Thread(target=pump, args=(sock.recv, write_all, 0), daemon=True)
    down.start()
    pump(from_stdin, sock.sendall, 1)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    down.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
