"""Statistics across seeds (data/seed_stats.py) against a plain reference written here: the IQM
as scipy's trim_mean(x, 0.25) defines it, the percentile bootstrap as a loop over the resamples
with numpy's default quantile, the probability of improvement as a count over all pairs."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from velora_tui.data import seed_stats
from velora_tui.data.seed_stats import (
    BOOTSTRAP_MAX_RUNS,
    NO_INTERVAL,
    WIDE_MARK,
    Estimate,
    censored_interval,
    improvement_interval,
    interval_text,
    iqm,
    iqm_interval,
    resamples,
    to_target_text,
)

# -- the reference -----------------------------------------------------------------------------


def reference_iqm(values: Sequence[float]) -> float:
    """scipy.stats.trim_mean(values, 0.25): int(0.25 * n) cut from each end of the sorted
    values, the mean of the rest."""
    ordered = sorted(values)
    cut = int(0.25 * len(ordered))
    kept = ordered[cut : len(ordered) - cut]
    return sum(kept) / len(kept)


def reference_quantile(values: Sequence[float], q: float) -> float:
    """numpy.quantile(values, q) with its default (linear) method."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def reference_interval(values: Sequence[float]) -> tuple[float, float]:
    """The percentile bootstrap: the IQM of each resample (the module's seeded draws, as
    indices into the sorted values), then the 2.5th and 97.5th percentiles."""
    ordered = sorted(values)
    iqms = [reference_iqm([ordered[i] for i in sample]) for sample in resamples(len(ordered))]
    return reference_quantile(iqms, 0.025), reference_quantile(iqms, 0.975)


def reference_improvement(xs: Sequence[float], ys: Sequence[float]) -> float:
    wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in xs for y in ys)
    return wins / (len(xs) * len(ys))


def reference_improvement_interval(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    ox, oy = sorted(xs), sorted(ys)
    found = [
        reference_improvement([ox[i] for i in a], [oy[j] for j in b])
        for a, b in zip(resamples(len(ox), 1), resamples(len(oy), 2), strict=True)
    ]
    return reference_quantile(found, 0.025), reference_quantile(found, 0.975)


def close(a: float, b: float, values: Sequence[float]) -> bool:
    """Equal to the precision of the module's integer scale over the values' range (1e-7)."""
    span = max(values) - min(values)
    return abs(a - b) <= 1e-7 * span


def fresh() -> None:
    seed_stats._iqm_estimate.cache_clear()
    seed_stats._improvement_estimate.cache_clear()


# -- exact small cases -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5.0], 5.0),
        ([1.0, 3.0], 2.0),
        ([3.0, 1.0, 2.0], 2.0),  # fewer than four: the mean
        ([4.0, 1.0, 3.0, 2.0], 2.5),  # 1 and 4 cut
        ([1.0, 100.0, 2.0, 3.0, 4.0], 3.0),  # the outlier cut
        ([8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 4.5),
        ([-1e308, 1e308, 0.0, 1.0], 0.5),
    ],
)
def test_iqm_of_known_lists(values: list[float], expected: float) -> None:
    assert iqm(values) == expected
    assert iqm_interval(values).value == expected


def test_one_run_has_no_interval_and_a_constant_sample_has_its_value() -> None:
    one = iqm_interval([464.27])
    assert one == Estimate(464.27, 464.27, 464.27, 1)
    assert not one.has_interval
    assert one.to_json() == {"iqm": 464.27, "ci95": None, "n": 1}
    for n in (2, 3, 7, BOOTSTRAP_MAX_RUNS, BOOTSTRAP_MAX_RUNS + 5):
        same = iqm_interval([450.0] * n)
        assert (same.value, same.low, same.high, same.count) == (450.0, 450.0, 450.0, n)


def test_two_runs_span_both_values_and_are_called_wide() -> None:
    """Two runs: the resamples' IQMs are a, (a + b) / 2 and b, a quarter, a half and a quarter
    of them: the interval is [a, b]."""
    two = iqm_interval([380.0, 500.0])
    assert (two.value, two.low, two.high) == (440.0, 380.0, 500.0)
    assert two.wide
    assert two.has_interval
    assert not iqm_interval([1.0, 2.0, 3.0]).wide
    assert not iqm_interval([450.0, 450.0]).wide  # no spread: nothing to call wide


def test_non_finite_values_and_text_are_left_out_and_counted() -> None:
    mixed = [1.0, math.nan, math.inf, -math.inf, "text", None, 3.0, 2]
    found = iqm_interval(mixed)
    assert found == iqm_interval([1.0, 3.0, 2.0])
    assert found.count == 3
    assert iqm_interval([math.nan, "x"]) == Estimate()
    assert iqm_interval([]).count == 0


