"""Curve smoothing as TensorBoard does it: a debiased exponential moving average."""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_WEIGHT = 0.999


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """EMA with debiasing, so the first points are not pulled toward zero.

    Non-finite values are passed through as NaN and do not disturb the average; a constant
    series comes back unchanged; weight 0 means no smoothing.
    """
    weight = min(max(weight, 0.0), MAX_WEIGHT)
    finite = [v for v in values if math.isfinite(v)]
    if weight == 0 or not finite or all(v == finite[0] for v in finite):
        return [v if math.isfinite(v) else math.nan for v in values]
    smoothed: list[float] = []
    last = 0.0
    count = 0
    for value in values:
        if not math.isfinite(value):
            smoothed.append(math.nan)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        smoothed.append(last / (1 - weight**count))
    return smoothed
