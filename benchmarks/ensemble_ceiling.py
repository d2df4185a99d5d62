"""Is a preset's gap to a target variance (averaging models would close it) or bias (it would not)?

Takes the runs of one `real_dev.py` study on one carve (each run folder holds the test probabilities `infer`
wrote), scores every run alone and the mean probabilities of every subset of them against the carve's held-out
masks, all with one fixed post-processing (threshold 0.5, no minimum area, no gate) so only the averaging
differs, and breaks the first run's score down by salt coverage:

    .venv/bin/python benchmarks/ensemble_ceiling.py --carve /tmp/plastic-salt-real/carve-1000-500-seed0 \\
        --runs /tmp/plastic-salt-real/runs/cpu-levers/{base,bs8-2000,crop96-1600,ema99}-seed0 \\
        --out docs/real-dev/ensemble-ceiling.json

The JSON holds no image id (the dev set's ids stay out of the repository).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
from common import ROOT  # noqa: F401 (puts the repository on sys.path)

from pipeline.competition.coverage import coverage, coverage_class, score_table
from pipeline.competition.metric import per_image_scores
from pipeline.competition.rle import decode_many
from pipeline.data.prep import load_test_cache
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_json


def carve_truth(carve: Path) -> tuple[list[str], np.ndarray]:
    """A carve's held-out test ids (in test_truth.csv's order) and their true masks (N,101,101)."""
    truth_table = read_table(carve / "test_truth.csv", ["id", "rle_mask"])
    ids = truth_table["id"].astype(str).tolist()
    return ids, decode_many(truth_table["rle_mask"].tolist(), ids)


def carve_constant(carve: Path, ids: list[str]) -> np.ndarray:
    """Which of a carve's test images (in the order of `ids`) are one constant colour, from prep's cache of the
    carve: the images every post-processing empties."""
    test = load_test_cache(carve)
    return pd.Series(test.is_constant, index=test.ids).loc[ids].to_numpy()


def run_probs(run: Path, ids: list[str], name: str = "test_probs.npy") -> np.ndarray:
    """A run's test probabilities (or another per-image array infer wrote: test_empty.npy) in the order of `ids`
    (the carve's test ids)."""
    if not (run / name).exists():
        raise PipelineError(f"{run} has no {name}; run `python -m pipeline infer --run {run}` first")
    run_ids = read_table(run / "test_ids.csv", ["id"])["id"].astype(str).tolist()
    if sorted(run_ids) != sorted(ids):
        raise PipelineError(f"{run} predicted other test images than the carve holds; give runs made on this carve")
    order = pd.Series(range(len(run_ids)), index=run_ids).loc[ids].to_numpy()
    return np.load(run / name).astype(np.float32)[order]


def ceiling(truth: np.ndarray, probs: dict[str, np.ndarray]) -> dict:
    """Scores (threshold 0.5, nothing else) of each run alone, of the mean probabilities of every subset of
    two or more runs, and of the first run by coverage class."""
    names = list(probs)

    def score(p: np.ndarray) -> np.ndarray:
        return per_image_scores(p > 0.5, truth)

    alone = {name: float(score(p).mean()) for name, p in probs.items()}
    averaged = {}
    for size in range(2, len(names) + 1):
        subsets = {" + ".join(c): float(score(np.mean([probs[n] for n in c], axis=0)).mean()) for c in itertools.combinations(names, size)}
        averaged[str(size)] = {"mean_over_subsets": statistics.mean(subsets.values()), "subsets": subsets}
    return {
        "post_processing": "threshold 0.5, no minimum area, no empty gate",
        "alone": alone,
        "alone_mean": statistics.mean(alone.values()),
        "averaged": averaged,
        "by_coverage_class": {"run": names[0], "rows": score_table(score(probs[names[0]]), coverage_class(coverage(truth)))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carve", type=Path, required=True, help="the carve the runs were trained on (holds test_truth.csv)")
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders of a real_dev.py study on that carve")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ids, truth = carve_truth(args.carve)
    probs = {run.name: run_probs(run, ids) for run in args.runs}
    result = {"carve": args.carve.name, **ceiling(truth, probs)}
    write_json(args.out, result)
    print(f"alone: mean {result['alone_mean']:.4f} ({', '.join(f'{n} {s:.4f}' for n, s in result['alone'].items())})")
    for size, entry in result["averaged"].items():
        print(f"mean of {size} runs' probabilities: {entry['mean_over_subsets']:.4f} (mean over {len(entry['subsets'])} subsets)")


if __name__ == "__main__":
    main()
