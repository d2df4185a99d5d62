"""Where a run's local test score is lost: per salt-coverage class, the images, their mean score, the share of
the score (out of 1) the class loses, and how often the run's tuned post-processing predicted those images empty;
plus what a perfect empty/non-empty call alone would add (an upper bound for any gate or classifier work).

    .venv/bin/python benchmarks/score_losses.py --carve /tmp/real/seed0 --run KEPT/cpu-demo --out docs/real-dev/score-losses-seed0.json

The run folder is one `infer` wrote on that carve (benchmarks/fresh_clone.sh KEEP=DIR keeps it). Masks are made
exactly as `submit` makes them (postprocess.json: threshold, minimum area, empty gate; no mosaic rules, which
need the competition's neighbours). The JSON holds no image id (the dev set's ids stay out of the repository).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT  # noqa: F401 (puts the repository on sys.path)
from ensemble_ceiling import carve_constant, carve_truth, run_probs

from pipeline.competition.coverage import coverage, coverage_class
from pipeline.competition.metric import per_image_scores
from pipeline.errors import PipelineError
from pipeline.fileio import write_json
from pipeline.inference.postprocess import PostProcess


def losses(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Per coverage class: images, mean score, score lost (share of the whole), share predicted empty; and the
    score with every empty/non-empty call made right (truly empty images empty, the rest as predicted)."""
    scores = per_image_scores(predicted, truth)
    classes = coverage_class(coverage(truth))
    predicted_empty = ~predicted.reshape(len(predicted), -1).any(axis=1)
    truly_empty = classes == 0
    rows = [
        {
            "coverage_class": int(cls),
            "images": int((classes == cls).sum()),
            "score": float(scores[classes == cls].mean()),
            "lost": float((1 - scores[classes == cls]).sum() / len(scores)),
            "predicted_empty": float(predicted_empty[classes == cls].mean()),
        }
        for cls in np.unique(classes)
    ]
    right_calls = np.where(truly_empty, 1.0, np.where(predicted_empty, 0.0, scores))
    return {
        "score": float(scores.mean()),
        "truly_empty": float(truly_empty.mean()),
        "predicted_empty": float(predicted_empty.mean()),
        "non_empty_predicted_empty": float(predicted_empty[~truly_empty].mean()),
        "empty_predicted_salt": float((~predicted_empty[truly_empty]).mean()),
        "score_with_every_empty_call_right": float(right_calls.mean()),
        "by_coverage_class": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carve", type=Path, required=True, help="the carve the run was trained on (holds test_truth.csv)")
    parser.add_argument("--run", type=Path, required=True, help="the run folder infer wrote on that carve")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ids, truth = carve_truth(args.carve)
    if not (args.run / "postprocess.json").exists():
        raise PipelineError(f"{args.run} has no postprocess.json; run `python -m pipeline infer --run {args.run}` first")
    post = PostProcess.load(args.run / "postprocess.json")
    empty = run_probs(args.run, ids, "test_empty.npy") if post.empty_threshold is not None else None
    predicted = post.masks(run_probs(args.run, ids), carve_constant(args.carve, ids), empty)
    result = {"carve": args.carve.name, "run": args.run.name, "post_processing": {"threshold": post.threshold, "min_area": post.min_area, "empty_threshold": post.empty_threshold},
              "mosaic_rules_left_out": list(post.mosaic_rules), **losses(truth, predicted)}
    write_json(args.out, result)
    print(f"score {result['score']:.4f}; predicted empty {result['predicted_empty']:.3f} (truth {result['truly_empty']:.3f}); "
          f"with every empty call right {result['score_with_every_empty_call_right']:.4f}")
    for row in result["by_coverage_class"]:
        print(f"  class {row['coverage_class']:2d}: {row['images']:3d} images, score {row['score']:.3f}, loses {row['lost']:.4f}, "
              f"predicted empty {row['predicted_empty']:.2f}")


if __name__ == "__main__":
    main()
