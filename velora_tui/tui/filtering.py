"""The `/` filter of the experiment list: a small query language. All terms must match.

    cartpole             plain word: case-insensitive substring of agent, env, #id or database
    agent:neuro env:cart case-insensitive substring (agent=X: whole name, agent!=X: not it)
    id:3                 exact id (also id>3, id!=3 ...)
    status:running       running, stalled, finished, ended (its Slurm job is over) or empty
    reward>100           last reward; best (best reward), avg (reward moving average),
                         episodes and id take > >= < <= = != (":" is "=")
    cfg.train_params.batch_size=64   a key of the config flattened to dotted keys: numbers
                         compare as numbers, other values as case-insensitive text (= and !=);
                         a missing key only matches !=
    group.final>400      when the list is grouped, a figure of the group: final (mean final
                         reward), final_std, best, best_std, runs, running, episodes (the
                         longest run's); the other terms choose the runs the figures are of.
                         Ungrouped, group terms hold for every run.

Double quotes hold spaces: `agent:"Neuro Flow"`. `parse_query` raises only `FilterError`, whose
message is one short line; `Query.matches` never raises. NaN never satisfies a comparison.
"""

from __future__ import annotations

import json
import math
import operator
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import ExperimentSummary, RunStatus
from velora_tui.data.source_names import source_names

FIELDS = ("agent", "env", "id", "status", "reward", "best", "avg", "episodes")
STATUSES = tuple(str(s) for s in RunStatus)
CONFIG_PREFIX = "cfg."
GROUP_PREFIX = "group."
GROUP_FIELDS = ("final", "final_std", "best", "best_std", "runs", "running", "episodes")

_TEXT_FIELDS = frozenset({"agent", "env"})
_NUMBER_FIELDS: dict[str, Callable[[ExperimentSummary], float]] = {
    "reward": lambda s: s.last_reward,
    "best": lambda s: s.best_reward,
    "avg": lambda s: s.reward_moving_avg,
    "episodes": lambda s: s.episodes,
    "id": lambda s: s.id,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "!=": operator.ne,
}
_ORDERING = frozenset({">", ">=", "<", "<="})
_OPERATOR = r"(>=|<=|!=|>|<|=|:)"
_FIELD_TERM = re.compile(r"([A-Za-z_]+)" + _OPERATOR + r"(.*)", re.DOTALL)
_CONFIG_TERM = re.compile(r"([^<>=!:]*)" + _OPERATOR + r"(.*)", re.DOTALL)
_MISSING = object()


class FilterError(ValueError):
    """A filter that cannot be parsed; the message says why in one short line."""


