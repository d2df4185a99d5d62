"""`summary`: one JSON per run with every number the README quotes about it (scores, per-coverage tables,
head statistics, speed, stage times), so a figure can always be traced to a file and the command that wrote it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.competition.coverage import score_table
from pipeline.evaluation.evaluate import evaluate_run, evaluate_submission, read_masks
from pipeline.evaluation.report import HEAD_STATS, read_metrics, validated_epochs
from pipeline.errors import PipelineError
from pipeline.fileio import write_json
from pipeline.rundir import RunDir


def read_timings(path: Path) -> dict[str, float]:
    """Lines 'stage seconds' (run.sh writes them) -> {stage: seconds}."""
    timings = {}
    for line in Path(path).read_text().splitlines():
        stage, _, seconds = line.rpartition(" ")
        if stage:
            timings[stage] = float(seconds)
    return timings


def _table(result: dict) -> list[dict]:
    return [{**row, "score": round(row["score"], 4)} for row in score_table(result["scores"], result["coverage_class"])]


def run_summary(run_dir: Path, submission: Path | None = None, truth: Path | None = None, timings: Path | dict | None = None) -> Path:
    """`timings`: {stage: seconds}, or a file of 'stage seconds' lines."""
    run = RunDir(run_dir)
    run_dir = run.root
    curves = read_metrics(run)
    if not curves:
        raise PipelineError(f"{run_dir} has no fold_*/metrics.csv: train the run first")
    tuned, untuned = evaluate_run(run_dir, tuned=True), evaluate_run(run_dir, tuned=False)
    post = tuned["postprocess"]
    folds = {}
    for fold, rows in curves.items():
        validated = validated_epochs(rows)
        entry = {
            "epochs": len(rows),
            "best_val_metric": round(max(r["val_metric"] for r in validated), 4),
            "last_val_metric": round(validated[-1]["val_metric"], 4),
            "train_img_per_s": round(float(np.mean([r["train_img_per_s"] for r in rows])), 1),
        }
        for stat in HEAD_STATS:
            if stat in rows[0]:
                entry[stat] = {"first_epoch": round(rows[0][stat], 4), "last_epoch": round(rows[-1][stat], 4)}
        folds[fold] = entry
    summary = {
        "run": run_dir.name,
        "folds": folds,
        "oof": {"score_threshold_0.5": round(float(untuned["scores"].mean()), 4), "score_tuned": round(float(tuned["scores"].mean()), 4),
                "postprocess": {"best_threshold": post.threshold, "best_min_area": post.min_area, "best_empty_threshold": post.empty_threshold},
                "by_coverage": _table(tuned)},
    }
    if submission is not None and truth is not None and Path(truth).exists():
        test = evaluate_submission(Path(submission), Path(truth))
        empty = np.array([not mask.any() for mask in read_masks(Path(truth)).values()])
        summary["test"] = {"submission": str(submission), "score": round(float(test["scores"].mean()), 4),
                           "all_empty_score": round(float(empty.mean()), 4), "images": test["images"], "by_coverage": _table(test)}
    if isinstance(timings, dict):
        summary["stage_seconds"] = {stage: float(seconds) for stage, seconds in timings.items()}
    elif timings is not None and Path(timings).exists():
        summary["stage_seconds"] = read_timings(Path(timings))
    path = run.summary
    write_json(path, summary)
    return path
