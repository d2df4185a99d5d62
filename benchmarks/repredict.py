"""What an inference-time change (runtime `infer.` keys: TTA views, checkpoint, AdaBN) does to kept runs, without
training again: each run is copied, predicted again by `infer` with and without the change, submitted and scored
on its carve's held-out test images. The plain copy is the control: it must reproduce the run's recorded test
probabilities byte for byte (else the code has changed what a prediction is, and the change is not measured).

    .venv/bin/python benchmarks/repredict.py --run KEPT/cpu-demo /tmp/real/seed0 [--run ...] \\
        --set infer.tta_shift=8 --name tta-shift8 --out benchmarks/results/repredict-tta-shift8.json

A run folder is one `infer` wrote (benchmarks/fresh_clone.sh KEEP=DIR keeps it); the carve is the data it was
trained on (holdout's layout: test_truth.csv beside the images). The run's folds file lived in its clone, which is
gone: the carve's split is made again with the run's k and seed and checked against the run's own OOF ids. The
JSON holds scores and no image id.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml
from common import ROOT  # noqa: F401 (puts the repository on sys.path)

from pipeline.config import load_config
from pipeline.data.folds import make_folds, read_folds
from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import evaluate_submission
from pipeline.fileio import read_table, write_json
from pipeline.inference.infer import infer
from pipeline.inference.submit import submit
from pipeline.rundir import RunDir


def _copy(run: Path, carve: Path, work: Path, name: str) -> Path:
    """The run's folder copied to work/name with its folds file made again from the carve (same k and seed)."""
    target = work / name / run.name
    shutil.copytree(run, target)
    config_path = target / "config.yaml"
    values = yaml.safe_load(config_path.read_text())
    k = values["data"]["folds"]
    folds_file = work / name / f"folds-k{k}.csv"
    make_folds(carve, folds_file, k, 42, "coverage", False)
    oof_ids = set(read_table(target / "fold_0" / "oof_ids.csv")["id"])
    if {i for i, fold in read_folds(folds_file).items() if fold == 0} != oof_ids:
        raise PipelineError(f"{run}: the carve's {k}-fold split made again does not hold the run's fold 0 OOF ids; is {carve} its carve?")
    values["data"]["folds_file"] = str(folds_file)
    values["data"]["data_dir"] = str(carve.resolve())
    config_path.write_text(yaml.safe_dump(values, sort_keys=False))
    return target


def score(run: Path, carve: Path, overrides: list[str]) -> float:
    infer(run, force=True, overrides=overrides)
    submitted = submit(run, run.parent / "submissions")
    return float(evaluate_submission(Path(submitted["path"]), carve / "test_truth.csv")["scores"].mean())


def repredict(run: Path, carve: Path, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        control = _copy(run, carve, work, "control")
        control_score = score(control, carve, [])
        recorded = np.load(run / "test_probs.npy")
        reproduced = bool(np.array_equal(np.load(control / "test_probs.npy"), recorded))
        changed = _copy(run, carve, work, "changed")
        changed_score = score(changed, carve, overrides)
        post = RunDir(changed).postprocess.read_text()
    return {"run": str(run), "carve": carve.name, "control": round(control_score, 4), "control_reproduces_test_probs": reproduced,
            "changed": round(changed_score, 4), "difference": round(changed_score - control_score, 4), "postprocess_changed": post}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", nargs=2, action="append", required=True, metavar=("RUN_DIR", "CARVE_DIR"))
    parser.add_argument("--set", action="append", required=True, help="a runtime infer key (KEY=VALUE), repeatable")
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    load_config("cpu-demo", args.set)  # a bad key fails before any run is copied
    rows = []
    for run, carve in args.run:
        row = repredict(Path(run), Path(carve), args.set)
        rows.append(row)
        print(f"{row['carve']}: control {row['control']:.4f} (test probabilities reproduced: {row['control_reproduces_test_probs']}), "
              f"{args.name} {row['changed']:.4f} ({row['difference']:+.4f})", flush=True)
    summary = {"name": args.name, "overrides": args.set, "runs": rows,
               "control_mean": round(float(np.mean([r["control"] for r in rows])), 4),
               "changed_mean": round(float(np.mean([r["changed"] for r in rows])), 4),
               "mean_difference": round(float(np.mean([r["difference"] for r in rows])), 4),
               "better": sum(r["difference"] > 0 for r in rows), "worse": sum(r["difference"] < 0 for r in rows)}
    write_json(args.out, summary)
    print(f"mean: control {summary['control_mean']:.4f}, {args.name} {summary['changed_mean']:.4f} ({summary['mean_difference']:+.4f}); "
          f"better on {summary['better']} of {len(rows)}")


if __name__ == "__main__":
    main()
