"""Paired statistics for head comparisons (pure functions): every head of a seed shares the network's start,
the data order and the augmentations, and every head is scored on the same test images, so differences are
taken within a seed and within an image.

- per seed: the difference of the mean test scores, tested with the paired t test and the Wilcoxon signed-rank
  test (few seeds: low power, reported for completeness);
- per image: the difference of each image's score, averaged over seeds; its mean gets a bootstrap confidence
  interval over images (resampling images, the unit that carries most of the variance) and a two-sided
  bootstrap p-value;
- across comparisons: Holm's step-down correction of the per-image p-values.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

COVERAGE_GROUPS = {"empty": (0, 0), "small (coverage <= 30%)": (1, 3), "large (coverage > 30%)": (4, 10)}


def seed_tests(differences: np.ndarray) -> dict:
    """Paired t and Wilcoxon signed-rank p-values of per-seed differences (NaN when undefined)."""
    differences = np.asarray(differences, np.float64)
    out = {"seeds": int(differences.size), "mean": float(differences.mean()) if differences.size else float("nan"),
           "better": int((differences > 0).sum()), "t_p": float("nan"), "wilcoxon_p": float("nan")}
    if differences.size >= 2 and np.ptp(differences) > 0:
        out["t_p"] = float(stats.ttest_1samp(differences, 0.0).pvalue)
    if differences.size >= 1 and np.any(differences != 0):
        out["wilcoxon_p"] = float(stats.wilcoxon(differences, zero_method="wilcox").pvalue)
    return out


def bootstrap_mean(per_image: np.ndarray, resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of per-image differences with a percentile bootstrap CI over images and a two-sided bootstrap
    p-value (twice the share of resampled means on the far side of zero, at most 1)."""
    values = np.asarray(per_image, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    mean = float(values.mean())
    if mean == 0 or not np.any(values):
        p_value = 1.0
    else:
        p_value = min(1.0, 2 * float(((means <= 0) if mean > 0 else (means >= 0)).mean()))
        p_value = max(p_value, 1.0 / resamples)  # never report exactly 0 from a finite bootstrap
    return {"mean": mean, "ci_low": float(low), "ci_high": float(high), "p": p_value, "images": int(len(values))}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (monotone, capped at 1)."""
    p = np.asarray(p_values, np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def coverage_group(coverage_class: np.ndarray) -> np.ndarray:
    """Each image's group name from its coverage class (0 empty, 1-10 tenths of coverage)."""
    names = np.empty(len(coverage_class), object)
    for name, (low, high) in COVERAGE_GROUPS.items():
        names[(coverage_class >= low) & (coverage_class <= high)] = name
    return names
