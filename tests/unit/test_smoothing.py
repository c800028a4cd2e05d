"""Property tests for smoothing and for the downsampled series' guarantees."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from velora_tui.data.smoothing import smooth

finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
any_floats = st.one_of(finite_floats, st.sampled_from([math.inf, -math.inf, math.nan]))
weights = st.floats(min_value=0.0, max_value=0.999)


@given(st.lists(finite_floats, min_size=1, max_size=200), weights)
def test_smoothed_values_stay_within_the_range_of_the_data(values: list[float], w: float) -> None:
    out = smooth(values, w)
    assert len(out) == len(values)
    low, high = min(values), max(values)
    slack = 1e-6 * max(1.0, abs(low), abs(high))
    assert all(low - slack <= v <= high + slack for v in out)


@given(finite_floats, st.integers(min_value=1, max_value=100), weights)
def test_constant_series_is_unchanged(value: float, n: int, w: float) -> None:
    assert smooth([value] * n, w) == [value] * n


@given(st.lists(finite_floats, min_size=1, max_size=50), weights)
def test_first_point_is_not_pulled_toward_zero(values: list[float], w: float) -> None:
    assert math.isclose(smooth(values, w)[0], values[0], rel_tol=1e-9, abs_tol=1e-9)


@given(st.lists(any_floats, max_size=100), weights)
def test_non_finite_values_are_skipped(values: list[float], w: float) -> None:
    out = smooth(values, w)
    finite_in = [v for v in values if math.isfinite(v)]
    finite_out = [v for v in out if math.isfinite(v)]
    assert len(finite_out) == len(finite_in)
    for raw, smoothed in zip(values, out, strict=True):
        assert math.isfinite(raw) == math.isfinite(smoothed)
    if finite_in:
        assert finite_out == smooth(finite_in, w)


@given(st.lists(finite_floats, max_size=50))
def test_weight_zero_is_identity(values: list[float]) -> None:
    assert smooth(values, 0.0) == values
