"""The `/` filter: plain words match agent, env, id and database; all words must match."""

from __future__ import annotations

from velora_tui.data.records import ExperimentSummary


def matches(summary: ExperimentSummary, query: str) -> bool:
    words = query.lower().split()
    if not words:
        return True
    haystack = f"{summary.agent} {summary.env} {summary.id} #{summary.id} {summary.db}".lower()
    return all(word in haystack for word in words)