@pytest.mark.parametrize(
    ("xs", "ys", "expected"),
    [
        ([2.0], [1.0], 1.0),
        ([1.0], [1.0], 0.5),
        ([1.0], [2.0], 0.0),
        ([1.0, 2.0], [1.0, 2.0], 0.5),
        ([1.0, 2.0, 3.0], [2.0, 2.0], 0.5),
        ([3.0, 4.0, 5.0], [1.0, 2.0, 3.5], 8.0 / 9.0),
    ],
)
def test_probability_of_improvement_of_known_pairs(
    xs: list[float], ys: list[float], expected: float
) -> None:
    found = improvement_interval(xs, ys)
    assert found.value == pytest.approx(expected)
    assert found.value == pytest.approx(reference_improvement(xs, ys))
    assert improvement_interval(ys, xs).value == pytest.approx(1 - expected)


def test_probability_of_improvement_leaves_out_what_is_not_finite() -> None:
    found = improvement_interval([2.0, math.nan, "x"], [1.0, math.inf])
    assert (found.value, found.count) == (1.0, 1)
    assert not found.has_interval
    assert math.isnan(improvement_interval([], [1.0]).value)


def test_the_resamples_are_the_seeded_ones() -> None:
    """A fixed seed: the same draws in every process and on every Python (a string seed is
    hashed with SHA-512): the first three resamples of five runs, as first drawn."""
    assert resamples(5)[:3] == ((1, 2, 3, 3, 3), (0, 1, 2, 2, 4), (2, 2, 2, 4, 4))
    assert resamples(5, 1)[0] == (0, 2, 2, 2, 3)
    assert len(resamples(5)) == seed_stats.RESAMPLES


def test_an_interval_is_the_same_computed_again() -> None:
    rng = random.Random(3)
    values = [rng.gauss(400, 50) for _ in range(10)]
    first = iqm_interval(values)
    fresh()
    seed_stats._plan.cache_clear()
    seed_stats.resamples.cache_clear()
    assert iqm_interval(list(reversed(values))) == first


# -- against the reference ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 9, 10, 17, 30, BOOTSTRAP_MAX_RUNS])
def test_bootstrap_interval_is_the_reference_percentile_bootstrap(n: int) -> None:
    rng = random.Random(n)
    for _ in range(5):
        values = [round(rng.gauss(400, 80), rng.choice([0, 2])) for _ in range(n)]
        fresh()
        found = iqm_interval(values)
        low, high = reference_interval(values)
        point = reference_iqm(values)
        assert found.value == pytest.approx(point, rel=1e-12)
        # The module holds the interval around its IQM (a percentile interval may miss it).
        assert close(found.low, min(low, point), values)
        assert close(found.high, max(high, point), values)


def test_many_runs_get_the_trimmed_means_normal_interval_close_to_the_bootstrap() -> None:
    rng = random.Random(9)
    values = [rng.gauss(0, 1) ** 2 * 100 for _ in range(BOOTSTRAP_MAX_RUNS * 2)]
    found = iqm_interval(values)
    low, high = reference_interval(values)
    width = high - low
    assert abs(found.low - low) < 0.15 * width
    assert abs(found.high - high) < 0.15 * width


@pytest.mark.parametrize(("nx", "ny"), [(2, 2), (3, 5), (5, 5), (10, 7)])
def test_probability_interval_is_the_reference_bootstrap(nx: int, ny: int) -> None:
    rng = random.Random(nx * 100 + ny)
    xs = [round(rng.gauss(1, 1), 1) for _ in range(nx)]
    ys = [round(rng.gauss(0, 1), 1) for _ in range(ny)]
    fresh()
    found = improvement_interval(xs, ys)
    low, high = reference_improvement_interval(xs, ys)
    point = reference_improvement(xs, ys)
    assert found.low == pytest.approx(min(low, point))
    assert found.high == pytest.approx(max(high, point))


def test_probability_for_many_runs_is_close_to_the_bootstrap() -> None:
    rng = random.Random(4)
    xs = [rng.gauss(0.3, 1) for _ in range(BOOTSTRAP_MAX_RUNS + 16)]
    ys = [rng.gauss(0, 1) for _ in range(BOOTSTRAP_MAX_RUNS + 6)]
    found = improvement_interval(xs, ys)
    low, high = reference_improvement_interval(xs, ys)
    assert found.value == pytest.approx(reference_improvement(xs, ys))
    assert abs(found.low - low) < 0.15 * (high - low)
    assert abs(found.high - high) < 0.15 * (high - low)


# -- properties --------------------------------------------------------------------------------

values_lists = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=40
)


