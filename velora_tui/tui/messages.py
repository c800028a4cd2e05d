"""Messages passed between the app, its screens and widgets.

A screen or widget asks for data, reads it in a thread worker and shows it in one cycle:
`load_x` asks (and paces), the thread worker `read_x` reads through the data layer and posts
an `XRead` below to the node that started it, whose `@on(XRead)` handler shows it. The worker
touches no widget and no attribute of its node: what it needs comes in as arguments, what it
found goes out in the message (posted only if the worker was not cancelled meanwhile).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual.message import Message

from velora_tui.data.config import ConfigView
from velora_tui.data.diff import DiffRow
from velora_tui.data.records import EpisodeRow, Key, Update
from velora_tui.data.series import Series


@dataclass
class DataChanged(Message):
    """The monitor read something new (or a heartbeat passed, with no updates)."""

    updates: list[Update]
    heartbeat: bool = False


@dataclass
class OpenExperiment(Message):
    """Show this experiment (bubbles up to the app, which owns the screen stack)."""

    key: Key


@dataclass
class EpisodesRead(Message, bubble=False):
    """The newest rows of an experiment, oldest first (the tail's start)."""

    rows: list[EpisodeRow]


@dataclass
class ConfigRead(Message, bubble=False):
    """One experiment's config."""

    view: ConfigView


@dataclass
class ConfigsRead(Message, bubble=False):
    """Flattened configs for the list's filter (None: no usable config)."""

    configs: dict[Key, Mapping[str, Any] | None]


@dataclass
class SparksRead(Message, bubble=False):
    """Reward sparkline points of some experiments of the list."""

    sparks: dict[Key, list[float]]


@dataclass
class CurvesRead(Message, bubble=False):
    """The compared experiments' series, in the order of the legend."""

    curves: list[Series]


@dataclass
class DiffRead(Message, bubble=False):
    """Two configs compared key by key, and what could not be read."""

    rows: list[DiffRow]
    notes: list[str]


@dataclass
class GroupCurvesRead(Message, bubble=False):
    """Each charted group's curve (data/groups.Aggregate), in the order of the legend; not
    `complete` while rows of its runs are left to read."""

    curves: list[Any]
    complete: bool = True
