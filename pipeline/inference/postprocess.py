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


def tune(probs: np.ndarray, truth: np.ndarray, is_constant: np.ndarray, thresholds, min_areas, empty: np.ndarray | None = None,
         empty_thresholds=(GATE_OFF,)) -> dict:
    """Grid search of (threshold, min_area, empty gate) maximising the competition metric on OOF predictions.
    Without empty-mask probabilities the gate is not searched (best_empty_threshold None). The gate is chosen
    among `empty_thresholds` only (GATE_OFF = 1.0 among them: off); off is tried first, so a gate must beat it."""
    truth_empty = ~truth.reshape(len(truth), -1).any(axis=1)
    empty_score = truth_empty.astype(np.float64)  # score of an image whose prediction became empty
    gates = [None] if empty is None else sorted(set(empty_thresholds), key=lambda gate: (gate != GATE_OFF, gate))
    gated_by = {gate: gated(empty, gate, len(probs)) for gate in gates}
    best = {"score": -1.0}
    curve = []
    for threshold in thresholds:
        masks = probs > threshold
        masks[is_constant] = False
        area = masks.reshape(len(masks), -1).sum(axis=1)
        scores = per_image_scores(masks, truth)
        by_area = []
        for min_area in min_areas:
            by_area.append(float(np.where(area < min_area, empty_score, scores).mean()))  # the curve: no gate
            for gate in gates:
                emptied = (area < min_area) | gated_by[gate]
                score = float(np.where(emptied, empty_score, scores).mean())
                if score > best["score"] + 1e-12:
                    best = {"score": score, "threshold": float(threshold), "min_area": int(min_area), "gate": gate}
        curve.append({"threshold": float(threshold), "score_min_area_0": by_area[0], "score_best_min_area": max(by_area)})
    return {"best_threshold": best["threshold"], "best_min_area": best["min_area"], "best_empty_threshold": best["gate"],
            "oof_score": best["score"], "curve": curve}