@settings(deadline=None)
@given(values_lists)
def test_iqm_lies_between_min_and_max_and_within_its_interval(values: list[float]) -> None:
    found = iqm_interval(values)
    assert found.value == pytest.approx(reference_iqm(values), rel=1e-9, abs=1e-9)
    assert min(values) <= found.low <= found.value <= found.high <= max(values)
    assert found.count == len(values)


@settings(deadline=None)  # a bootstrap of 40 x 40 runs: its time is bench/groups.py's
@given(values_lists, values_lists)
def test_probability_lies_in_its_interval_within_zero_and_one(
    xs: list[float], ys: list[float]
) -> None:
    found = improvement_interval(xs, ys)
    assert found.value == pytest.approx(reference_improvement(xs, ys))
    assert 0 <= found.low <= found.value <= found.high <= 1


@given(st.lists(st.floats(-1e300, 1e300), min_size=2, max_size=12))
@example([0.0, 5e-324])  # a range that halving makes 0
def test_huge_ranges_do_not_overflow(values: list[float]) -> None:
    found = iqm_interval(values)
    assert all(math.isfinite(v) for v in (found.value, found.low, found.high))


# -- as text -----------------------------------------------------------------------------------


def test_interval_text() -> None:
    number = "{:.2f}".format
    assert interval_text(iqm_interval([464.27]), number) == f"464.27 {NO_INTERVAL}"
    assert interval_text(iqm_interval([380.0, 500.0]), number) == (
        f"440.00 [380.00, 500.00]{WIDE_MARK}"
    )
    three = iqm_interval([1.0, 2.0, 4.0])
    assert interval_text(three, number) == (
        f"{three.value:.2f} [{three.low:.2f}, {three.high:.2f}]"
    )
    assert interval_text(Estimate(), number) == "-"
    assert statistics.fmean([1.0, 2.0, 4.0]) == three.value


# -- episodes to a target: runs that did not reach it rank last ------------------------------


def reference_censored(values: Sequence[float]) -> tuple[float, float, float]:
    """IQM and percentile interval where inf (not reached) ranks last: a resample whose middle
    holds one has an IQM of inf."""
    ordered = sorted(values)

    def middle_mean(sample: Sequence[float]) -> float:
        ranked = sorted(sample)
        cut = len(ranked) // 4
        kept = ranked[cut : len(ranked) - cut]
        return math.inf if math.inf in kept else sum(kept) / len(kept)

    iqms = sorted(middle_mean([ordered[i] for i in s]) for s in resamples(len(ordered)))

    def quantile(q: float) -> float:
        position = q * (len(iqms) - 1)
        below = math.floor(position)
        low, high = iqms[below], iqms[min(below + 1, len(iqms) - 1)]
        if high in (low, math.inf) or position == below:
            return high if position != below else low
        return low + (high - low) * (position - below)

    return middle_mean(ordered), quantile(0.025), quantile(0.975)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([100.0, 200.0, 300.0, 400.0], 250.0),
        ([100.0, 200.0, 300.0, math.inf], 250.0),  # the quarter cut at the top holds it
        ([100.0, 200.0, math.inf, math.inf], math.inf),  # half did not reach it
        ([math.inf], math.inf),
        ([120.0], 120.0),
    ],
)
def test_episodes_to_target_of_known_lists(values: list[float], expected: float) -> None:
    assert censored_interval(values).value == expected


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 13, 30])
def test_episodes_to_target_interval_is_the_reference(n: int) -> None:
    rng = random.Random(n * 7)
    for _ in range(4):
        values = [
            math.inf if rng.random() < 0.3 else float(rng.randint(100, 900)) for _ in range(n)
        ]
        fresh()
        seed_stats._censored_estimate.cache_clear()
        found = censored_interval(values)
        point, low, high = reference_censored(values)
        finite_values = [v for v in values if v < math.inf] or [0.0]
        assert found.value == point
        for got, want in ((found.low, min(low, point)), (found.high, max(high, point))):
            if want == math.inf:
                assert got == math.inf
            else:
                assert close(got, want, [*finite_values, 0.0])


def test_episodes_to_target_text() -> None:
    assert to_target_text(None, 0) == "-"
    assert to_target_text(censored_interval([math.inf] * 3), 0) == "not reached (0/3)"
    assert to_target_text(censored_interval([812.0]), 1) == "812 — (1/1)"
    some = censored_interval([100.0, 200.0, 300.0, math.inf])
    assert to_target_text(some, 3) == "250 [100, ∞] (3/4)"
    mixed = [math.nan, "x", -math.inf, 150.0, 250.0]
    assert censored_interval(mixed).count == 2  # NaN, text and -inf are left out
