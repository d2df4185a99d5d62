"""`pseudo`: a finished run's confident test predictions as an extra labelled set for `train --pseudo DIR`.

Confidence of an image = the share of its pixels that are decided: |p - t| > margin, with t the OOF-tuned
threshold. The metric is lost at a mask's undecided pixels (an IoU under 0.5 scores 0); a mask with none left
has little to lose. Constant images are left out (empty by rule, they teach nothing), and with an empty-mask head
the image must agree with it (P(empty) > 0.5 exactly when the mask is empty).

Probabilities are not calibrated alike across models (a short CPU run's may all lie in 0.1..0.8), so the margin
and the share are tuned on the run's OOF images, whose truth is known, as the threshold is: of a grid, the rule
that keeps the most OOF images whose mean score reaches `min_oof_score` (0.9), with at least 5 of them. No rule
reaching it keeps nothing (a model not sure enough to teach itself). `--margin`/`--min-confidence` fix the rule.
`summary.json` records the chosen rule, what it keeps of the test images and how the kept OOF images score.

Output folder: pseudo.csv (id, rle_mask, confidence), pseudo.npz (the arrays train reads), summary.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.metric import per_image_scores
from pipeline.competition.rle import encode_many
from pipeline.data.prep import load_test_cache, load_train_cache
from pipeline.data.pseudo_set import PseudoSet, pseudo_file, save_pseudo
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_json, write_table
from pipeline.inference.oof import load_oof
from pipeline.inference.postprocess import PostProcess
from pipeline.rundir import RunDir


MARGINS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
SHARES = (0.9, 0.95, 0.98, 0.99)
MIN_KEPT = 5


def confidence(probs: np.ndarray, margin: float, threshold: float = 0.5) -> np.ndarray:
    """(N,) share of each image's pixels with |p - threshold| > margin."""
    return (np.abs(probs.reshape(len(probs), -1).astype(np.float32) - threshold) > margin).mean(axis=1)


def choose_rule(probs, masks, empty, is_constant, scores, threshold: float, min_oof_score: float,
                margins=MARGINS, shares=SHARES) -> dict | None:
    """The (margin, share) that keeps the most OOF images with mean score >= min_oof_score (at least MIN_KEPT;
    ties: the stricter rule). None when no rule qualifies."""
    best = None
    for margin in margins:
        decided = confidence(probs, margin, threshold)
        for share in shares:
            keep = selected(masks, decided, empty, is_constant, share)
            if keep.sum() < MIN_KEPT or scores[keep].mean() < min_oof_score:
                continue
            if best is None or keep.sum() > best["kept"]:
                best = {"margin": margin, "min_confidence": share, "kept": int(keep.sum()), "score": float(scores[keep].mean())}
    return best


def selected(masks: np.ndarray, scores: np.ndarray, empty: np.ndarray | None, is_constant: np.ndarray, min_confidence: float) -> np.ndarray:
    """Images that pass: confident, not constant, and (with an empty-mask head) agreeing with it."""
    keep = (scores >= min_confidence) & ~is_constant
    if empty is not None:
        predicted_empty = ~masks.reshape(len(masks), -1).any(axis=1)
        keep &= predicted_empty == (np.asarray(empty) > 0.5)
    return keep


def make_pseudo(run_dir: Path, out_dir: Path, margin: float | None = None, min_confidence: float | None = None, force: bool = False,
                min_oof_score: float = 0.9) -> dict:
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if (margin is None) != (min_confidence is None):
        raise PipelineError("pseudo: give both --margin and --min-confidence (a fixed rule), or neither (tuned on OOF)")
    if margin is not None and not 0.0 <= margin < 1.0:
        raise PipelineError(f"pseudo --margin {margin} is outside [0, 1): it is the distance from the threshold a decided pixel keeps")
    if min_confidence is not None and not 0.0 < min_confidence <= 1.0:
        raise PipelineError(f"pseudo --min-confidence {min_confidence} is outside (0, 1]: it is the share of decided pixels an image needs")
    if not 0.0 < min_oof_score <= 1.0:
        raise PipelineError(f"pseudo --min-oof-score {min_oof_score} is outside (0, 1]")
    run = RunDir(run_dir)
    run.require_inferred()
    if pseudo_file(out_dir).exists() and not force:
        raise PipelineError(f"{pseudo_file(out_dir)} exists; pass --force to replace it or choose another --out")
    cfg = run.load_config()
    data_dir = Path(cfg.data.data_dir)
    post = PostProcess.load(run.postprocess)
    test = load_test_cache(data_dir)
    prob_ids = read_table(run.test_ids, ("id",))["id"].tolist()
    if prob_ids != test.ids.tolist():
        raise PipelineError(f"{run.test_ids} does not match the test cache of {data_dir}; rerun `infer --force`")
    probs = np.load(run.test_probs).astype(np.float32)
    empty = np.load(run.test_empty) if run.test_empty.exists() else None
    threshold = post.threshold
    masks = post.masks(probs, test.is_constant, empty)
    oof = load_oof(run, load_train_cache(data_dir))  # the rule is tuned and checked on images whose truth is known
    oof_masks = post.masks(oof.probs, oof.is_constant, oof.empty)
    oof_scores = per_image_scores(oof_masks, oof.truth)
    given, rule = margin is not None, None
    if not given:
        rule = choose_rule(oof.probs, oof_masks, oof.empty, oof.is_constant, oof_scores, threshold, min_oof_score)
        margin, min_confidence = (rule["margin"], rule["min_confidence"]) if rule else (0.0, 2.0)  # 2.0: keeps nothing
    scores = confidence(probs, margin, threshold)
    keep = selected(masks, scores, empty, test.is_constant, min_confidence)
    oof_keep = selected(oof_masks, confidence(oof.probs, margin, threshold), oof.empty, oof.is_constant, min_confidence)

    pseudo_set = PseudoSet(test.ids[keep], test.images[keep], masks[keep], test.depth[keep], scores[keep].astype(np.float32))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir / "pseudo.csv", pd.DataFrame({"id": pseudo_set.ids, "rle_mask": encode_many(pseudo_set.masks),
                                                      "confidence": np.round(pseudo_set.confidence, 4)}))
    save_pseudo(out_dir, pseudo_set)
    summary = {
        "run": str(run_dir), "data_dir": str(data_dir), "threshold": threshold,
        "rule": "given" if given else ("tuned on OOF" if rule else "none reaches min_oof_score"),
        "margin": margin if min_confidence <= 1 else None, "min_confidence": min_confidence if min_confidence <= 1 else None,
        "min_oof_score": min_oof_score,
        "test_images": int(len(keep)), "selected": int(keep.sum()), "selected_share": float(keep.mean()),
        "selected_empty_share": float((~pseudo_set.masks.reshape(len(pseudo_set.masks), -1).any(axis=1)).mean()) if keep.any() else None,
        "oof_images": int(len(oof_keep)), "oof_selected": int(oof_keep.sum()),
        "oof_score_selected": float(oof_scores[oof_keep].mean()) if oof_keep.any() else None,
        "oof_score_rest": float(oof_scores[~oof_keep].mean()) if (~oof_keep).any() else None,
        "oof_score_all": float(oof_scores.mean()),
    }
    write_json(out_dir / "summary.json", summary)
    return summary
