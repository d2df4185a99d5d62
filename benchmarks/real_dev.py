"""Variants of a preset on mini competitions carved from a labelled TGS folder (the real dev set), scored
through the whole path: train -> infer (TTA, fold ensemble, OOF-tuned post-processing) -> submit -> evaluate
against the held-out masks. Paired: every variant sees the same carve, folds, seed and data order.

    .venv/bin/python benchmarks/real_dev.py --dev ../shared/tgs-real-dev --name head-input \\
        --variant relu= --variant preact=model.head.input=preact --seeds 0,1,2 --folds 0

writes docs/real-dev/NAME.csv (one row per run, appended as runs finish, so an interrupted study keeps
its rows and resumes) and docs/real-dev/NAME.md (mean, sd, paired difference vs the first variant).
The data never enters the repository: carves live under --work (default /tmp/plastic-salt-real).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from common import ROOT

from pipeline.data.folds import make_folds
from pipeline.data.holdout import carve_holdout
from pipeline.data.prep import prep
from pipeline.evaluation.report import read_metrics
from pipeline.fileio import write_text
from pipeline.study.paired import paired_runs
from pipeline.workflow import Outcome, Variant

COLUMNS = ["variant", "seed", "test_score", "oof_score_untuned", "threshold", "min_area", "train_s", "head_eta", "head_alpha_abs", "overrides"]


def carve(dev: Path, work: Path, seed: int, n_train: int, n_test: int, k: int) -> Path:
    data = work / f"carve-{n_train}-{n_test}-seed{seed}"
    if not (data / "train.csv").exists():
        carve_holdout(dev, data, n_test=n_test, seed=seed, n_train=n_train)
    prep(data)
    if not (data / "folds.csv").exists():
        make_folds(data, data / "folds.csv", k=k, seed=42)
    return data


def last_metric(run_dir: Path, column: str) -> str:
    """Mean over folds of a metrics.csv column at the last epoch ('' when the head logs no such column)."""
    values = [rows[-1][column] for rows in read_metrics(run_dir).values() if rows and column in rows[-1]]
    return f"{statistics.mean(values):.6g}" if values else ""


def row_of(outcome: Outcome) -> dict:
    post, run_dir = outcome.postprocess, outcome.run.root
    return {
        "test_score": f"{outcome.test_score:.5f}",
        "oof_score_untuned": f"{outcome.oof_score_untuned:.5f}",
        "threshold": post["best_threshold"],
        "min_area": post["best_min_area"],
        "train_s": f"{outcome.seconds['train']:.0f}",
        "head_eta": last_metric(run_dir, "head_eta"),
        "head_alpha_abs": last_metric(run_dir, "head_alpha_abs"),
    }


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def append_row(path: Path, row: dict) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as handle:  # append-only log: a crash loses at most the run in progress
        writer = csv.DictWriter(handle, COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({key: row.get(key, "") for key in COLUMNS})


def summary(rows: list[dict], variants: list[str], command: str, setup: str) -> str:
    lines = [f"# {setup}", "", f"Command: `{command}`", "",
             "| variant | runs | test score mean | sd | paired diff vs " + variants[0] + " | seeds better | OOF (t=0.5) | eta | mean abs alpha |",
             "|---|---|---|---|---|---|---|---|---|"]
    base = {r["seed"]: float(r["test_score"]) for r in rows if r["variant"] == variants[0]}
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        scores = [float(r["test_score"]) for r in mine]
        diffs = [float(r["test_score"]) - base[r["seed"]] for r in mine if r["seed"] in base]
        sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
        diff = f"{statistics.mean(diffs):+.4f}" if diffs and variant != variants[0] else ""
        better = f"{sum(d > 0 for d in diffs)}/{len(diffs)}" if diff else ""
        oof = statistics.mean(float(r["oof_score_untuned"]) for r in mine)
        eta = ", ".join(r["head_eta"] for r in mine if r["head_eta"]) or "-"
        alpha = ", ".join(r["head_alpha_abs"] for r in mine if r["head_alpha_abs"]) or "-"
        lines.append(f"| {variant} | {len(mine)} | {statistics.mean(scores):.4f} | {sd:.4f} | {diff} | {better} | {oof:.4f} | {eta} | {alpha} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", required=True, type=Path, help="labelled Kaggle layout, e.g. ../shared/tgs-real-dev")
    parser.add_argument("--name", required=True, help="study name: docs/real-dev/NAME.csv and .md")
    parser.add_argument("--variant", action="append", required=True, metavar="NAME=KEY=VALUE;KEY=VALUE",
                        help="a variant: its name, '=', then ';'-separated config overrides (may be empty); the first is the reference")
    parser.add_argument("--config", default="cpu-demo")
    parser.add_argument("--seeds", default="0,1,2", help="carve and training seeds")
    parser.add_argument("--folds", default="all", help="'all' or fold numbers like 0 or 0,1 (of 5)")
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--work", type=Path, default=Path("/tmp/plastic-salt-real"))
    args = parser.parse_args()
    variants = {}
    for text in args.variant:
        name, _, overrides = text.partition("=")
        variants[name] = [o for o in overrides.split(";") if o]
    seeds = [int(s) for s in args.seeds.split(",")]
    folds = None if args.folds == "all" else [int(f) for f in args.folds.split(",")]
    out = ROOT / "docs" / "real-dev" / f"{args.name}.csv"
    done = {(r["variant"], int(r["seed"])) for r in read_rows(out)}

    def data_for_seed(seed: int) -> tuple[Path, Path]:  # carve seed = training seed
        data = carve(args.dev, args.work, seed, args.train, args.test, k=5)
        return data, data / "folds.csv"

    paired = {name: Variant(args.config, tuple(overrides)) for name, overrides in variants.items()}
    for name, seed, outcome in paired_runs(paired, seeds, args.work / "runs" / args.name, folds, data_for_seed, done, refresh=True):
        result = row_of(outcome)
        append_row(out, {"variant": name, "seed": seed, "overrides": ";".join(variants[name]), **result})
        print(f"{args.name}: {name} seed {seed}: test {result['test_score']} (OOF {result['oof_score_untuned']}, {result['train_s']} s)", flush=True)
    setup = (f"Real TGS dev set (2,000 labelled images): {args.train} train / {args.test} held-out test per carve, carve seeds {args.seeds}, "
             f"preset {args.config}, folds {args.folds} of 5")
    command = "benchmarks/real_dev.py " + " ".join(f"--{k} {v}" for k, v in [("dev", args.dev), ("name", args.name)]) + " " + " ".join(
        f"--variant '{v}'" for v in args.variant) + f" --config {args.config} --seeds {args.seeds} --folds {args.folds}"
    write_text(out.with_suffix(".md"), summary(read_rows(out), list(variants), command, setup))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
