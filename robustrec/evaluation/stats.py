"""Significance tests and 95% intervals for robustness reports.

Two questions, two tests (all intervals are 95%, t-based: mean ± t₀.₉₇₅,ₙ₋₁ · s/√n):

- *Does the perturbation hurt?* ``paired_user_test``: per evaluated user, the clean metric
  minus the user's perturbed metric averaged over the R repeats; paired t-test over users
  (two-sided; the mean difference is what the drop reports, and with thousands of users the
  t-test is valid by the CLT), with the t-interval on the mean difference. The Wilcoxon
  signed-rank p-value (zero differences dropped) is stored as well: it tests a shift of the
  median, so it can be small while the mean's interval covers 0.
- *Does model B drop less than model A?* ``drop_difference_test``: the relative drop of each
  repeat, compared across repeats. When both used the same trial seeds (same noise draws,
  a common-random-numbers design) it is a paired t-test by repeat; otherwise Welch's t-test.
  This measures the effect against noise-seed variability for *these two trained models*;
  it says nothing about variability across training seeds.

Beside each p-value: the standardized effect d_z (mean difference / sd of the differences) with
its 95% interval (``effect_size``), and for tests over repeats or training seeds the smallest
d_z the design detects with 80% power (paired t-test, two-sided α = 0.05, noncentral t:
``minimum_detectable_dz``). A design whose minimum detectable effect exceeds ``TARGET_DZ`` (a "large"
effect) is marked "underpowered": its non-significant p says "underpowered", not only "not
significant".
Identical results give d_z = 0 and p = 1.

Undefined values (fewer than two observations, zero variance with a non-zero mean, ...) are
``None`` so that reports stay valid JSON.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05
POWER = 0.8
#: the effect size a design should be able to detect (Cohen's "large"); above it: "underpowered"
TARGET_DZ = 0.8
#: above this many pairs the d_z interval uses the normal approximation of its standard error
EXACT_DZ_INTERVAL_MAX_N = 200


def finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def t_interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """95% t-interval of the mean of ``values`` (None when n < 2)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None, None
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return finite_or_none(values.mean() - half), finite_or_none(values.mean() + half)


def paired_user_test(clean: np.ndarray, perturbed: np.ndarray) -> dict:
    """Clean vs perturbed per user; ``perturbed`` is (repeats × users), ``clean`` is (users,)."""
    # difference per repeat first, then the mean: equal values give exact zeros, whereas
    # clean − mean(perturbed) leaves rounding residue (~1e-18) that a t-test calls significant
    diff = (np.asarray(clean, dtype=np.float64)[None, :] - np.asarray(perturbed, dtype=np.float64)).mean(axis=0)
    return paired_difference_test(diff)


class UserDifferences:
    """The running sum of clean − perturbed per user, one repeat at a time: what ``paired_user_test``
    needs without holding every repeat (memory O(users), not O(repeats · users)). ``mean()`` is
    bitwise the ``.mean(axis=0)`` of the stacked differences (numpy sums that axis in order)."""

    def __init__(self, clean: np.ndarray) -> None:
        self.clean = np.asarray(clean, dtype=np.float64)
        self.total = np.zeros_like(self.clean)
        self.count = 0

    def add(self, perturbed: np.ndarray) -> None:
        self.total += self.clean - np.asarray(perturbed, dtype=np.float64)
        self.count += 1

    def mean(self) -> np.ndarray:
        return self.total / self.count


def paired_difference_test(diff: np.ndarray) -> dict:
    """``paired_user_test`` from the per-user mean differences (clean − perturbed)."""
    from scipy import stats

    low, high = t_interval(diff)
    p_value, wilcoxon_p = None, None
    if len(diff) >= 2:
        p_value = _p_or_degenerate(diff.std(ddof=1), float(diff.mean()),
                                   lambda: stats.ttest_1samp(diff, 0.0).pvalue)
        nonzero = np.any(diff != 0)
        wilcoxon_p = finite_or_none(stats.wilcoxon(diff, zero_method="wilcox").pvalue) if nonzero else 1.0
    d_z, d_ci = effect_size(diff)
    return {"test": "paired t-test over users", "n": int(len(diff)),
            "mean_difference": finite_or_none(diff.mean()) if len(diff) else None,
            "ci95": [low, high], "p_value": p_value, "wilcoxon_p_value": wilcoxon_p,
            "d_z": d_z, "d_z_ci95": d_ci}


