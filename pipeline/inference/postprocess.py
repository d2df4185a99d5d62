"""Probabilities -> masks: threshold, minimum area, the empty gate, constant images empty. Tuned on OOF, never
on test.

The empty gate: with an empty-mask head (model.aux_head), an image whose predicted probability of being empty
exceeds `empty_threshold` gets an empty mask (1.0: the gate is off). A wrong mask on an empty image scores 0,
so a confident image-level call lets the minimum area come down and small masks survive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.competition.metric import per_image_scores

GATE_OFF = 1.0


@dataclass(frozen=True)
class PostProcess:
    """The choice `infer` tunes on OOF and every later stage applies: threshold, minimum area, the empty gate
    (None: the model has no empty-mask head) and the mosaic rules that raised the OOF score."""

    threshold: float = 0.5
    min_area: int = 0
    empty_threshold: float | None = None
    mosaic_rules: tuple[str, ...] = ()

    @classmethod
    def from_tuned(cls, post: dict) -> PostProcess:
        """From infer's postprocess.json (or `tune`'s result)."""
        applied = tuple(rule for rule, result in post.get("mosaic_rules", {}).items() if result["applied"])
        return cls(post["best_threshold"], post["best_min_area"], post.get("best_empty_threshold"), applied)

    @classmethod
    def load(cls, path: Path) -> PostProcess:
        return cls.from_tuned(json.loads(Path(path).read_text()))

    def masks(self, probs: np.ndarray, is_constant: np.ndarray, empty: np.ndarray | None = None) -> np.ndarray:
        """Threshold, minimum area, the empty gate and constant images (the mosaic rules need neighbours: submit)."""
        return to_masks(probs, self.threshold, self.min_area, is_constant, empty, self.empty_threshold)


UNTUNED = PostProcess()  # threshold 0.5, no minimum area, no gate: nothing tuned on the images being scored


def to_masks(probs: np.ndarray, threshold: float, min_area: int, is_constant: np.ndarray, empty: np.ndarray | None = None,
             empty_threshold: float | None = GATE_OFF) -> np.ndarray:
    masks = probs > threshold
    area = masks.reshape(len(masks), -1).sum(axis=1)
    masks[(area < min_area) | is_constant | gated(empty, empty_threshold, len(masks))] = False
    return masks


def gated(empty: np.ndarray | None, empty_threshold: float | None, count: int) -> np.ndarray:
    """Images the empty gate empties: predicted empty probability above the threshold."""
    if empty is None or empty_threshold is None:
        return np.zeros(count, bool)
    return np.asarray(empty) > empty_threshold


def describe_gate(gate: float | None) -> str:
    """The tuned gate in words ('' when the model has no empty-mask head)."""
    if gate is None:
        return ""
    return "no empty gate" if gate >= GATE_OFF else f"empty gate P(empty) > {gate}"


def score_grid(probs: np.ndarray, truth: np.ndarray, is_constant: np.ndarray, thresholds, min_areas, empty: np.ndarray | None = None,
               gates=(None,)) -> np.ndarray:
    """Per-image competition scores of every (threshold, minimum area, gate) point, shape (thresholds, min areas,
    gates, images), constant images empty. A gate of None (or GATE_OFF) empties nothing; an image emptied by the
    area or the gate scores 1 when its truth is empty, else 0. `tune` takes the best mean; benchmarks/postprocess_cv.py
    cross-validates the choice."""
    truth_empty = ~truth.reshape(len(truth), -1).any(axis=1)
    empty_score = truth_empty.astype(np.float64)  # score of an image whose prediction became empty
    gated_by = [gated(empty, gate, len(probs)) for gate in gates]
    grid = np.empty((len(thresholds), len(min_areas), len(gates), len(probs)))
    for i, threshold in enumerate(thresholds):
        masks = probs > threshold
        masks[is_constant] = False
        area = masks.reshape(len(masks), -1).sum(axis=1)
        scores = per_image_scores(masks, truth)
        for j, min_area in enumerate(min_areas):
            for k, emptied_by_gate in enumerate(gated_by):
                grid[i, j, k] = np.where((area < min_area) | emptied_by_gate, empty_score, scores)
    return grid


def tune(probs: np.ndarray, truth: np.ndarray, is_constant: np.ndarray, thresholds, min_areas, empty: np.ndarray | None = None,
         empty_thresholds=(GATE_OFF,)) -> dict:
    """Grid search of (threshold, min_area, empty gate) maximising the competition metric on OOF predictions.
    Without empty-mask probabilities the gate is not searched (best_empty_threshold None). The gate is chosen
    among `empty_thresholds` only (GATE_OFF = 1.0 among them: off); off is tried first, so a gate must beat it;
    on a tie the lowest threshold, then the lowest minimum area wins."""
    gates = [None] if empty is None else sorted(set(empty_thresholds), key=lambda gate: (gate != GATE_OFF, gate))
    # column 0 without a gate draws the threshold curve; the search runs over the listed gates
    means = score_grid(probs, truth, is_constant, thresholds, min_areas, empty, [None, *gates]).mean(axis=3)
    best = {"score": -1.0}
    for i, threshold in enumerate(thresholds):
        for j, min_area in enumerate(min_areas):
            for k, gate in enumerate(gates, start=1):
                if means[i, j, k] > best["score"] + 1e-12:
                    best = {"score": float(means[i, j, k]), "threshold": float(threshold), "min_area": int(min_area), "gate": gate}
    curve = [{"threshold": float(threshold), "score_min_area_0": float(means[i, 0, 0]), "score_best_min_area": float(means[i, :, 0].max())}
             for i, threshold in enumerate(thresholds)]
    return {"best_threshold": best["threshold"], "best_min_area": best["min_area"], "best_empty_threshold": best["gate"],
            "oof_score": best["score"], "curve": curve}
