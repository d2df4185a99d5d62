"""Probabilities -> masks: threshold, minimum area, constant images empty. Tuned on OOF, never on test."""

from __future__ import annotations

import numpy as np

from pipeline.competition.metric import per_image_scores


def to_masks(probs: np.ndarray, threshold: float, min_area: int, is_constant: np.ndarray) -> np.ndarray:
    masks = probs > threshold
    area = masks.reshape(len(masks), -1).sum(axis=1)
    masks[(area < min_area) | is_constant] = False
    return masks


def tune(probs: np.ndarray, truth: np.ndarray, is_constant: np.ndarray, thresholds, min_areas) -> dict:
    """Grid search of (threshold, min_area) maximising the competition metric on OOF predictions."""
    truth_empty = ~truth.reshape(len(truth), -1).any(axis=1)
    empty_score = truth_empty.astype(np.float64)  # score of an image whose prediction became empty
    best = {"score": -1.0}
    curve = []
    for threshold in thresholds:
        masks = probs > threshold
        masks[is_constant] = False
        area = masks.reshape(len(masks), -1).sum(axis=1)
        scores = per_image_scores(masks, truth)
        by_area = []
        for min_area in min_areas:
            score = float(np.where(area < min_area, empty_score, scores).mean())
            by_area.append(score)
            if score > best["score"] + 1e-12:
                best = {"score": score, "threshold": float(threshold), "min_area": int(min_area)}
        curve.append({"threshold": float(threshold), "score_min_area_0": by_area[0], "score_best_min_area": max(by_area)})
    return {"best_threshold": best["threshold"], "best_min_area": best["min_area"], "oof_score": best["score"], "curve": curve}