def relative_drops(clean: float, perturbed: np.ndarray) -> np.ndarray | None:
    """(clean − perturbed)/clean in % for each repeat; None when the clean value is 0."""
    if clean == 0:
        return None
    return (clean - np.asarray(perturbed, dtype=np.float64)) / clean * 100.0


def drop_difference_test(drops_a: np.ndarray, drops_b: np.ndarray, paired: bool) -> dict:
    """Mean of drops_a − drops_b (percentage points) with a 95% interval and a two-sided p-value."""
    from scipy import stats

    a, b = np.asarray(drops_a, dtype=np.float64), np.asarray(drops_b, dtype=np.float64)
    paired = paired and len(a) == len(b)
    difference = float(a.mean() - b.mean())
    out = {"test": "paired t-test by repeat seed" if paired else "Welch t-test",
           "n": [int(len(a)), int(len(b))], "mean_difference": finite_or_none(difference),
           "ci95": [None, None], "p_value": None}
    if paired:
        diff = a - b
        out["ci95"] = list(t_interval(diff))
        if len(diff) >= 2:
            out["p_value"] = _p_or_degenerate(diff.std(ddof=1), difference,
                                              lambda: stats.ttest_rel(a, b).pvalue)
        out.update(power_fields(diff))
        return out
    if len(a) >= 2 and len(b) >= 2:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        if se > 0:
            dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
            half = stats.t.ppf(0.975, dof) * se
            out["ci95"] = [finite_or_none(difference - half), finite_or_none(difference + half)]
        out["p_value"] = _p_or_degenerate(se, difference,
                                          lambda: stats.ttest_ind(a, b, equal_var=False).pvalue)
    out.update(d=welch_effect_size(a, b), d_z=None, d_z_ci95=[None, None], mde_d_z=None, power=None,
               effect_note="unpaired (Welch): d = mean difference / sqrt of the mean of the two variances")
    return out


def _p_or_degenerate(spread: float, difference: float, compute) -> float | None:
    """Zero spread: p = 1 for no difference, None (undefined) otherwise."""
    import warnings

    if spread == 0:
        return 1.0 if difference == 0 else None
    with warnings.catch_warnings():  # scipy warns on near-constant samples; the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return finite_or_none(compute())


