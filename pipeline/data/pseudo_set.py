"""A pseudo-labelled set (from `pseudo`) as training data: what `train --pseudo DIR` reads from DIR/pseudo.npz.
It lives with the data because training consumes it; `inference/pseudo.py` makes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.fileio import save_npz


@dataclass
class PseudoSet:
    ids: np.ndarray  # (N,) str
    images: np.ndarray  # (N, 101, 101) uint8
    masks: np.ndarray  # (N, 101, 101) bool
    depth: np.ndarray  # (N,) float32
    confidence: np.ndarray  # (N,) float32


def pseudo_file(folder: Path) -> Path:
    return Path(folder) / "pseudo.npz"


def save_pseudo(folder: Path, pseudo_set: PseudoSet) -> None:
    save_npz(pseudo_file(folder), ids=pseudo_set.ids, images=pseudo_set.images, masks=pseudo_set.masks, depth=pseudo_set.depth,
             confidence=pseudo_set.confidence)


def load_pseudo(folder: Path) -> PseudoSet:
    path = pseudo_file(folder)
    if not path.exists():
        raise PipelineError(f"{path} is missing: make it with `python -m pipeline pseudo --run RUN --out {folder}`")
    with np.load(path, allow_pickle=False) as arrays:
        return PseudoSet(arrays["ids"].astype(str), arrays["images"], arrays["masks"].astype(bool), arrays["depth"].astype(np.float32),
                         arrays["confidence"])
