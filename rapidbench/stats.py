"""Paired statistics for time-to-accuracy comparisons: the numbers `rapidbench report` defends.

Every setting runs the same seeds; seed k of a setting is compared with seed k of the baseline
(same data order, same evaluation problems), so machine noise that is shared within a seed cancels.

- Time to target, per run: the first training time its held-out pass@1 curve reaches the target
  and stays there at the next evaluation (linear between evaluations; see crossing_time). A run
  that never reaches it is *censored*: its time counts as its whole training time (a lower bound
  on the true time), and the tables say how many were.
- Time ratio: the geometric mean over seeds of T_setting(k) / T_baseline(k), with the paired
  Student-t 95% interval of the mean log ratio (exact when uncensored log ratios are normal). Not
  a percentile bootstrap: over n seeds it is too narrow by about t(n-1) / 1.96 * sqrt(n / (n-1))
  (1.6x at 5 seeds); simulated with normal log ratios it held the truth 80% of the time at 4
  seeds, 89% at 10.
  With censoring on the setting's side the estimate is a lower bound; on the baseline's side, an
  upper bound.
  Every run has the same budget, so a censored time is min(T, budget), exactly observed; the
  interval is then one of the ratio of capped times. A cap puts a point mass in the log ratios (0
  for a pair that both missed), which normality does not allow; simulated under no difference
  (tests/test_stats.py), runs that either take off or stay below the target to the end, the
  interval still held 94-97% at 5-10 pairs, and an exact sign-flip interval (no normality) was no
  narrower: checked on 2026-11-27 after the long sweep's null excluded 1 at 5 pairs, and kept.
- Final accuracy: the mean over seeds of the paired difference in final pass@1, same interval.
  (A difference, not a ratio: ratios of accuracies near 0 explode.)
- The null (A/A): the baseline against itself: against its replicate (the same setting under
  other seeds, run beside the rest; report.null), else its first half of seeds against its second
  half. It checks the machinery: its interval should cover 1 (or 0). Each effect is judged by its
  own paired interval against 1. The replicate shares neither data order nor evaluation draws with
  the baseline's seed, as real pairs do, so its interval is wider than a real pair's noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats

MIN_TIME_S = 1.0  # a run at the target from its first evaluation: one second, so log ratios stay finite


def crossing_time(t: np.ndarray, acc: np.ndarray, target: float) -> float | None:
    """First time the curve (linear between evaluations) reaches `target` *and stays*: the next
    evaluation, if there is one, is at or above it too. None if it never does.

    One evaluation above the target, followed by one below, is not a crossing: it is how an
    evaluation's noise looks, and the noisier curve would touch the target first (fixed before the
    comparison's runs, 2026-11-26, after a pilot curve went 0.75 -> 0.82 -> 0.76 -> 0.73). At a
    run's last evaluation there is nothing to confirm with: a crossing there counts as it is."""
    for i in range(len(t)):
        if acc[i] >= target and (i + 1 == len(t) or acc[i + 1] >= target):
            if i == 0:
                return float(t[0])
            t0, t1, a0, a1 = t[i - 1], t[i], acc[i - 1], acc[i]
            return float(t0 + (target - a0) / (a1 - a0) * (t1 - t0))
    return None


@dataclass(frozen=True)
class RunTime:
    seconds: float  # time to target, or the run's whole training time when censored
    censored: bool


def run_time(t: np.ndarray, acc: np.ndarray, target: float, train_s: float) -> RunTime:
    hit = crossing_time(t, acc, target)
    return RunTime(max(hit, MIN_TIME_S), False) if hit is not None else RunTime(max(train_s, MIN_TIME_S), True)


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float
    pairs: int

    def fmt(self, digits: int = 2, signed: bool = False) -> str:
        f = f"{{:{'+' if signed else ''}.{digits}f}}"
        if self.pairs == 0:
            return "n/a (no pairs)"
        if self.pairs < 2:
            return f.format(self.value) + " (1 pair: no interval)"
        return f"{f.format(self.value)} [{f.format(self.lo)}, {f.format(self.hi)}]"


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    """Student-t 95% interval of the mean of `values` (paired differences or log ratios)."""
    if len(values) < 2:
        v = float(values.mean())
        return v, v
    half = scipy.stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def time_ratio(setting: list[RunTime], baseline: list[RunTime]) -> Estimate:
    """Geometric mean over paired seeds of T_setting / T_baseline, with its t interval."""
    logs = np.array([math.log(s.seconds / b.seconds) for s, b in zip(setting, baseline)])
    if not len(logs):  # e.g. a report read while the pairs' second runs are still to come
        return Estimate(math.nan, math.nan, math.nan, 0)
    lo, hi = _t_interval(logs)
    return Estimate(math.exp(logs.mean()), math.exp(lo), math.exp(hi), len(logs))


def pooled_times(a: dict[int, RunTime], b: dict[int, RunTime]) -> dict[int, RunTime]:
    """Two samples of the baseline (e.g. GRPO and its replicate) as one, per seed both ran: the
    geometric mean of their times, censored when either is. A ratio against it does not rest on
    one draw of the baseline (whose luck the null shows), at the cost of its own null."""
    return {k: RunTime(math.sqrt(a[k].seconds * b[k].seconds), a[k].censored or b[k].censored)
            for k in sorted(set(a) & set(b))}


def mean_difference(setting: list[float], baseline: list[float]) -> Estimate:
    """Mean over paired seeds of setting - baseline, with its t interval."""
    d = np.array([s - b for s, b in zip(setting, baseline)])
    if not len(d):
        return Estimate(math.nan, math.nan, math.nan, 0)
    lo, hi = _t_interval(d)
    return Estimate(float(d.mean()), lo, hi, len(d))


def halves(items: list) -> tuple[list, list]:
    """The null's pairing: first half of the seeds against the second half."""
    h = len(items) // 2
    return items[:h], items[h : 2 * h]


def seeds_for_half_width(estimate: Estimate, target_half_width: float) -> int | None:
    """Paired seeds needed for a 95% interval of half-width `target_half_width` on the ratio scale
    (log scale: log(1 + w)), at the spread of log ratios this estimate's interval implies. None
    without an interval."""
    if estimate.pairs < 2 or estimate.hi <= estimate.lo:
        return None
    n = estimate.pairs
    sd = (math.log(estimate.hi) - math.log(estimate.lo)) / 2 * math.sqrt(n) / scipy.stats.t.ppf(0.975, n - 1)
    want = math.log1p(target_half_width)
    m = 2
    while scipy.stats.t.ppf(0.975, m - 1) * sd / math.sqrt(m) > want:
        m += 1
    return m
