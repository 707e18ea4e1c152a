"""Is a change in report counts more than chance? An exact conditional test, widened for the extra
variation crime counts show, with the false discovery rate controlled across a table.

Under "no change", of the `n = current + previous` reports in two periods, each falls in the current
period with probability `share` (½ for equal lengths), so `current ~ Binomial(n, share)`. Crime
counts vary more than a Poisson process would (clusters, sprees, reporting drives), so counts are
first divided by a dispersion factor φ estimated from the category's own weekly history (a
quasi-Poisson correction). The p-values of every row of a table are then judged together
(Benjamini–Hochberg), so a report of a dozen categories does not find one change by chance.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betainc

FDR = 0.05  # false discovery rate across one table
MIN_COUNTS = 10  # fewer reports in both periods together: too few to judge
MIN_WEEK_PAIRS = 8  # fewer consecutive periods with reports: dispersion is taken as 1
FALL, RISE, WITHIN, TOO_FEW = "fall beyond chance", "rise beyond chance", "within chance variation", "too few to judge"
READINGS = (FALL, RISE, WITHIN, TOO_FEW)  # what the test says about a change


def dispersion(weekly: np.ndarray) -> float:
    """How much more counts per period (weeks, or months) swing than Poisson counts would: the mean
    of (a − b)² / (a + b) over consecutive periods (exactly 1 in expectation for steady Poisson counts, φ for counts whose
    variance is φ times their mean; differences of neighbours ignore slow trends and seasons), raised
    by one standard error (√(2/k) for k pairs) so that a noisy estimate does not make the test
    liberal. Never below 1: the test is never stricter than the Poisson one."""
    weekly = np.asarray(weekly, dtype=float)
    a, b = weekly[:-1], weekly[1:]
    total = a + b
    used = total > 0
    if used.sum() < MIN_WEEK_PAIRS:
        return 1.0
    estimate = float(np.mean((a[used] - b[used]) ** 2 / total[used]))
    return max(1.0, estimate * (1 + np.sqrt(2 / used.sum())))


def change_p_values(current: np.ndarray, previous: np.ndarray, share: np.ndarray | float = 0.5,
                    phi: np.ndarray | float = 1.0) -> np.ndarray:
    """Two-sided p-values of `current` given `current + previous` under no change, counts divided by φ.

    P(X ≥ x) = I_p(x, n − x + 1) and P(X ≤ x) = I_{1−p}(n − x, x + 1) (regularised incomplete beta),
    which also serve the non-whole counts that dividing by φ gives; twice the smaller tail, at most 1.
    """
    x = np.asarray(current, dtype=float) / phi
    n = (np.asarray(current, dtype=float) + np.asarray(previous, dtype=float)) / phi
    p = np.broadcast_to(np.asarray(share, dtype=float), x.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        upper = np.where(x > 0, betainc(np.maximum(x, 1e-12), n - x + 1, p), 1.0)
        lower = np.where(n - x > 0, betainc(np.maximum(n - x, 1e-12), x + 1, 1 - p), 1.0)
    return np.where(n > 0, np.minimum(1.0, 2 * np.minimum(upper, lower)), 1.0)


def z_scores(current: np.ndarray, previous: np.ndarray, share: np.ndarray | float = 0.5,
             phi: np.ndarray | float = 1.0) -> np.ndarray:
    """(current − expected) / its standard deviation under no change: about N(0, 1) when nothing changed."""
    current, n = np.asarray(current, dtype=float), np.asarray(current, dtype=float) + np.asarray(previous)
    spread = np.sqrt(phi * n * share * (1 - np.asarray(share)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, (current - n * share) / spread, 0.0)


def fdr_flags(p_values: np.ndarray, q: float = FDR) -> np.ndarray:
    """Benjamini–Hochberg: which p-values are discoveries at false discovery rate q."""
    p_values = np.asarray(p_values, dtype=float)
    m = len(p_values)
    if not m:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p_values)
    passing = p_values[order] <= q * np.arange(1, m + 1) / m
    cutoff = np.flatnonzero(passing).max() + 1 if passing.any() else 0
    flags = np.zeros(m, dtype=bool)
    flags[order[:cutoff]] = True
    return flags


def judged(table: pd.DataFrame, q: float = FDR) -> pd.DataFrame:
    """A table with `current`, `previous`, `share` and `phi` columns, plus `z`, `p` and a plain
    `reading`: a rise or fall beyond chance, within chance variation, or too few to judge. Rows with
    too few reports are not tested, so they spend none of the table's false discovery rate."""
    out = table.copy()
    testable = (out["current"] + out["previous"]) >= MIN_COUNTS
    out["z"] = z_scores(out["current"], out["previous"], out["share"], out["phi"])
    out["p"] = change_p_values(out["current"], out["previous"], out["share"], out["phi"])
    flags = pd.Series(False, index=out.index)
    flags[testable] = fdr_flags(out.loc[testable, "p"].to_numpy(), q)
    out["reading"] = np.select([~testable, flags & (out["z"] > 0), flags], [TOO_FEW, RISE, FALL], default=WITHIN)
    return out
