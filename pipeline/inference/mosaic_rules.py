"""Post-processing with the mosaic: a tile's mask from the tile above it (DATA/mosaic.csv, made by `mosaic`).

Rules (after the top TGS solutions' observations on the real data):
  below_full         a tile directly below a fully salt tile is fully salt (salt bodies extend downwards)
  continue_vertical  a tile directly below a tile whose mask is vertical (every row the same, neither empty nor
                     full: a salt boundary that runs straight down) continues those columns all the way down
The tile above is known by its true mask when it is a training tile and by its post-processed prediction when it
is a test tile. Constant tiles stay empty. `infer` measures every rule on the OOF images (train tiles scored with
their own truth, never used) and marks a rule applied only when it raises the OOF score; `submit` applies those.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.competition.metric import per_image_scores
from pipeline.data.mosaic import neighbours_below, read_mosaic

RULES = ("below_full", "continue_vertical")


def is_vertical(mask: np.ndarray) -> bool:
    return bool(mask.any() and not mask.all() and (mask == mask[-1:]).all())


def rule_mask(rule: str, above: np.ndarray) -> np.ndarray | None:
    """The mask a rule gives the tile below `above`, or None when the rule does not fire."""
    if rule == "below_full":
        return np.ones_like(above, dtype=bool) if above.all() else None
    if rule == "continue_vertical":
        return np.repeat(above[-1:], above.shape[0], axis=0) if is_vertical(above) else None
    raise ValueError(f"unknown mosaic rule {rule!r}; choose from {RULES}")


def above_map(data_dir: Path) -> dict[str, str] | None:
    """id -> id of the tile directly above it, or None when the data folder has no mosaic.csv."""
    if not (Path(data_dir) / "mosaic.csv").exists():
        return None
    return {below: top for top, below in neighbours_below(read_mosaic(data_dir)).items()}


def known_masks(train_ids, train_masks: np.ndarray, test_ids, test_masks: np.ndarray) -> dict[str, np.ndarray]:
    """What a rule may read of the tile above: training tiles' true masks, test tiles' predicted masks."""
    return dict(zip(list(train_ids), train_masks)) | dict(zip(list(test_ids), test_masks))


def apply_rule(rule: str, ids, masks: np.ndarray, is_constant: np.ndarray, above: dict[str, str], known: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """masks (N,101,101) of tiles `ids` with the rule applied; and how many tiles it changed."""
    out = masks.copy()
    changed = 0
    for index, tile in enumerate(ids):
        top = above.get(tile)
        if top is None or top not in known or is_constant[index]:
            continue
        new = rule_mask(rule, known[top])
        if new is not None and not np.array_equal(new, out[index]):
            out[index] = new
            changed += 1
    return out, changed


def measure_rules(oof_ids, oof_masks: np.ndarray, oof_truth: np.ndarray, oof_constant: np.ndarray, above: dict[str, str],
                  known: dict[str, np.ndarray]) -> dict:
    """Each rule's effect on the OOF score; `applied` only when it helps."""
    base = per_image_scores(oof_masks, oof_truth)
    results = {}
    for rule in RULES:
        masks, changed = apply_rule(rule, oof_ids, oof_masks, oof_constant, above, known)
        scores = per_image_scores(masks, oof_truth)
        gain = float(scores.mean() - base.mean())
        results[rule] = {"oof_images_changed": changed, "oof_gain": gain, "applied": bool(changed and gain > 0)}
    return results
