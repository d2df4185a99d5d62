"""The TGS competition metric: mean over images of the fraction of IoU thresholds 0.50..0.95 passed.

Thresholds are compared in exact integer arithmetic (IoU > k/20 <=> 20*inter > k*union), so an IoU of
exactly 0.5 or 0.75 is never nudged over a threshold by floating point.
"""

from __future__ import annotations

import numpy as np

THRESHOLD_NUMERATORS = np.arange(10, 20)  # t = k / 20 for k = 10..19, i.e. 0.50, 0.55, ..., 0.95


def per_image_scores(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image scores for two (N, H, W) stacks of masks (anything > 0 is salt)."""
    predicted = np.asarray(predicted) > 0
    truth = np.asarray(truth) > 0
    if predicted.shape != truth.shape:
        raise ValueError(f"prediction stack {predicted.shape} and truth stack {truth.shape} differ in shape")
    if predicted.ndim == 2:
        predicted, truth = predicted[None], truth[None]
    n = predicted.shape[0]
    predicted = predicted.reshape(n, -1)
    truth = truth.reshape(n, -1)
    intersection = np.count_nonzero(predicted & truth, axis=1).astype(np.int64)
    union = np.count_nonzero(predicted | truth, axis=1).astype(np.int64)
    passed = 20 * intersection[:, None] > THRESHOLD_NUMERATORS[None, :] * union[:, None]
    scores = passed.mean(axis=1)
    # both empty: union == 0 -> 1; exactly one empty: intersection == 0 < union -> 0 already
    scores[union == 0] = 1.0
    return scores


def competition_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-image score."""
    scores = per_image_scores(predicted, truth)
    return float(scores.mean()) if scores.size else float("nan")
