"""An experiment's `config` column: raw text, parsed JSON or the reason it does not parse."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from velora_tui.data.cleaning import as_int, clean_block


@dataclass(frozen=True, slots=True)
class ConfigView:
    text: str
    data: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def pretty(self) -> str:
        if self.error is not None:
            return self.text
        return clean_block(json.dumps(self.data, indent=2, ensure_ascii=False))


def parse_config(raw: object) -> ConfigView:
    """Parse untrusted config text. Never raises, whatever the text or its depth."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        text = "" if raw is None else str(raw)
        return ConfigView(text=text, error=f"config is not text ({type(raw).__name__})")
    if not raw.strip():
        return ConfigView(text=raw, error="config is empty")
    try:
        data = json.loads(raw)
    except RecursionError:
        return ConfigView(text=clean_block(raw), error="config is nested too deeply to parse")
    except ValueError as exc:
        return ConfigView(text=clean_block(raw), error=f"config is not valid JSON: {exc}")
    return ConfigView(text=clean_block(raw), data=data)


def planned_episodes(data: Any) -> int | None:
    """`train_params.n_episodes` when the config has a usable one."""
    if not isinstance(data, dict):
        return None
    params = data.get("train_params")
    if not isinstance(params, dict):
        return None
    value = as_int(params.get("n_episodes"))
    return value if value is not None and value > 0 else None


def planned_from_text(raw: object) -> int | None:
    """Cheap path for summaries: only parse when the text can hold `n_episodes`."""
    if isinstance(raw, str) and "n_episodes" in raw:
        return planned_episodes(parse_config(raw).data)
    return None


ROOT = "(root)"  # the one key of a config that is a single value
# A flattened path's dotted parts: a key (plain or quoted) and the list indexes after it.
_PATH_PART = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^."\[]+)(?:\[\d+\])*|(?:\[\d+\])+')
_INDEXES = re.compile(r"(?:\[\d+\])+$")


@lru_cache(maxsize=65_536)
def key_part(key: str) -> str:
    """A dict key as one part of a flattened path: as it is, or quoted as a JSON string when
    it could be read otherwise (so that two different configs never flatten alike): a key
    holding `.`, `[`, `"` or `\\`, an empty one, one starting with `(` (`(root)`), and one
    that does not show as it is (controls, bidi and zero-width characters: then every
    non-ASCII character is escaped, `\\u202e`). Digits are a key like any other (`ncp.0`,
    as velora writes a torch Sequential's layers): a list's items are `[0]`."""
    if key and not key.startswith("(") and not any(c in key for c in '.["\\') and key.isprintable():
        return key
    return json.dumps(key, ensure_ascii=not key.isprintable())


def path_parts(path: str) -> list[str]:
    """A flattened path's dotted parts as written (`a."b.c".seeds[0]`: `a`, `"b.c"`,
    `seeds[0]`)."""
    return _PATH_PART.findall(path)


def part_name(part: str) -> str:
    """The key a path part names: list indexes dropped, a quoted key unquoted."""
    part = _INDEXES.sub("", part)
    if part.startswith('"'):
        try:
            name = json.loads(part)
        except ValueError:
            return part
        return name if isinstance(name, str) else part
    return part


def flatten(data: Any, prefix: str = "", limit: int = 20_000) -> dict[str, Any]:
    """Nested JSON as dotted keys (`train_params.batch_size`, `layers[0]` for a list's first
    item), iteratively (no recursion), at most `limit` keys. A dict key that could be read as
    something else is quoted (`key_part`): `{"a.b": 1}` is `"a.b"`, so that no two configs
    flatten alike (`{"l": [5]}` is `l[0]`, `{"l": {"0": 5}}` is `l.0`)."""
    flat: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [(prefix, data)]
    while stack and len(flat) < limit:
        path, value = stack.pop()
        if isinstance(value, dict) and value:
            dotted = f"{path}." if path else ""
            items = [(dotted + key_part(str(key)), child) for key, child in value.items()]
        elif isinstance(value, list) and value:
            items = [(f"{path}[{i}]", child) for i, child in enumerate(value)]
        else:
            flat[path or ROOT] = value
            continue
        stack.extend(reversed(items))
    return flat
