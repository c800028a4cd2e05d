"""Which sources are on other machines, and where.

A source is remote when it is written

- `ssh://[user@]host[:port]/path` (the path after the host is absolute; `/~/x` is `~/x`), or
- `[user@]host:path`, scp's form, when a colon comes before any slash (`./a:b`, `/x:y`
  and `~/a:b` are local paths) and no local file or directory of that name exists; and
  anything that starts with `-` and holds a colon (so that it is refused as a host).
  An empty path (`host:`) means `metrics.db` in the remote home, as no source means
  `./metrics.db` here.

The host may be a list, as slurm writes them: `node[01-16]` (zero-padding kept), `gpu[1,3,5-7]`,
several groups (`r[1-2]n[1-4]`), and names separated by commas (`a,b:runs/`). Each host of the
list is a source of its own. A bracketed IPv6 address (`[::1]:path`) is one host.

A host or user that starts with `-` (ssh would take it for an option: `-oProxyCommand=...`)
or holds whitespace or control characters is refused here, before ssh ever runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from itertools import product

DEFAULT_PATH = "metrics.db"
MAX_HOSTS = 1024  # one list may expand to at most this many sources
MAX_DIGITS = 18  # a range's bound (a host name is at most 253 characters anyway)
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")
_GROUP = re.compile(r"\[([^\[\]]*)\]")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_SPECIAL = re.compile(r"[\[\],]")


class AddressError(ValueError):
    """A source that names a remote host in a way that is refused (before ssh runs)."""


@dataclass(frozen=True, slots=True)
class Host:
    """Where a connection goes: what ssh is given (`ssh [-l user] [-p port] -- name`)."""

    name: str
    user: str | None = None
    port: int | None = None

    @property
    def label(self) -> str:
        """How the host is shown: `name`, `user@name`, `name:port`."""
        text = f"{self.user}@{self.name}" if self.user else self.name
        return f"{text}:{self.port}" if self.port else text


@dataclass(frozen=True, slots=True)
class RemoteSource:
    """A path on a remote host: a metrics.db file or a directory holding any number of them
    (`~` and relative paths are the remote home's)."""

    host: Host
    path: str

    @property
    def label(self) -> str:
        return f"{self.host.label}:{self.path}"


def looks_remote(text: str) -> bool:
    """Whether `text` is written as a remote source (without checking it is a safe one)."""
    if text.startswith("ssh://"):
        return True
    colon = text.find(":")
    if colon <= 0:
        return False
    if text.startswith("-"):
        return True  # never a path anyone means; taken as a host, and refused as one
    slash = text.find("/")
    if 0 <= slash < colon:
        return False
    return not os.path.lexists(text)


def parse_source(text: str) -> list[RemoteSource] | None:
    """The remote sources `text` names (several for a host list), or None for a local path.
    Raises AddressError for a remote source that is refused."""
    if not looks_remote(text):
        return None
    if text.startswith("ssh://"):
        return _parse_url(text[len("ssh://") :])
    hosts, _, path = _split_scp(text)
    user, names = _split_user(hosts)
    host_list = [Host(check_name(name, "host"), user) for name in expand_hosts(names)]
    return [RemoteSource(host, check_path(path or DEFAULT_PATH)) for host in host_list]


def _split_scp(text: str) -> tuple[str, str, str]:
    """`[user@]host:path` with the host possibly `[v6 address]`: (hosts, ':', path)."""
    at = text.find("@")
    start = at + 1 if 0 <= at < text.find(":") else 0
    if text.startswith("[", start):
        end = text.find("]", start)
        if end > 0 and text[start + 1 : end].count(":") >= 2 and text[end + 1 : end + 2] == ":":
            return text[: end + 1], ":", text[end + 2 :]
    return text.partition(":")


def _parse_url(rest: str) -> list[RemoteSource]:
    authority, slash, path = rest.partition("/")
    path = slash + path
    if path.startswith("/~"):
        path = path[1:]
    user, hostport = _split_user(authority)
    port: int | None = None
    if hostport.startswith("[") and "]" in hostport:  # [v6 address][:port]
        end = hostport.index("]")
        names, tail = hostport[: end + 1], hostport[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise AddressError(f"not a host and port: {hostport!r}")
            port = _port(tail[1:])
    elif hostport.count(":") == 1:
        names, _, number = hostport.partition(":")
        port = _port(number)
    else:
        names = hostport
    host_list = [Host(check_name(name, "host"), user, port) for name in expand_hosts(names)]
    return [RemoteSource(host, check_path(path or DEFAULT_PATH)) for host in host_list]


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AddressError(f"not a port number: {text!r}")
    return int(text)


def _split_user(text: str) -> tuple[str | None, str]:
    user, at, host = text.rpartition("@")
    if not at:
        return None, text
    return check_name(user, "user"), host


def check_name(name: str, what: str) -> str:
    """A host or user name ssh may be given: refused when it could be read as an option or
    holds whitespace or control characters."""
    if not name:
        raise AddressError(f"empty {what} name")
    if name.startswith("-"):
        raise AddressError(f"refused {what} {name!r}: it starts with '-'")
    if _UNSAFE.search(name):
        raise AddressError(f"refused {what} {name!r}: it holds whitespace or control characters")
    return name


def check_path(path: str) -> str:
    """A remote path: read literally (quoted for the remote shell), only NUL is impossible.
    Leading slashes count as one (`ssh://host//srv/x` is `/srv/x`): Linux reads them so, and
    a path must never begin with `//`, which a `file:` URI would take for a host."""
    if "\x00" in path:
        raise AddressError("refused remote path: it holds a NUL character")
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


def expand_hosts(text: str) -> list[str]:
    """`a,b,node[01-03]` -> a, b, node01, node02, node03 (a bracketed IPv6 address stays one)."""
    names: list[str] = []
    for part in _split_commas(text):
        if part.startswith("[") and part.endswith("]") and part.count(":") >= 2:
            names.append(part[1:-1])
            continue
        pieces = _GROUP.split(part)
        literals, groups = pieces[0::2], [_expand_group(g) for g in pieces[1::2]]
        if any("[" in lit or "]" in lit for lit in literals):
            raise AddressError(f"unbalanced brackets in host list {part!r}")
        for choice in product(*groups):
            names.append(
                "".join(lit + pick for lit, pick in zip(literals, (*choice, ""), strict=True))
            )
            if len(names) > MAX_HOSTS:
                raise AddressError(f"host list {_shown(text)} names more than {MAX_HOSTS} hosts")
    return names


def _split_commas(text: str) -> list[str]:
    """Split on commas outside brackets (by slices: a text grown a character at a time took
    seconds for a bracket of 100,000 items)."""
    parts: list[str] = []
    depth = start = 0
    for found in _SPECIAL.finditer(text):
        char, index = found.group(), found.start()
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _expand_group(group: str) -> list[str]:
    """One bracket's names; counted before they are made, so a bracket of thousands of ranges
    is refused at once, never built first (MAX_HOSTS in all)."""
    values: list[str] = []
    shown = _shown(f"[{group}]")
    for item in group.split(","):
        match = _RANGE.match(item.strip())
        if not match:
            raise AddressError(f"not a host range: {shown}")
        first, last = match.group(1), match.group(2) or match.group(1)
        if max(len(first), len(last)) > MAX_DIGITS:  # int() of 5,000 digits is an error
            raise AddressError(f"host range {shown} has a bound of more than {MAX_DIGITS} digits")
        low, high = int(first), int(last)
        if high < low:
            raise AddressError(f"range runs backwards: {shown}")
        if len(values) + high - low + 1 > MAX_HOSTS:
            raise AddressError(f"host range {shown} names more than {MAX_HOSTS} hosts")
        width = len(first) if first.startswith("0") else 0
        values.extend(str(n).zfill(width) for n in range(low, high + 1))
    return values


def _shown(text: str, limit: int = 60) -> str:
    """A host list as an error message shows it: cut, it may be thousands of characters."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
