"""Settings that last: `$XDG_CONFIG_HOME/velora-tui/settings.toml` (default ~/.config), read
with tomllib, below the app so that every command reads the same ones; flags override them.

A file that cannot be used (bad TOML, wrong types, values out of range, NaN, a directory, a
device, too big, unreadable) costs one line (`problem`) and its defaults, never a crash: only a
regular file of at most MAX_BYTES is read, opened without blocking (a FIFO never hangs it).

The app's own changes (theme, smoothing) are written back (`save`): the top-level keys changed in
place (the user's comments and tables kept), to a temporary file in the same folder renamed over
the old one. Never through a symbolic link (the file or its folder), never into a folder that
is not the user's alone, never a file whose TOML does not parse (the user's text is kept).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from velora_tui.data.cleaning import clean_text
from velora_tui.report.alerts import HealthRules
from velora_tui.report.notify import METHODS as NOTIFY_METHODS

FOLDER = "velora-tui"
FILE = "settings.toml"
MAX_BYTES = 64 * 1024  # a settings file is a few lines; more is not one
MAX_TARGETS = 1000
TARGET_LIMIT = 1e12  # a reward threshold beyond this is a typo
X_AXES = ("episode", "steps", "time")
BANDS = ("std", "min-max")
NOTIFY_MODES = ("off", *NOTIFY_METHODS)
THEME_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SMOOTHING_MAX = 0.999

DEFAULT, FILE_SOURCE, FLAG = "default", "file", "flag"


@dataclass
class UserSettings:
    """What is in force, and where each value came from (`sources`: default / file / flag)."""

    path: Path
    theme: str = "textual-dark"
    smoothing: float = 0.6
    x_axis: str = "episode"
    band: str = "std"
    notify: str = "off"
    targets: dict[str, float] = field(default_factory=dict)
    health: HealthRules = field(default_factory=HealthRules)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    file_ok: bool = True  # False: present but not usable (then it is never written over)

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT)

    def problem(self) -> str | None:
        """The one line that says what in the file was not used, or None."""
        if not self.problems:
            return None
        return f"settings {self.path}: " + "; ".join(self.problems)

    def notify_method(self) -> str | None:
        return None if self.notify == "off" else self.notify

    def apply_flags(
        self,
        *,
        targets: Mapping[str, float] | None = None,
        notify: str | None = None,
        theme: str | None = None,
        smoothing: float | None = None,
    ) -> None:
        """Command-line values: they win over the file's."""
        for env, value in (targets or {}).items():
            self.targets[env] = value
            self.sources[f"targets.{env}"] = FLAG
        if notify is not None:
            self.notify, self.sources["notify"] = notify, FLAG
        if theme is not None:
            self.theme, self.sources["theme"] = theme, FLAG
        if smoothing is not None:
            self.smoothing, self.sources["smoothing"] = smoothing, FLAG

    def in_force(self) -> list[tuple[str, str, str]]:
        """(key, value, source) of every setting, targets and rules included."""
        rows = [
            ("theme", self.theme, self.source("theme")),
            ("smoothing", f"{self.smoothing:g}", self.source("smoothing")),
            ("x_axis", self.x_axis, self.source("x_axis")),
            ("band", self.band, self.source("band")),
            ("notify", self.notify, self.source("notify")),
        ]
        for env in sorted(self.targets):
            rows.append((f"targets.{env}", f"{self.targets[env]:g}", self.source(f"targets.{env}")))
        for item in dataclasses.fields(HealthRules):
            value = getattr(self.health, item.name)
            rows.append((f"health.{item.name}", f"{value:g}", self.source(f"health.{item.name}")))
        return rows


