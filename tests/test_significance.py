"""The change test: exact where it can be, right-sized for over-dispersed counts, and with false
discoveries held at the nominal rate across a whole table, checked by simulation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from memphis_incidents.significance import (
    FALL,
    RISE,
    TOO_FEW,
    WITHIN,
    change_p_values,
    dispersion,
    fdr_flags,
    judged,
)

CATEGORIES = 30
SEEDS = 400
HISTORY_WEEKS = 104
WINDOW_WEEKS = 4  # 28 days against the 28 before
RATES = np.geomspace(0.5, 400, CATEGORIES)  # reports per week, from homicide-sized to theft-sized


def weekly_counts(rng: np.random.Generator, phi: float, weeks: int, rates: np.ndarray = RATES) -> np.ndarray:
    """Weekly counts per category (rows): Poisson when phi is 1, gamma-Poisson with variance phi×mean otherwise."""
    if phi == 1:
        return rng.poisson(rates[:, None], (len(rates), weeks))
    shape = rates[:, None] / (phi - 1)
    return rng.poisson(rng.gamma(shape, (phi - 1), (len(rates), weeks)))


def report_table(counts: np.ndarray) -> pd.DataFrame:
    """The last window against the one before, with each category's dispersion from the history."""
    history, previous, current = (counts[:, :-2 * WINDOW_WEEKS], counts[:, -2 * WINDOW_WEEKS:-WINDOW_WEEKS],
                                  counts[:, -WINDOW_WEEKS:])
    return pd.DataFrame({"current": current.sum(1), "previous": previous.sum(1), "share": 0.5,
                         "phi": [dispersion(row) for row in history]})


def flag_rates(phi: float, boost: float = 1.0) -> tuple[float, float, float, float]:
    """Over many simulated reports: the share of steady categories flagged, the share of reports with
    any steady category flagged, the false discovery rate (mean share of flags that are false), and
    how often category 20 (boosted by `boost` in the current window) is flagged."""
    false_flags, reports_with_one, found, fdp = 0, 0, 0, 0.0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        counts = weekly_counts(rng, phi, HISTORY_WEEKS + 2 * WINDOW_WEEKS)
        if boost != 1:
            counts[20, -WINDOW_WEEKS:] = weekly_counts(rng, phi, WINDOW_WEEKS, RATES[20:21] * boost)[0]
        flagged = judged(report_table(counts))["reading"].isin([RISE, FALL]).to_numpy()
        null = np.arange(CATEGORIES) != 20 if boost != 1 else np.ones(CATEGORIES, dtype=bool)
        false_flags += flagged[null].sum()
        reports_with_one += flagged[null].any()
        found += flagged[20]
        fdp += flagged[null].sum() / max(flagged.sum(), 1)
    return false_flags / (SEEDS * null.sum()), reports_with_one / SEEDS, fdp / SEEDS, found / SEEDS


def test_p_values_equal_the_exact_binomial_test_when_there_is_no_dispersion():
    for current, previous, share in [(3, 6, 0.5), (40, 22, 0.5), (0, 12, 0.5), (12, 0, 0.5), (30, 70, 0.25)]:
        n = current + previous
        tails = [binomtest(current, n, share, alternative=side).pvalue for side in ("greater", "less")]
        got = change_p_values(np.array([current]), np.array([previous]), share)[0]
        assert got == pytest.approx(min(1.0, 2 * min(tails)), rel=1e-6), (current, previous, share)


def test_dispersion_is_about_one_for_poisson_counts_and_phi_for_over_dispersed_ones():
    rng = np.random.default_rng(1)
    assert dispersion(rng.poisson(50, 520)) == pytest.approx(1.0, abs=0.15)
    assert dispersion(weekly_counts(rng, 4.0, 520, np.array([80.0]))[0]) == pytest.approx(4.0, rel=0.2)
    assert dispersion(np.array([0, 0, 0, 1, 0])) == 1.0  # too little history: no widening


def test_benjamini_hochberg_flags_the_step_up_set():
    assert fdr_flags(np.array([0.01, 0.04, 0.03, 0.20]), 0.05).tolist() == [True, False, False, False]
    assert fdr_flags(np.array([0.01, 0.02, 0.03, 0.04]), 0.05).tolist() == [True] * 4
    assert fdr_flags(np.array([]), 0.05).tolist() == []


def test_readings_say_too_few_to_judge_within_and_more_than_chance():
    table = judged(pd.DataFrame({"current": [1, 60, 200, 40], "previous": [0, 55, 100, 90], "share": 0.5, "phi": 1.0}))
    assert table["reading"].tolist() == [TOO_FEW, WITHIN, RISE, FALL]
    assert table["z"].iloc[2] == pytest.approx((200 - 150) / np.sqrt(300 * 0.25))


@pytest.mark.parametrize("phi", [1.0, 3.0])
def test_steady_counts_are_flagged_at_or_below_the_nominal_rate(phi, capsys):
    per_category, per_report, _, _ = flag_rates(phi)
    with capsys.disabled():
        print(f"\nchange test, {CATEGORIES} steady categories, dispersion {phi:g}, {SEEDS} simulated reports: "
              f"false flags {per_category:.2%} of categories, {per_report:.1%} of reports with any")
    assert per_category <= 0.05 and per_report <= 0.05


def test_the_old_z_rule_over_flags_over_dispersed_counts():
    """Why the test changed: |2(√current − √previous)| ≥ 3 without dispersion or FDR flags steady counts."""
    rng = np.random.default_rng(7)
    flagged = 0
    for _ in range(100):
        table = report_table(weekly_counts(rng, 3.0, HISTORY_WEEKS + 2 * WINDOW_WEEKS))
        flagged += (np.abs(2 * (np.sqrt(table["current"]) - np.sqrt(table["previous"]))) >= 3).any()
    assert flagged / 100 > 0.2


def test_a_real_doubling_is_found(capsys):
    _, _, false_discovery_rate, found = flag_rates(3.0, boost=2.0)
    with capsys.disabled():
        print(f"\nchange test, one category of {RATES[20]:.0f} reports a week doubled (dispersion 3): found in "
              f"{found:.1%} of {SEEDS} reports, false discovery rate {false_discovery_rate:.1%}")
    assert found >= 0.9 and false_discovery_rate <= 0.05
