"""Which way of choosing post-processing on a run's OOF images holds up on OOF images it did not see? For each
run, repeated 5-fold cross-validation inside its OOF set: each procedure picks (threshold, minimum area, empty
gate) on 4/5 of the images and is scored on the other 1/5. The cross-validation reads no test image, so it can
choose a preset's post-processing without touching the carves' held-out test sets. With --test, each run's
held-out test score under infer's search (on all its OOF images) and under the fixed choice is added for the
record, after the fact (the carve's test_truth.csv; masks as `submit` makes them, without mosaic rules).

    .venv/bin/python benchmarks/postprocess_cv.py --run KEPT/cpu-demo /tmp/real/seed0 [--run ...] [--test] \\
        --out benchmarks/results/postprocess-cv.json

A run folder is one `infer` wrote (benchmarks/fresh_clone.sh KEEP=DIR keeps it); the carve is the data it was
trained on (its prep cache holds the truth). The grids are InferConfig's defaults (what `infer` searched until
cpu-demo fixed its post-processing); the JSON holds no image id.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT  # noqa: F401 (puts the repository on sys.path)
from ensemble_ceiling import carve_constant, carve_truth, run_probs
from scipy.ndimage import uniform_filter

from pipeline.competition.metric import per_image_scores
from pipeline.config import InferConfig
from pipeline.data.prep import load_train_cache
from pipeline.fileio import write_json
from pipeline.inference.oof import load_oof
from pipeline.inference.postprocess import PostProcess, score_grid, tune

GRID = InferConfig()
THRESHOLDS = np.array(GRID.thresholds)
MIN_AREAS = np.array(GRID.min_areas)
GATES = np.array(sorted(set(GRID.empty_thresholds)))  # ascending; 1.0 (off) last
OFF = len(GATES) - 1
DEFAULT = (int(np.flatnonzero(np.isclose(THRESHOLDS, 0.5))[0]), 0, int(np.flatnonzero(np.isclose(GATES, 0.5))[0]))

PROCEDURES = {
    "search": "infer's search: the best of every (threshold, minimum area, gate), no gate preferred on ties",
    "search, no minimum area": "the same with the minimum area held at 0",
    "search, smoothed": "the best of the score surface averaged over each point's grid neighbours (3x3x3)",
    "search, smoothed, no minimum area": "both",
    "search, gate 0.5": "threshold and minimum area searched, the gate held at P(empty) > 0.5",
    "search, threshold 0.5": "minimum area and gate searched, the threshold held at 0.5",
    "threshold only, gate 0.5": "the threshold searched; minimum area 0, gate 0.5",
    "threshold only, gate 0.5 or off": "the threshold searched; minimum area 0, gate 0.5 or none",
    "one standard error": "of the points within one standard error (paired, per image) of the best, the nearest to fixed",
    "fixed, or no gate": "threshold 0.5, minimum area 0; gate 0.5 or none, whichever scores more",
    "fixed": "threshold 0.5, minimum area 0, gate 0.5: nothing chosen on OOF",
}


def score_tensor(oof) -> np.ndarray:
    """Per-image scores (thresholds, min areas, gates, images) of every grid point: the grid `tune` searches."""
    return score_grid(oof.probs, oof.truth, oof.is_constant, THRESHOLDS, MIN_AREAS, oof.empty, GATES)


def best(surface: np.ndarray) -> tuple[int, int, int]:
    """argmax, ties to no gate first (as `tune` tries it first), then the lowest threshold and area."""
    order = [OFF] + list(range(OFF))
    flat = int(np.argmax(surface[:, :, order]))
    i, j, k = np.unravel_index(flat, (surface.shape[0], surface.shape[1], len(order)))
    return int(i), int(j), order[k]


def masked(surface: np.ndarray, thresholds=None, min_areas=None, gates=None) -> np.ndarray:
    """The surface with every point outside the allowed indices set below any score."""
    allowed = np.zeros(surface.shape, bool)
    allowed[np.ix_(*(range(n) if keep is None else keep for n, keep in zip(surface.shape, (thresholds, min_areas, gates))))] = True
    return np.where(allowed, surface, -1.0)


def smoothed(surface: np.ndarray) -> np.ndarray:
    valid = surface > -1
    total = uniform_filter(np.where(valid, surface, 0.0), size=3, mode="nearest")
    count = uniform_filter(valid.astype(float), size=3, mode="nearest")
    return np.where(valid, total / np.maximum(count, 1e-9), -1.0)


def distance_from_fixed(point: tuple[int, int, int]) -> float:
    i, j, k = point
    return abs(np.log(THRESHOLDS[i] / (1 - THRESHOLDS[i]))) + abs(GATES[k] - 0.5) + j / len(MIN_AREAS)


def one_standard_error(per_image: np.ndarray) -> tuple[int, int, int]:
    flat = per_image.reshape(-1, per_image.shape[-1])
    means = flat.mean(axis=1)
    top = int(np.argmax(means))
    se = (flat[top][None, :] - flat).std(axis=1, ddof=1) / np.sqrt(flat.shape[1])
    near = [np.unravel_index(i, per_image.shape[:3]) for i in np.flatnonzero(means >= means[top] - se)]
    return min((tuple(int(x) for x in p) for p in near), key=distance_from_fixed)


def choose(name: str, per_image: np.ndarray) -> tuple[int, int, int]:
    surface = per_image.mean(axis=-1)
    half = DEFAULT[0]
    gate_half = DEFAULT[2]
    choices = {
        "search": lambda: best(surface),
        "search, no minimum area": lambda: best(masked(surface, min_areas=[0])),
        "search, smoothed": lambda: best(smoothed(surface)),
        "search, smoothed, no minimum area": lambda: best(smoothed(masked(surface, min_areas=[0]))),
        "search, gate 0.5": lambda: best(masked(surface, gates=[gate_half])),
        "search, threshold 0.5": lambda: best(masked(surface, thresholds=[half])),
        "threshold only, gate 0.5": lambda: best(masked(surface, min_areas=[0], gates=[gate_half])),
        "threshold only, gate 0.5 or off": lambda: best(masked(surface, min_areas=[0], gates=[gate_half, OFF])),
        "one standard error": lambda: one_standard_error(per_image),
        "fixed, or no gate": lambda: best(masked(surface, thresholds=[half], min_areas=[0], gates=[gate_half, OFF])),
        "fixed": lambda: DEFAULT,
    }
    return choices[name]()


def cross_validate(per_image: np.ndarray, repeats: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    held_out = {name: [] for name in PROCEDURES}
    count = per_image.shape[-1]
    for _ in range(repeats):
        order = rng.permutation(count)
        for part in np.array_split(order, 5):
            fit = np.setdiff1d(order, part)
            for name in PROCEDURES:
                i, j, k = choose(name, per_image[..., fit])
                held_out[name].append(float(per_image[i, j, k, part].mean()))
    return {name: float(np.mean(values)) for name, values in held_out.items()}


def held_out_test_scores(run_dir: Path, carve: Path, oof) -> dict[str, float]:
    """The carve's held-out test score with infer's search on all the OOF images, and with the fixed choice."""
    ids, truth = carve_truth(carve)
    constant = carve_constant(carve, ids)
    probs, empty = run_probs(run_dir, ids), run_probs(run_dir, ids, "test_empty.npy")
    searched = PostProcess.from_tuned(tune(oof.probs, oof.truth, oof.is_constant, GRID.thresholds, GRID.min_areas, oof.empty, GRID.empty_thresholds))
    fixed = PostProcess(float(THRESHOLDS[DEFAULT[0]]), int(MIN_AREAS[DEFAULT[1]]), float(GATES[DEFAULT[2]]))
    return {name: float(per_image_scores(post.masks(probs, constant, empty), truth).mean()) for name, post in (("search", searched), ("fixed", fixed))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, action="append", metavar=("RUN_DIR", "CARVE_DIR"), required=True)
    parser.add_argument("--repeats", type=int, default=20, help="5-fold splits per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", action="store_true", help="add each run's held-out test score under search and fixed (after the fact)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for run_dir, carve in args.run:
        oof = load_oof(Path(run_dir), load_train_cache(Path(carve)))
        if oof.empty is None:
            raise SystemExit(f"{run_dir}: the run has no empty-mask head, so there is no gate to study")
        per_image = score_tensor(oof)
        i, j, k = choose("search", per_image)
        row = {"run": Path(run_dir).parent.name, "carve": Path(carve).name, "oof_images": int(len(oof.ids)),
               "search_on_all": {"threshold": float(THRESHOLDS[i]), "min_area": int(MIN_AREAS[j]), "gate": float(GATES[k])},
               "held_out_score": cross_validate(per_image, args.repeats, args.seed)}
        if args.test:
            row["test_score"] = held_out_test_scores(Path(run_dir), Path(carve), oof)
        rows.append(row)
        print(row["run"], " ".join(f"{name}: {score:.4f}" for name, score in row["held_out_score"].items()), flush=True)
    mean = {name: float(np.mean([row["held_out_score"][name] for row in rows])) for name in PROCEDURES}
    if args.test:
        print("test:", " ".join(f"{row['run']} {row['test_score']['search']:.4f} -> {row['test_score']['fixed']:.4f}" for row in rows))
    write_json(args.out, {"procedures": PROCEDURES, "repeats": args.repeats, "folds": 5, "seed": args.seed,
                          "grid": {"thresholds": THRESHOLDS.tolist(), "min_areas": MIN_AREAS.tolist(), "gates": GATES.tolist()},
                          "runs": rows, "mean_over_runs": mean})
    print("mean over runs:", " ".join(f"{name} {score:.4f}" for name, score in mean.items()))


if __name__ == "__main__":
    main()
