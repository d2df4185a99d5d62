"""Salt coverage and the 11 coverage classes used to stratify folds and to break scores down."""

from __future__ import annotations

import numpy as np


def coverage(masks: np.ndarray) -> np.ndarray:
    """Fraction of salt pixels per mask of an (N, H, W) stack."""
    masks = np.asarray(masks) > 0
    return masks.reshape(masks.shape[0], -1).mean(axis=1)


def coverage_class(coverages: np.ndarray) -> np.ndarray:
    """0 for empty masks, else ceil(10 * coverage) in 1..10."""
    coverages = np.asarray(coverages, dtype=np.float64)
    classes = np.ceil(coverages * 10).astype(np.int64)
    return np.clip(classes, 0, 10)


def score_table(scores: np.ndarray, classes: np.ndarray) -> list[dict]:
    """Rows of (coverage_class, images, mean score) for every class present, plus 'all'."""
    rows = []
    for cls in np.unique(classes):
        selected = scores[classes == cls]
        rows.append({"coverage_class": int(cls), "images": int(selected.size), "score": float(selected.mean())})
    rows.append({"coverage_class": "all", "images": int(scores.size), "score": float(scores.mean()) if scores.size else float("nan")})
    return rows
