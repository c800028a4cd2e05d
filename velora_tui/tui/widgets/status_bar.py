"""The bottom status line: every source and its state, how changes are noticed, last update."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from rich.text import Text

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import SourceState, SourceStatus
from velora_tui.data.source_names import source_names
from velora_tui.report.format import shown_path
from velora_tui.tui.widgets.line import Line

STATE_STYLES = {
    SourceState.OK: "green",
    SourceState.WAITING: "yellow",
    SourceState.LOCKED: "magenta",
    SourceState.UNREADABLE: "bold red",
    SourceState.NOT_RESPONDING: "bold dark_orange",
}


def describe_sources(statuses: list[SourceStatus], mode: str, updated: datetime | None) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{mode} ", style="bold")
    hosts = [s for s in statuses if source_names.is_host(s.path)]
    statuses = [s for s in statuses if not source_names.is_host(s.path)]
    describe_hosts(line, hosts)
    if len(statuses) <= 2:
        for index, status in enumerate(statuses):
            if index:
                line.append(" · ")
            line.append(clean_text(shown_path(status.path), 80))
            line.append(f" {status.state}", style=STATE_STYLES[status.state])
            if status.state is not SourceState.OK and status.message:
                line.append(f" ({clean_text(status.message, 120)})", style="dim")
    else:
        counts = Counter(s.state for s in statuses)
        line.append(f"{len(statuses)} sources: ")
        line.append(
            ", ".join(f"{n} {state}" for state, n in counts.most_common()),
        )
        trouble = [s for s in statuses if s.state is not SourceState.OK]
        if trouble:
            first = trouble[0]
            line.append(" · ")
            line.append(clean_text(f"{shown_path(first.path)}: {first.message}", 120), style="dim")
    line.append(" · updated ")
    line.append(updated.strftime("%H:%M:%S") if updated else "-")
    return line


def describe_hosts(line: Text, hosts: list[SourceStatus]) -> None:
    """Each remote host's state (connected, connecting, unreachable, refused) and when it was
    last heard when that is overdue; beyond two hosts, how many are in each state and the first
    in trouble."""
    if not hosts:
        return
    if len(hosts) <= 2:
        for host in hosts:
            line.append(clean_text(str(host.path), 60))
            line.append(f" {clean_text(host.message, 100)}", style=STATE_STYLES[host.state])
            line.append(" · ")
        return
    counts = Counter(host.message.split(",")[0].split()[0] for host in hosts if host.message)
    line.append(f"{len(hosts)} hosts: ")
    line.append(", ".join(f"{n} {state}" for state, n in counts.most_common()))
    trouble = [host for host in hosts if host.state is not SourceState.OK]
    if trouble:
        first = trouble[0]
        line.append(f" ({clean_text(f'{first.path} {first.message}', 100)})", style="dim")
    line.append(" · ")


class StatusBar(Line):
    DEFAULT_CSS = """
    StatusBar {
        width: 1fr;
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def show_sources(
        self, statuses: list[SourceStatus], mode: str, updated: datetime | None
    ) -> None:
        self.show(describe_sources(statuses, mode, updated))
