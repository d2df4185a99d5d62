"""`python -m pipeline <stage>`: thin argument parsing around each stage's function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.fileio import PipelineError

RUNS = Path("runs")


def _synth(args):
    from pipeline.data.synth import synthesize

    layout = synthesize(Path(args.out), args.train, args.test, args.seed, args.force)
    print(f"wrote {args.train} train and {args.test} test images to {layout.root} (preview: {layout.root / 'preview.png'})")


def _holdout(args):
    from pipeline.data.holdout import carve_holdout

    summary = carve_holdout(Path(args.data), Path(args.out), args.test, args.seed, args.train, args.force)
    print(f"holdout: {summary['train']} train and {summary['test']} test images (seed {summary['seed']}, "
          f"{summary['test_empty_fraction']:.1%} of the test masks empty) -> {summary['root']}; truth in test_truth.csv")


def _prep(args):
    from pipeline.data.prep import prep

    manifest = prep(Path(args.data), args.force)
    if manifest["skipped"]:
        print(f"prep: {args.data}/cache is up to date, nothing to do")
    else:
        print(f"prep: cached {manifest['train_images']} train and {manifest['test_images']} test images in {args.data}/cache "
              f"(empty masks {manifest['empty_fraction']:.1%}, constant images {manifest['constant_images']})")


def _folds(args):
    from pipeline.data.folds import make_folds

    assignment = make_folds(Path(args.data), Path(args.out), args.k, args.seed, args.by, args.force)
    print(f"folds: {len(assignment)} ids in {args.k} folds ({args.by}) -> {args.out}")


def _config(args):
    from pipeline.config import load_config

    overrides = list(args.set or [])
    if getattr(args, "data", None):
        overrides.append(f"data.data_dir={args.data}")
    return load_config(args.config, overrides)


def _fold_list(text: str) -> list[int] | None:
    if text == "all":
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise PipelineError(f"--fold must be 'all' or fold numbers like 0 or 0,2, got {text!r}") from None


def _train(args):
    from pipeline.training.trainer import train

    cfg = _config(args)
    run_name = args.run or Path(args.config).stem
    results = train(cfg, RUNS / run_name, _fold_list(args.fold), args.resume)
    for result in results:
        if "best_score" in result:
            print(f"fold {result['fold']}: best val_metric {result['best_score']:.4f} at epoch {result['best_epoch']}")
    print(f"run: {RUNS / run_name}")


def _infer(args):
    from pipeline.inference.infer import infer

    post = infer(RUNS / args.run, args.force)
    if post.get("skipped"):
        print(f"infer: {RUNS / args.run} test probabilities are up to date, nothing to do")
        return
    print(f"infer: {post['test_images']} test images at {post['test_img_per_s']:.0f} img/s; OOF-tuned threshold "
          f"{post['best_threshold']}, min area {post['best_min_area']}, OOF score {post['oof_score']:.4f}")


def _submit(args):
    from pipeline.inference.submit import submit

    summary = submit(RUNS / args.run, Path(args.out))
    print(f"submit: {summary['images']} images, empty {summary['empty_fraction']:.1%}, mean coverage {summary['mean_coverage']:.3f} "
          f"(threshold {summary['threshold']}, min area {summary['min_area']})")
    print(summary["path"])


def _evaluate(args):
    from pipeline.evaluation.evaluate import evaluate_run, evaluate_submission, format_table

    if args.run:
        result = evaluate_run(RUNS / args.run)
    elif args.submission and args.truth:
        result = evaluate_submission(Path(args.submission), Path(args.truth))
    else:
        raise PipelineError("evaluate needs --run NAME, or both --submission CSV and --truth CSV")
    print(format_table(result))


def _report(args):
    from pipeline.evaluation.report import report

    index = report(RUNS / args.run)
    print(f"report: {index}")


def _summary(args):
    from pipeline.evaluation.summary import run_summary

    path = run_summary(RUNS / args.run, Path(args.submission) if args.submission else None,
                       Path(args.truth) if args.truth else None, Path(args.timings) if args.timings else None)
    print(f"summary: {path}")


def _ablate(args):
    from pipeline.study.ablate import ablate

    outputs = ablate(args.config, args.heads.split(","), args.seeds, _fold_list(args.fold), list(args.set or []), Path(args.out), args.data)
    print(outputs["markdown"].read_text())
    print(f"ablation: {outputs['csv']} {outputs['markdown']} {outputs['plot']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="TGS Salt pipeline with plastic U-Net heads")
    stages = parser.add_subparsers(dest="stage", required=True)

    p = stages.add_parser("synth", help="write synthetic seismic data in the Kaggle layout")
    p.add_argument("--out", default="data")
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--test", type=int, default=18000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing data folder")
    p.set_defaults(func=_synth)

    p = stages.add_parser("holdout", help="carve a local mini competition (train + held-out test with truth) from a labelled layout",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="labelled Kaggle layout to draw from (train.csv, depths.csv, train/)")
    p.add_argument("--out", required=True, help="new data folder for the mini competition")
    p.add_argument("--test", type=int, required=True, help="number of held-out images (their masks become test_truth.csv)")
    p.add_argument("--train", type=int, default=None, help="number of train images (default: all the rest)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw")
    p.add_argument("--force", action="store_true", help="replace an existing data folder at --out")
    p.set_defaults(func=_holdout)

    p = stages.add_parser("prep", help="validate the data folder and cache it as arrays")
    p.add_argument("--data", default="data")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_prep)

    p = stages.add_parser("folds", help="stratified k-fold split -> folds/folds.csv")
    p.add_argument("--data", default="data")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--by", choices=["coverage", "depth"], default="coverage")
    p.add_argument("--out", default="folds/folds.csv")
    p.add_argument("--force", action="store_true", help="replace a different existing split")
    p.set_defaults(func=_folds)

    def add_config(p):
        p.add_argument("--config", default="cpu-demo", help="preset name (pipeline/configs) or YAML path")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.epochs=3")
        p.add_argument("--data", help="data folder (same as --set data.data_dir=DIR)")

    p = stages.add_parser("train", help="train one fold or all folds of a run")
    add_config(p)
    p.add_argument("--fold", default="all", help="fold number(s) or 'all'")
    p.add_argument("--run", help="run name (default: the config's name)")
    p.add_argument("--resume", action="store_true", help="continue from each fold's last.pt")
    p.set_defaults(func=_train)

    p = stages.add_parser("infer", help="TTA fold-ensemble test probabilities; tune post-processing on OOF")
    p.add_argument("--run", required=True)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_infer)

    p = stages.add_parser("submit", help="write submissions/RUN-<time>.csv")
    p.add_argument("--run", required=True)
    p.add_argument("--out", default="submissions")
    p.set_defaults(func=_submit)

    p = stages.add_parser("evaluate", help="competition score of a submission vs truth, or of a run's OOF")
    p.add_argument("--submission")
    p.add_argument("--truth")
    p.add_argument("--run")
    p.set_defaults(func=_evaluate)

    p = stages.add_parser("report", help="plots and index.html in runs/NAME/report/")
    p.add_argument("--run", required=True)
    p.set_defaults(func=_report)

    p = stages.add_parser("summary", help="runs/NAME/summary.json: every number about the run in one file",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True, help="run name under runs/")
    p.add_argument("--submission", help="the run's submission CSV, scored against --truth")
    p.add_argument("--truth", help="truth CSV of the test images (synthetic or holdout data)")
    p.add_argument("--timings", help="file of 'stage seconds' lines (run.sh writes one)")
    p.set_defaults(func=_summary)

    p = stages.add_parser("ablate", help="train every head with every seed on the same folds; table + plot")
    add_config(p)
    p.add_argument("--heads", default="none,hebb,oja,neuromod,eligibility,original-rows")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--fold", default="0", help="fold number(s) or 'all'")
    p.add_argument("--out", default="runs/ablation")
    p.set_defaults(func=_ablate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: files already written are intact; rerun the stage (train: --resume)", file=sys.stderr)
        return 130
    return 0
