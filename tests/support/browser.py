"""`velora-tui serve` as a process, and a real Chromium through Playwright: its websocket frames
and screenshots (tests/system/test_serve*.py, bench/serve.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from tests.support.processes import child_env, python_command, stop_process

if TYPE_CHECKING:
    from playwright.sync_api import Page, WebSocket

# Chromium from the OS, as the tests and the benchmark start it: headless, as root (no
# sandbox), and without the background traffic (updates, sync, QUIC probes) it would otherwise
# send into a network that has no way out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TAB_MODULE = "velora_tui.serve.tab"


def chromium_path() -> str | None:
    """The OS's Chromium (Playwright's own download is never used)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_missing() -> str | None:
    """Why a real-browser test cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "no Chromium on PATH (apt-get install chromium; .ci/run does it where it can)"
    return None


def children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def command_line(pid: int) -> list[str]:
    """A process's arguments exactly as it was started with them ([] once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(part) for part in raw.split(b"\0")[:-1]]


class Served:
    """`velora-tui serve --port 0 [ARGS] -- SOURCES` as a process: the URL it prints, its log
    (stderr, in a file), the tabs' app processes it runs."""

    def __init__(
        self,
        sources: Sequence[Path | str],
        log: Path,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.log = log
        with log.open("wb") as handle:
            self.proc = subprocess.Popen(
                python_command("serve", "--port", "0", *args, "--", *sources),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=handle,
                cwd=cwd,
                env={**child_env(), **(env or {})},
            )
        assert self.proc.stdout is not None
        line = _read_line(self.proc.stdout, timeout)
        if not line.startswith("http://"):
            self.stop()
            raise AssertionError(f"serve printed {line!r}; its log: {self.log_text()}")
        # Whatever else it prints (textual-serve passes an app's stderr on to it) is read, so
        # that a full pipe never holds the server up.
        self.rest = bytearray()
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        self.url = line
        address, _, self.token = line.removeprefix("http://").partition("/?token=")
        self.port = int(address.rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.origin = self.base

    def _drain(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := stream.read1(65536):  # type: ignore[attr-defined]
                self.rest += chunk

    def tabs(self) -> set[int]:
        """The app processes it runs now (one per open websocket)."""
        return {pid for pid in children(self.proc.pid) if TAB_MODULE in command_line(pid)}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        return stop_process(self.proc)


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """One line from a pipe, waiting at most `timeout` seconds ("" if none came)."""
    import select

    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours) of an 8-bit RGB(A), non-interlaced PNG (what
    Chromium's screenshots are): enough to tell a drawn page from a blank one."""
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        raise ValueError(f"a PNG of a kind not read here: {depth=} {colour_type=} {interlace=}")
    step = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * step
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0), (abs(guess - up), 1), (abs(guess - corner), 2))
                line[i] = (line[i] + (left, up, corner)[near[1]]) & 0xFF
        if row % 4 == 0:  # a sample of rows is plenty to count colours
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, step * 4))
        previous = line
    return width, height, len(colours)


class PageFrames:
    """The websocket frames a Playwright page (sync API) receives: the app's screen as
    terminal output. xterm.js draws it on a canvas, so its text is not in the DOM."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.received: list[bytes] = []
        self.sockets = 0
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        self.sockets += 1
        socket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        self.received.append(payload if isinstance(payload, bytes) else payload.encode())

    def mark(self) -> int:
        return len(self.received)

    def text(self, start: int = 0) -> str:
        return b"".join(self.received[start:]).decode("utf-8", "replace")

    def wait_for(self, *needles: str, start: int = 0, timeout: float = 30.0) -> None:
        """Until every needle has arrived in a frame since `start` (Playwright dispatches
        events while it waits, so this waits through it)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(start)
            missing = [needle for needle in needles if needle not in text]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{missing} not in the page's frames after {timeout} s"
                    f" ({len(self.received) - start} frames; last: {text[-400:]!r})"
                )
            self.page.wait_for_timeout(50)
