"""Charts of an experiment's series (textual-plotext), redrawn once per batch of new rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from textual_plotext import PlotextPlot

from velora_tui.data.series import Series

FAINT = (110, 110, 130)


@dataclass(frozen=True, slots=True)
class ChartSpec:
    title: str
    metric: str
    color: tuple[int, int, int]


REWARD = ChartSpec("reward (blue) · moving avg ± std (yellow)", "reward", (90, 170, 255))
PANELS = (
    ChartSpec("episode length", "length", (200, 160, 255)),
    ChartSpec("actor loss", "actor_loss", (255, 150, 90)),
    ChartSpec("critic loss", "critic_loss", (255, 110, 140)),
    ChartSpec("entropy loss", "entropy_loss", (120, 220, 160)),
)


def finite_points(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(x) and math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


class MetricChart(PlotextPlot):
    """One metric; for the reward, also its moving average and a +-std band."""

    def __init__(self, spec: ChartSpec, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self.series: Series | None = None
        self.empty_note = "waiting for episodes"

    def on_mount(self) -> None:
        self.draw()

    def show(self, series: Series) -> None:
        self.series = series
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.spec.title)
        if self.spec.metric == "reward":
            plt.xlabel("episode")
        series = self.series
        band = series.bands[self.spec.metric] if series is not None else None
        if series is None or band is None or not band.has_data():
            note = "no data" if series is not None and len(series) else self.empty_note
            plt.title(f"{self.spec.title}: {note}")
            self.refresh()
            return
        xs = series.episode
        if not series.exact:
            for edge in (band.low, band.high):
                x, y = finite_points(xs, edge)
                plt.plot(x, y, marker="braille", color=FAINT)
        x, y = finite_points(xs, band.mean)
        plt.plot(x, y, marker="braille", color=self.spec.color)
        if self.spec.metric == "reward":
            avg = series.bands["reward_moving_avg"].mean
            std = series.bands["reward_moving_std"].mean
            upper = [a + s for a, s in zip(avg, std, strict=False)]
            lower = [a - s for a, s in zip(avg, std, strict=False)]
            for edge in (upper, lower):
                x, y = finite_points(xs, edge)
                plt.plot(x, y, marker="dot", color=(70, 110, 90))
            x, y = finite_points(xs, avg)
            plt.plot(x, y, marker="braille", color=(240, 210, 90))
        self.refresh()