def settings_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/velora-tui/settings.toml`; a relative XDG_CONFIG_HOME is ignored, as
    the XDG spec says, for ~/.config."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    if not base or not os.path.isabs(base):
        home = env.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".config")
    return Path(base) / FOLDER / FILE


def _read_text(path: Path) -> str | None:
    """The file's text; None when there is no file. Raises ValueError with the reason."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ValueError("is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > MAX_BYTES:
            raise ValueError(f"is over {MAX_BYTES // 1024} KiB")
        data = b""
        while len(data) <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) > MAX_BYTES:
            raise ValueError(f"is over {MAX_BYTES // 1024} KiB")
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _show(value: Any) -> str:
    return clean_text(repr(value), 40)


def load_settings(path: Path | None = None) -> UserSettings:
    """The settings in force from the file (defaults where it has none, or a bad one)."""
    path = settings_path() if path is None else path
    settings = UserSettings(path)
    try:
        text = _read_text(path)
    except ValueError as exc:
        settings.problems.append(f"{exc}; using the defaults")
        settings.file_ok = False
        return settings
    if text is None:
        return settings
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        settings.problems.append(
            f"not valid TOML ({clean_text(str(exc), 120)}); using the defaults"
        )
        settings.file_ok = False
        return settings
    except (RecursionError, MemoryError, ValueError):
        settings.problems.append("not valid TOML (nested too deeply); using the defaults")
        settings.file_ok = False
        return settings
    _apply(settings, data)
    return settings


def _apply(settings: UserSettings, data: dict[str, Any]) -> None:
    problems = settings.problems
    known = {"theme", "smoothing", "x_axis", "band", "notify", "targets", "health"}
    for key in data:
        if key not in known:
            problems.append(f"unknown key {clean_text(key, 40)!r} ignored")

    def choice(key: str, allowed: tuple[str, ...]) -> None:
        if key not in data:
            return
        value = data[key]
        if isinstance(value, str) and value in allowed:
            setattr(settings, key, value)
            settings.sources[key] = FILE_SOURCE
        else:
            problems.append(f"{key} {_show(value)} is not one of {', '.join(allowed)}")

    if "theme" in data:
        value = data["theme"]
        if isinstance(value, str) and THEME_NAME.match(value):
            settings.theme, settings.sources["theme"] = value, FILE_SOURCE
        else:
            problems.append(f"theme {_show(value)} is not a theme name")
    if "smoothing" in data:
        number = _number(data["smoothing"])
        if number is not None and 0 <= number <= SMOOTHING_MAX:
            settings.smoothing, settings.sources["smoothing"] = number, FILE_SOURCE
        else:
            problems.append(f"smoothing {_show(data['smoothing'])} is not from 0 to 0.999")
    choice("x_axis", X_AXES)
    choice("band", BANDS)
    choice("notify", NOTIFY_MODES)
    targets = data.get("targets")
    if targets is not None:
        if not isinstance(targets, dict):
            problems.append("[targets] is not a table of ENV = number")
        else:
            for env, value in list(targets.items())[:MAX_TARGETS]:
                number = _number(value)
                if number is None or abs(number) > TARGET_LIMIT or not env.strip():
                    problems.append(f"target {clean_text(env, 40)!r} = {_show(value)} ignored")
                    continue
                settings.targets[env.strip()] = number
                settings.sources[f"targets.{env.strip()}"] = FILE_SOURCE
            if len(targets) > MAX_TARGETS:
                problems.append(f"only the first {MAX_TARGETS} targets used")
    health = data.get("health")
    if health is not None:
        if not isinstance(health, dict):
            problems.append("[health] is not a table")
        else:
            settings.health = _rules(settings, health)


def _rules(settings: UserSettings, table: dict[str, Any]) -> HealthRules:
    defaults = HealthRules()
    names = {item.name: item for item in dataclasses.fields(HealthRules)}
    chosen: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            settings.problems.append(f"unknown rule setting health.{clean_text(key, 40)} ignored")
            continue
        number = _number(value)
        whole = isinstance(getattr(defaults, key), int)
        if number is None or (whole and number != int(number)):
            kind = "a whole number" if whole else "a number"
            settings.problems.append(f"health.{key} {_show(value)} is not {kind}")
            continue
        change: dict[str, Any] = {key: int(number) if whole else number}
        candidate = dataclasses.replace(defaults, **change)
        if getattr(candidate.checked(), key) != getattr(candidate, key):
            settings.problems.append(f"health.{key} {_show(value)} is out of range")
            continue
        chosen[key] = int(number) if whole else number
        settings.sources[f"health.{key}"] = FILE_SOURCE
    return dataclasses.replace(defaults, **chosen)


def parse_target(text: str) -> tuple[str, float]:
    """`ENV=VALUE` (--target) as (env, value). Raises ValueError with the reason."""
    env, sep, value = text.rpartition("=")
    env = env.strip()
    if not sep or not env:
        raise ValueError(f"{text!r} is not ENV=VALUE")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > TARGET_LIMIT:
        raise ValueError(f"{value!r} is not a usable target")
    return env, number


# -- saving ---------------------------------------------------------------------------------


def _toml_value(value: str | float) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(float(value))


def _updated(text: str, changes: Mapping[str, str | float]) -> str:
    """The file's text with top-level keys set: each changed on its line, or added at the top
    (before the first table); everything else as it was."""
    lines = text.splitlines()
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    missing = []
    for key, value in changes.items():
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        line = f"{key} = {_toml_value(value)}"
        for index in range(end):
            if pattern.match(lines[index]):
                lines[index] = line
                break
        else:
            missing.append(line)
    at = end
    while at > 0 and not lines[at - 1].strip():
        at -= 1  # after the last top-level line, before the blank lines that end them
    if missing and at == end and end < len(lines):
        missing.append("")  # a table right after: a blank line between
    lines[at:at] = missing
    return "\n".join(lines) + "\n"


def _own_folder(folder: Path) -> str | None:
    """Why the folder is no place to write (a link, not a directory, not the user's alone)."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    if stat.S_ISLNK(info.st_mode):
        return f"{folder} is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a directory"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"{folder} is not yours"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{folder} is writable by others"
    return None


def save(changes: Mapping[str, str | float], path: Path | None = None) -> str | None:
    """Write these top-level settings (theme, smoothing) into the file. Returns why it was not
    written (one line), or None when it was."""
    path = settings_path() if path is None else path
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return f"settings not saved: {folder}: {exc.strerror or exc}"
    problem = _own_folder(folder)
    if problem is not None:
        return f"settings not saved: {problem}"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        return f"settings not saved: {path}: {exc.strerror or exc}"
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        return f"settings not saved: {path} is {kind}"
    try:
        text = _read_text(path) or ""
        tomllib.loads(text)
    except (ValueError, RecursionError):
        return f"settings not saved: {path} cannot be read as TOML (left as it is)"
    new = _updated(text, changes)
    fd, temp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new)
            handle.flush()
            os.fsync(handle.fileno())
        if info is not None:
            os.chmod(temp, stat.S_IMODE(info.st_mode))
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return f"settings not saved: {exc.strerror or exc}"
    return None
