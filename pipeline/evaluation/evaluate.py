"""`evaluate`: the competition score of a submission against a truth file, or of a run's OOF predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.competition.coverage import coverage, coverage_class, score_table
from pipeline.competition.metric import per_image_scores
from pipeline.competition.rle import decode
from pipeline.data.layout import IMAGE_SIZE, id_mismatch
from pipeline.data.prep import load_train_cache
from pipeline.errors import PipelineError
from pipeline.fileio import read_table
from pipeline.inference.oof import load_oof
from pipeline.rundir import RunDir
from pipeline.inference.postprocess import UNTUNED, PostProcess


def read_masks(path: Path) -> dict[str, np.ndarray]:
    table = read_table(path, ("id", "rle_mask"))
    masks = {}
    for image_id, rle in zip(table["id"], table["rle_mask"]):
        try:
            masks[image_id] = decode(rle, (IMAGE_SIZE, IMAGE_SIZE), image_id)
        except ValueError as error:
            raise PipelineError(f"{path}: {error}; fix that row") from None
    return masks


def check_submission_header(path: Path) -> None:
    """Kaggle takes exactly the columns id,rle_mask."""
    header = list(read_table(path, unique=False).columns)
    if header != ["id", "rle_mask"]:
        raise PipelineError(f"{path}: the header is {','.join(header or [])!r}; a submission has exactly the columns id,rle_mask")


def evaluate_submission(submission: Path, truth: Path) -> dict:
    check_submission_header(Path(submission))
    predicted, expected = read_masks(submission), read_masks(truth)
    mismatch = id_mismatch(expected, predicted, "{n} truth ids are not in the submission", "{n} submission ids are not in the truth")
    if mismatch:
        raise PipelineError(f"{submission} vs {truth}: {mismatch}; both files must list the same ids")
    ids = sorted(expected)
    truth_stack = np.stack([expected[i] for i in ids])
    scores = per_image_scores(np.stack([predicted[i] for i in ids]), truth_stack)
    return {"scores": scores, "coverage_class": coverage_class(coverage(truth_stack)), "images": len(ids), "ids": ids}


def evaluate_run(run_dir: Path, tuned: bool = True) -> dict:
    """OOF score with the run's tuned post-processing (or threshold 0.5 and no minimum area: before `infer`,
    or with tuned=False, for comparisons that must not be tuned on the data they score)."""
    run = RunDir(run_dir)
    cfg = run.load_config()
    oof = load_oof(run, load_train_cache(Path(cfg.data.data_dir)))
    post = PostProcess.load(run.postprocess) if tuned and run.postprocess.exists() else UNTUNED
    masks = post.masks(oof.probs, oof.is_constant, oof.empty)
    return {
        "scores": per_image_scores(masks, oof.truth),
        "coverage_class": oof.coverage_class,
        "images": len(oof.ids),
        "postprocess": post,
        "oof": oof,
        "masks": masks,
    }


def format_table(result: dict, label: str = "score") -> str:
    """By coverage class; the last line is '<label> 0.xxxx' (run.sh reads it)."""
    lines = [f"{'coverage_class':>14} {'images':>7} {'score':>7}"]
    for row in score_table(result["scores"], result["coverage_class"]):
        lines.append(f"{row['coverage_class']!s:>14} {row['images']:>7} {row['score']:>7.4f}")
    lines.append(f"{label} {float(result['scores'].mean()):.4f}")
    return "\n".join(lines)
