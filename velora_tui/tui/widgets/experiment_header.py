"""The selected experiment's headline: progress, pace, ETA, best reward, last episode."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import ExperimentSummary
from velora_tui.data.slurm import describe_tie
from velora_tui.report.format import ago, best_reward, duration, episode_count, shown_path
from velora_tui.tui.render import STATUS_GLYPHS
from velora_tui.tui.widgets.line import Line


class ExperimentHeader(Vertical):
    DEFAULT_CSS = """
    ExperimentHeader { height: auto; padding: 0 1; background: $boost; }
    ExperimentHeader Horizontal { height: 1; }
    ExperimentHeader ProgressBar { width: auto; margin-right: 2; }
    ExperimentHeader Bar { width: 16; }
    """

    def compose(self) -> ComposeResult:
        yield Line(id="exp-title")
        with Horizontal():
            yield ProgressBar(total=None, show_eta=False, id="exp-progress")
            yield Line(id="exp-stats")

    def show(self, summary: ExperimentSummary | None, now: datetime) -> None:
        title = self.query_one("#exp-title", Line)
        stats = self.query_one("#exp-stats", Line)
        bar = self.query_one("#exp-progress", ProgressBar)
        if summary is None:
            title.show(Text("experiment no longer in the database", style="bold red"))
            stats.show("")
            bar.display = False
            return
        status = summary.status(now)
        glyph, style = STATUS_GLYPHS[status]
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{glyph} {status}  ", style=style)
        line.append(f"#{summary.id} ", style="bold")
        line.append(clean_text(summary.agent), style="bold")
        line.append(" · ")
        line.append(clean_text(summary.env))
        line.append(f"   {clean_text(shown_path(summary.db), 120)}", style="dim")
        title.show(line)
        if bar.display != (summary.n_episodes is not None):
            bar.display = summary.n_episodes is not None
        if summary.n_episodes:
            bar.update(total=summary.n_episodes, progress=min(summary.reached, summary.n_episodes))
        parts = [f"{episode_count(summary)} episodes"]
        if summary.health_note:  # its health (report/alerts.py), with its numbers
            parts.append(clean_text(summary.health_note, 120))
        if summary.job is not None:  # its Slurm job: time left against its limit, or its end
            parts.append(clean_text(describe_tie(summary.job, now), 80))
        rate = summary.episodes_per_minute()
        if status.value == "running" and rate is not None:
            parts.append(f"{rate:,.1f} ep/min")
            eta = summary.eta()
            if eta is not None:
                parts.append(f"ETA {duration(eta)}")
        parts.append(f"best {best_reward(summary)}")
        parts.append(f"last episode {ago(summary.last_activity, now)}")
        if summary.nonfinite:
            parts.append(f"{summary.nonfinite} with inf/NaN")
        stats.show(Text("  ·  ".join(parts), no_wrap=True, overflow="ellipsis"))