@dataclass(frozen=True, slots=True)
class Term:
    """One condition. `field` is "word", one of FIELDS or "cfg"; `value` is lower-cased."""

    field: str
    op: str = ""
    value: str = ""
    number: float | None = None
    key: str = ""

    def matches(
        self, summary: ExperimentSummary, now: datetime, config: Mapping[str, Any] | None
    ) -> bool:
        if self.field == "word":
            return self.value in _haystack(summary)
        if self.field in _TEXT_FIELDS:
            return _text_match(self.op, self.value, str(getattr(summary, self.field)))
        if self.field == "status":
            try:
                status = str(summary.status(now))
            except (TypeError, ValueError, OverflowError):  # e.g. an aware `now`
                return False
            return (status == self.value) != (self.op == "!=")
        if self.field == "cfg":
            return self._config_match(config)
        return _compare(self.op, _NUMBER_FIELDS[self.field](summary), self.number)

    def _config_match(self, config: Mapping[str, Any] | None) -> bool:
        actual = _lookup(config, self.key) if config is not None else _MISSING
        if actual is _MISSING:
            return self.op == "!="
        actual_number = _as_number(actual)
        if self.number is not None and actual_number is not None:
            return _compare(self.op, actual_number, self.number)
        if self.op in _ORDERING:
            return False
        return (_as_text(actual).lower() == self.value) != (self.op == "!=")


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed filter (see the module docstring); the empty query matches everything."""

    terms: tuple[Term, ...] = ()

    @property
    def needs_config(self) -> bool:
        """True when a term looks at the config: pass `config` to `matches`."""
        return any(term.field == "cfg" for term in self.terms)

    @property
    def is_empty(self) -> bool:
        return not self.terms

    @property
    def on_groups(self) -> bool:
        """True when a term looks at a group's figures: see `matches_group`."""
        return any(term.field == "group" for term in self.terms)

    def matches(
        self,
        summary: ExperimentSummary,
        now: datetime,
        config: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether every run term holds. `config`: the flattened config, None when unavailable."""
        return all(
            term.matches(summary, now, config) for term in self.terms if term.field != "group"
        )

    def matches_group(self, figures: Mapping[str, float]) -> bool:
        """Whether every group term holds for a group with these figures (GROUP_FIELDS)."""
        return all(
            _compare(term.op, figures.get(term.key, math.nan), term.number)
            for term in self.terms
            if term.field == "group"
        )


def parse_query(text: str) -> Query:
    """Parse the filter text; raises FilterError (one short line) when it makes no sense."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.quotes = '"'
    lexer.escapedquotes = '"'
    try:
        tokens = list(lexer)
    except ValueError as exc:
        if "quotation" in str(exc):
            raise FilterError('a " quote is not closed') from None
        raise FilterError("a \\ at the end escapes nothing") from None
    return Query(tuple(_parse_term(token) for token in tokens if token))


# -- parsing -----------------------------------------------------------------------------------


def _parse_term(token: str) -> Term:
    if token[:4].lower() == CONFIG_PREFIX:
        return _parse_config_term(token)
    if token[: len(GROUP_PREFIX)].lower() == GROUP_PREFIX:
        return _parse_group_term(token)
    found = _FIELD_TERM.fullmatch(token)
    if found is None:
        return Term("word", value=token.lower())
    name, op, value = found[1].lower(), found[2], found[3]
    shown = _show(f"{found[1]}{op}")
    if name not in FIELDS:
        fields = ", ".join([*FIELDS, CONFIG_PREFIX + "*"])
        raise FilterError(f'unknown field "{_show(found[1])}" (fields: {fields})')
    if name in _TEXT_FIELDS:
        if op in _ORDERING:
            raise FilterError(f"{name} takes :, = or != (not {op})")
        if not value:
            raise FilterError(f'"{shown}" needs a value')
        return Term(name, op, value.lower())
    if name == "status":
        if op in _ORDERING:
            raise FilterError(f"status takes :, = or != (not {op})")
        if value.lower() not in STATUSES:
            raise FilterError(f"status must be one of {', '.join(STATUSES)}")
        return Term(name, "!=" if op == "!=" else "=", value.lower())
    number = _parse_number(value)
    if number is None:
        raise FilterError(f'"{shown}" needs a number')
    return Term(name, "=" if op == ":" else op, value.lower(), number)


def _parse_config_term(token: str) -> Term:
    found = _CONFIG_TERM.fullmatch(token, len(CONFIG_PREFIX))
    if found is None:
        raise FilterError(
            f'"{_show(token)}" needs an operator and a value, e.g. cfg.train_params.batch_size=64'
        )
    key, op, value = found[1].strip(), found[2], found[3]
    shown = _show(f"{token[: len(CONFIG_PREFIX)]}{found[1]}{op}")
    if not key:
        raise FilterError(f'"{shown}" needs a key, e.g. cfg.train_params.batch_size=64')
    if not value:
        raise FilterError(f'"{shown}" needs a value')
    op = "=" if op == ":" else op
    number = _parse_number(value)
    if op in _ORDERING and number is None:
        raise FilterError(f'"{shown}" needs a number')
    return Term("cfg", op, value.lower(), number, key)


def _parse_group_term(token: str) -> Term:
    found = _FIELD_TERM.fullmatch(token, len(GROUP_PREFIX))
    fields = ", ".join(GROUP_PREFIX + name for name in GROUP_FIELDS)
    if found is None:
        raise FilterError(f'"{_show(token)}" needs an operator and a number, e.g. group.final>400')
    name, op, value = found[1].lower(), found[2], found[3]
    if name not in GROUP_FIELDS:
        raise FilterError(f'unknown group field "{_show(found[1])}" (fields: {fields})')
    number = _parse_number(value)
    if number is None:
        raise FilterError(f'"{_show(token[: len(GROUP_PREFIX)] + found[1] + op)}" needs a number')
    return Term("group", "=" if op == ":" else op, value.lower(), number, name)


def _parse_number(text: str) -> float | None:
    """A number typed in a filter: finite or infinite, never NaN."""
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _show(text: str) -> str:
    return clean_text(text, 40)


# -- matching ----------------------------------------------------------------------------------


def _haystack(summary: ExperimentSummary) -> str:
    s = summary
    return f"{s.agent} {s.env} {s.id} #{s.id} {source_names.name(s.db)}".lower()


def _text_match(op: str, wanted: str, actual: str) -> bool:
    actual = actual.lower()
    if op == ":":
        return wanted in actual
    return (actual == wanted) != (op == "!=")


def _compare(op: str, actual: float, wanted: float | None) -> bool:
    """`actual op wanted`; False whenever either side is NaN (or missing)."""
    if wanted is None or actual != actual or wanted != wanted:
        return False
    return _COMPARE[op](actual, wanted)


def _lookup(config: Mapping[str, Any], key: str) -> Any:
    try:
        value = config.get(key, _MISSING)
        if value is not _MISSING:
            return value
        folded = key.lower()
        return next((v for k, v in config.items() if str(k).lower() == folded), _MISSING)
    except Exception:  # a hostile mapping: treat the key as missing
        return _MISSING


def _as_number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_text(value: Any) -> str:
    """The text a config value is compared as: JSON's words for null/true/false."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        try:
            return str(value)
        except Exception:
            return ""