def adjust_p_values(p_values: list[float | None], method: str = "holm") -> list[float | None]:
    """Multiple-comparison adjusted p-values over one family (None entries are left out and stay None).

    holm: Holm's step-down (controls the family-wise error rate);
    bh: Benjamini–Hochberg step-up (controls the false discovery rate).
    """
    if method not in CORRECTIONS:
        from robustrec.errors import ConfigError

        raise ConfigError(f"--correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    known = [(i, p) for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    m = len(known)
    if not m:
        return out
    order = sorted(known, key=lambda item: item[1])
    if method == "holm":
        running = 0.0
        for rank, (i, p) in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p))
            out[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i, p = order[rank]
            running = min(running, min(1.0, p * m / (rank + 1)))
            out[i] = running
    return out


#: names of the corrections ``adjust_p_values`` knows, as tables print them
CORRECTIONS = {"holm": "Holm", "bh": "Benjamini–Hochberg"}


def seed_paired_test(a: list[float], b: list[float]) -> dict:
    """Strategy A vs B over training seeds (paired by seed): mean of a − b, 95% t-interval, p.

    Identical values give a difference of 0 and p = 1; fewer than two seeds give no p-value.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = x - y
    out = {"test": "paired t-test over training seeds", "n": int(len(diff)),
           "mean_difference": finite_or_none(diff.mean()) if len(diff) else None,
           "ci95": list(t_interval(diff)), "p_value": None}
    if len(diff) >= 2:
        out["p_value"] = _p_or_degenerate(diff.std(ddof=1), float(diff.mean()), lambda: stats.ttest_rel(x, y).pvalue)
    out.update(power_fields(diff))
    return out


# --- effect sizes and power ------------------------------------------------------------------------


def effect_size(diff) -> tuple[float | None, list[float | None]]:
    """(d_z, 95% interval) of paired differences: d_z = mean / sd (ddof 1).

    All differences equal to 0: d_z = 0 with interval [0, 0] (nothing moved); zero spread with a
    non-zero mean, or fewer than two pairs: None (undefined). The interval inverts the noncentral
    t distribution of t = d_z·√n (exact) up to ``EXACT_DZ_INTERVAL_MAX_N`` pairs, above that
    d_z ± 1.96·√(1/n + d_z²/(2n)).
    """
    diff = np.asarray(diff, dtype=np.float64)
    n = len(diff)
    if n < 2:
        return None, [None, None]
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    if sd == 0:
        return (0.0, [0.0, 0.0]) if mean == 0 else (None, [None, None])
    d_z = mean / sd
    return finite_or_none(d_z), list(dz_interval(d_z, n))


def dz_interval(d_z: float, n: int) -> tuple[float | None, float | None]:
    """95% interval of d_z from ``n`` pairs (see ``effect_size``)."""
    from scipy import stats

    if n > EXACT_DZ_INTERVAL_MAX_N:
        half = stats.norm.ppf(0.975) * math.sqrt(1.0 / n + d_z ** 2 / (2.0 * n))
        return finite_or_none(d_z - half), finite_or_none(d_z + half)
    from scipy.optimize import brentq

    df, t_obs, root_n = n - 1, d_z * math.sqrt(n), math.sqrt(n)

    def ncp_where(prob: float) -> float | None:  # the ncp with P(T ≤ t_obs | ncp) = prob
        f = lambda ncp: stats.nct.cdf(t_obs, df, ncp) - prob  # noqa: E731  (decreasing in ncp)
        width = 10.0 + abs(t_obs)
        low, high = t_obs - width, t_obs + width
        try:
            if f(low) < 0 or f(high) > 0:
                return None
            return brentq(f, low, high, xtol=1e-10)
        except (ValueError, RuntimeError):
            return None

    low, high = ncp_where(0.975), ncp_where(0.025)
    return (None if low is None else finite_or_none(low / root_n),
            None if high is None else finite_or_none(high / root_n))


def paired_power(d_z: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs against a true effect ``d_z``."""
    from scipy import stats

    df, ncp = n - 1, abs(d_z) * math.sqrt(n)
    crit = stats.t.ppf(1 - alpha / 2, df)
    far_tail = float(stats.nct.cdf(-crit, df, ncp))  # scipy gives nan where it underflows
    return float(stats.nct.sf(crit, df, ncp)) + (far_tail if math.isfinite(far_tail) else 0.0)


def minimum_detectable_dz(n: int, power: float = POWER, alpha: float = ALPHA) -> float | None:
    """Smallest d_z the two-sided paired t-test with ``n`` pairs detects with ``power`` (None: n < 2)."""
    from scipy.optimize import brentq

    if n < 2:
        return None
    high = 1.0
    while paired_power(high, n, alpha) < power:
        high *= 2
        if high > 1e6:
            return None
    return float(brentq(lambda d: paired_power(d, n, alpha) - power, 0.0, high, xtol=1e-10))


def power_fields(diff, target: float = TARGET_DZ) -> dict:
    """d_z, its interval, the minimum detectable d_z (80% power, two-sided α = 0.05) and
    ``power``: "underpowered" when that minimum exceeds ``target`` (or cannot be computed), else
    "adequate". A non-significant p of an underpowered test is no evidence of no effect."""
    d_z, ci = effect_size(diff)
    mde = minimum_detectable_dz(len(diff))
    return {"d_z": d_z, "d_z_ci95": ci, "mde_d_z": mde, "target_d_z": target,
            "power": "underpowered" if mde is None or mde > target else "adequate"}


def significance_words(test: dict | None, p_key: str = "p_value") -> str:
    """"significant", "not significant" or "not significant, underpowered" (p < ``ALPHA``)."""
    if not test or test.get(p_key) is None:
        return "n/a"
    if test[p_key] < ALPHA:
        return "significant"
    return "not significant, underpowered" if test.get("power") == "underpowered" else "not significant"


def welch_effect_size(a, b) -> float | None:
    """(mean a − mean b) / √((var a + var b)/2); 0 for identical samples, None when undefined."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return None
    difference = float(a.mean() - b.mean())
    scale = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if scale == 0:
        return 0.0 if difference == 0 else None
    return finite_or_none(difference / scale)
