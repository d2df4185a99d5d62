"""`python -m pipeline <stage>`: thin argument parsing around each stage's function."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.fileio import DISK_ERRORS, disk_error, run_lock
from pipeline.rundir import RUNS, RunDir


def _writer(run_dir: Path, stage: str):
    """The run's writer lock for this process (rank 0 only under torchrun: it holds it for the job). A run that
    does not exist yet is not created here for infer/submit/pseudo, so their own 'no such run' error stays."""
    import contextlib

    from pipeline.training.fold_parallel import LOCK_HELD

    if os.environ.get("RANK", "0") != "0" or os.environ.get(LOCK_HELD) or (stage != "train" and not run_dir.is_dir()):
        return contextlib.nullcontext()  # a torchrun rank but 0, or a fold-parallel child: its parent holds the lock
    return run_lock(run_dir, stage)


def _synth(args):
    from pipeline.data.synth import synthesize

    print(f"synth: writing {args.train} train and {args.test} test images to {args.out} (--train/--test choose other sizes)", flush=True)
    layout = synthesize(Path(args.out), args.train, args.test, args.seed, args.force, args.mosaic_side)
    print(f"wrote {args.train} train and {args.test} test images to {layout.root} (preview: {layout.root / 'preview.png'})")


def _mosaic(args):
    from pipeline.data.mosaic import mosaic

    s = mosaic(Path(args.data), args.ratio, args.max_distance)
    line = (f"mosaic: {s['tiles_in_mosaics']} of {s['tiles']} tiles in {s['mosaics']} mosaics (largest {s['largest_mosaics']}), "
            f"{s['pairs_kept']} neighbour pairs")
    if "neighbours" in s:
        q = s["neighbours"]
        line += f"; against the true positions: precision {q['precision'] or 0:.3f}, recall {q['recall'] or 0:.3f} of {q['true_pairs']} pairs"
    print(line + f" -> {Path(args.data) / 'mosaic.csv'}")


def _holdout(args):
    from pipeline.data.holdout import ContrastCurve, carve_holdout

    summary = carve_holdout(Path(args.data), Path(args.out), args.test, args.seed, args.train, args.force, args.split,
                            ContrastCurve(args.test_gain, args.test_gamma))
    shift = "" if args.split == "random" else f", train z {summary['train_depth'][0]:g}-{summary['train_depth'][1]:g}, test z {summary['test_depth'][0]:g}-{summary['test_depth'][1]:g}"
    curve = "" if (args.test_gain, args.test_gamma) == (1.0, 1.0) else f", test images through gain {args.test_gain:g} gamma {args.test_gamma:g}"
    print(f"holdout: {summary['train']} train and {summary['test']} test images (seed {summary['seed']}, split {args.split}{shift}{curve}, "
          f"{summary['test_empty_fraction']:.1%} of the test masks empty) -> {summary['root']}; truth in test_truth.csv")


def _prep(args):
    from pipeline.data.prep import prep

    manifest = prep(Path(args.data), args.force, args.allow_unlisted)
    if manifest["skipped"]:
        print(f"prep: {args.data}/cache is up to date, nothing to do")
    else:
        print(f"prep: cached {manifest['train_images']} train and {manifest['test_images']} test images in {args.data}/cache "
              f"(empty masks {manifest['empty_fraction']:.1%}, constant images {manifest['constant_images']})")
        if manifest.get("unlisted_train_images"):
            print(f"prep: {manifest['unlisted_train_images']} train images without a row in train.csv were left out (--allow-unlisted)")


def _folds(args):
    from pipeline.data.folds import make_folds

    assignment = make_folds(Path(args.data), Path(args.out), args.k, args.seed, args.by, args.force, args.group_mosaic)
    grouped = ", each mosaic in one fold" if args.group_mosaic else ""
    print(f"folds: {len(assignment)} ids in {args.k} folds ({args.by}{grouped}) -> {args.out}")


def _config(args):
    from pipeline.config import load_config

    overrides = list(args.set or [])
    if getattr(args, "data", None):
        overrides.append(f"data.data_dir={args.data}")
    if getattr(args, "pseudo", None):
        overrides.append(f"data.pseudo_dir={args.pseudo}")
    return load_config(args.config or "cpu-demo", overrides)


def _fold_list(text: str) -> list[int] | None:
    if text == "all":
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise PipelineError(f"--fold must be 'all' or fold numbers like 0 or 0,2, got {text!r}") from None


def _fold_parallel_share(cfg, args) -> tuple[list[int], list[str]] | None:
    """(folds, GPU indices) this `train` shares out, one process per GPU (fold_parallel.folds_to_share), unless it
    runs under torchrun or a fold-parallel parent, or on the CPU."""
    from pipeline.training.fold_parallel import LOCK_HELD, folds_to_share

    if "RANK" in os.environ or os.environ.get(LOCK_HELD) or cfg.train.device == "cpu":
        return None
    from pipeline.devices import usable_gpus

    gpus = usable_gpus()
    folds = folds_to_share(cfg, _fold_list(args.fold), gpus)
    return (folds, [str(i) for i in range(gpus)]) if folds else None


def _train(args):
    import shutil

    from pipeline.training.trainer import train

    run_name = args.run or Path(args.config or "cpu-demo").stem
    run_dir = RUNS / run_name
    if args.config is None and not args.force and RunDir(run_dir).config.exists():
        args.config = str(RunDir(run_dir).config)  # continuing a run: its own config is the default
        print(f"train: using {args.config}", flush=True)
    cfg = _config(args)  # checked before anything is written (a bad value leaves no run folder)
    with _writer(run_dir, "train"):
        if args.force and os.environ.get("RANK", "0") == "0" and run_dir.exists():
            for path in run_dir.iterdir():  # retrain from scratch; the lock file (held now) stays
                if path.name != ".lock":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            print(f"train: --force removed {run_dir} (all but its lock)", flush=True)
        shared = _fold_parallel_share(cfg, args)
        if shared:  # several GPUs: one fold per GPU, each child trains as one GPU would
            from pipeline.training.fold_parallel import train_args, train_in_parallel

            train_in_parallel(train_args(args.config or "cpu-demo", run_name, args.set or [], args.resume), *shared, run_dir)
            results = []
        else:
            results = train(cfg, run_dir, _fold_list(args.fold), args.resume)
    for result in results:
        if "best_score" in result:
            print(f"fold {result['fold']}: best val_metric {result['best_score']:.4f} at epoch {result['best_epoch']}")
    print(f"run: {run_dir}")


def _infer(args):
    from pipeline.inference.infer import infer

    with _writer(RUNS / args.run, "infer"):
        post = infer(RUNS / args.run, args.force, args.allow_partial, list(args.set or []))
    if post.get("skipped"):
        print(f"infer: {RUNS / args.run} test probabilities are up to date, nothing to do")
        return
    each = "every snapshot_C.pt" if post["checkpoint"] == "snapshots" else f"{post['checkpoint']}.pt each"
    print(f"infer: ensemble of folds {', '.join(map(str, post['folds']))} ({each}); "
          f"{post['test_images']} test images at {post['test_img_per_s']:.0f} img/s; OOF-tuned threshold "
          f"{post['best_threshold']}, min area {post['best_min_area']}{gate_text(post.get('best_empty_threshold'))}, OOF score {post['oof_score']:.4f}")


def gate_text(gate) -> str:
    from pipeline.inference.postprocess import describe_gate

    text = describe_gate(gate)
    return f", {text}" if text else ""


def _pseudo(args):
    from pipeline.inference.pseudo import make_pseudo

    with _writer(RUNS / args.run, "pseudo"):
        s = make_pseudo(RUNS / args.run, Path(args.out), args.margin, args.min_confidence, args.force, args.min_oof_score)
    oof = (f"; the same rule on OOF keeps {s['oof_selected']} of {s['oof_images']} images, scoring {s['oof_score_selected']:.4f} "
           f"(the rest {s['oof_score_rest']:.4f})" if s["oof_score_selected"] is not None and s["oof_score_rest"] is not None else "")
    rule = (f"|p - {s['threshold']}| > {s['margin']} on >= {s['min_confidence']:.0%} of the pixels ({s['rule']})" if s["margin"] is not None
            else f"no rule keeps OOF images scoring >= {s['min_oof_score']} on average")
    print(f"pseudo: {s['selected']} of {s['test_images']} test images kept ({s['selected_share']:.1%}); {rule}{oof} -> {args.out}")


def _submit(args):
    from pipeline.inference.submit import submit

    with _writer(RUNS / args.run, "submit"):
        if args.set:  # another prediction choice: infer with it first (it checks the keys are runtime keys)
            from pipeline.inference.infer import infer

            infer(RUNS / args.run, overrides=list(args.set))
        summary = submit(RUNS / args.run, Path(args.out), args.force)
    if summary.get("unchanged"):
        print("submit: identical to the latest submission of this run, not written again (--force writes a copy)")
    print(f"submit: {summary['images']} images, empty {summary['empty_fraction']:.1%}, mean coverage {summary['mean_coverage']:.3f} "
          f"(threshold {summary['threshold']}, min area {summary['min_area']})")
    print(summary["path"])


def _export(args):
    from pipeline.serving.bundle import export_bundle

    with _writer(RUNS / args.run, "export"):
        manifest = export_bundle(RUNS / args.run, Path(args.out), args.force, args.onnx)
    print(f"export: {len(manifest['weights'])} model(s) of run {args.run}, threshold {manifest['postprocess']['threshold']}, "
          f"min area {manifest['postprocess']['min_area']}{gate_text(manifest['postprocess']['empty_threshold'])}, TTA {', '.join(manifest['tta'])}"
          f"{' (and shifted ' + str(manifest['tta_shift']) + ' px)' if manifest.get('tta_shift') else ''}"
          f"{', ONNX graph model.onnx' if manifest['onnx'] else ''} -> {args.out}")


def _predict(args):
    from pipeline.serving.predict import predict_folder, predict_segy

    if bool(args.images) == bool(args.segy):
        raise PipelineError("predict needs one of --images DIR or --segy FILE")
    if args.images:
        s = predict_folder(Path(args.model), Path(args.images), Path(args.out), args.runtime, args.overlap, args.depth)
        print(f"predict: {s['images']} images ({s['salt_images']} with salt) in {s['seconds']:.1f} s ({args.runtime}) -> "
              f"{args.out}/masks, overlays, probabilities, predictions.csv")
    else:
        s = predict_segy(Path(args.model), Path(args.segy), Path(args.out), args.runtime, args.overlap, args.depth,
                         args.inline, args.crossline, args.time_slice)
        print(f"predict: {s['kind']} of {s['shape'][0]} x {s['shape'][1]} samples, {s['salt_fraction']:.1%} salt, in {s['seconds']:.1f} s "
              f"({args.runtime}) -> {args.out}")


def _evaluate(args):
    from pipeline.evaluation.evaluate import evaluate_run, evaluate_submission, format_table

    if args.run:
        result = evaluate_run(RUNS / args.run)
        print(format_table(result, label="OOF score"))
    elif args.submission and args.truth:
        result = evaluate_submission(Path(args.submission), Path(args.truth))
        print(format_table(result))
    else:
        raise PipelineError("evaluate needs --run NAME, or both --submission CSV and --truth CSV")


def _report(args):
    from pipeline.evaluation.report import report

    index = report(RUNS / args.run, args.force)
    print(f"report: {index}")


def _summary(args):
    from pipeline.evaluation.summary import run_summary

    path = run_summary(RUNS / args.run, Path(args.submission) if args.submission else None,
                       Path(args.truth) if args.truth else None, Path(args.timings) if args.timings else None)
    print(f"summary: {path}")


def _ablate(args):
    from pipeline.study.ablate import ablate, gpu_command

    heads = args.heads.split(",")
    also_test = {}
    for text in args.also_test or []:
        name, _, folder = text.partition("=")
        if not name or not folder:
            raise PipelineError(f"ablate --also-test {text!r}: write NAME=DIR, e.g. gain05=/tmp/real/seed0-gain05")
        also_test[name] = Path(folder)
    outputs = ablate(args.config or "cpu-demo", heads, args.seeds, _fold_list(args.fold), list(args.set or []), Path(args.out), args.data,
                     args.allow_mixed_code, [t for t in (args.test_time or "").split(",") if t], also_test, args.runs and Path(args.runs), args.hash_ids)
    print(outputs["markdown"].read_text())
    print(f"ablation: {outputs['csv']} {outputs['comparisons']} {outputs['markdown']} {outputs['plot']}")
    print(f"the real-data answer, on a GPU with the competition data in data/: {gpu_command(heads, args.seeds)}")


def _run(args):
    from pipeline.workflow import main_job

    overrides = tuple(part.strip() for text in (args.set or []) for part in text.split(";") if part.strip())
    main_job(Path(args.data), args.preset, args.run, overrides, args.force, (args.demo_train, args.demo_test))


def _gpus(args):
    from pipeline.devices import usable_gpus

    print(usable_gpus(preset_given=args.preset_given))


class HelpWithDefaults(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the default is 'not given' (None) or a flag's False."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="TGS Salt pipeline with plastic U-Net heads")
    stages = parser.add_subparsers(dest="stage", required=True)

    def stage(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = stages.add_parser(name, help=help_text, description=help_text, formatter_class=HelpWithDefaults)
        p.set_defaults(func=func)
        return p

    def force(p, what: str):
        p.add_argument("--force", action="store_true", help=f"redo it even when up to date: {what}")

    p = stage("run", "the whole path: data (synthetic default when empty), prep, folds, train, infer, submit, evaluate, summary, report", _run)
    p.add_argument("--data", default="data", help="data folder in the Kaggle layout (the synthetic default is written there when it holds no train.csv)")
    p.add_argument("--preset", help="training preset (default: gpu-full when torch sees a GPU, else cpu-demo)")
    p.add_argument("--run", help="run name under runs/ (default: the preset's name)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override for train (repeatable; ';' separates several)")
    p.add_argument("--demo-train", type=int, default=1600, help="synthetic default: train images")
    p.add_argument("--demo-test", type=int, default=1600, help="synthetic default: test images")
    force(p, "redo every stage (the data folder is kept; the run folder is deleted first)")

    p = stage("gpus", "the number of GPUs the main job will use (an error when nvidia-smi lists GPUs torch cannot use)", _gpus)
    p.add_argument("--preset-given", action="store_true", help="a preset was chosen: no error on a GPU machine where torch sees none")

    p = stage("synth", "write synthetic seismic data in the Kaggle layout", _synth)
    p.add_argument("--out", default="data", help="data folder to create")
    p.add_argument("--train", type=int, default=4000, help="number of labelled train images (the competition's size)")
    p.add_argument("--test", type=int, default=18000, help="number of test images (the competition's size)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the generator")
    p.add_argument("--mosaic-side", type=int, default=4, help="cut the tiles from sections of N x N tiles (true positions in mosaic_truth.csv); 1: no mosaics")
    force(p, "replace an existing data folder")

    p = stage("mosaic", "reassemble tiles into mosaics by edge matching: DATA/mosaic.csv, mosaics.png, mosaic.json", _mosaic)
    p.add_argument("--data", default="data", help="prepped data folder (train and test tiles are matched together)")
    p.add_argument("--ratio", type=float, default=0.7, help="ratio test: best border distance must be below RATIO x the runner-up")
    p.add_argument("--max-distance", type=float, default=1.0, help="largest border distance 2(1 - correlation) to accept")

    p = stage("holdout", "carve a local mini competition (train + held-out test with truth) from a labelled layout", _holdout)
    p.add_argument("--data", required=True, help="labelled Kaggle layout to draw from (train.csv, depths.csv, train/)")
    p.add_argument("--out", required=True, help="new data folder for the mini competition")
    p.add_argument("--test", type=int, required=True, help="number of held-out images (their masks become test_truth.csv)")
    p.add_argument("--train", type=int, default=None, help="number of train images (default: all the rest)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw")
    p.add_argument("--split", choices=["random", "depth"], default="random",
                   help="random: both sets drawn from all ids; depth: test from the deepest third by z, train from the rest (a depth shift)")
    p.add_argument("--test-gain", type=float, default=1.0, help="test images' contrast gain around mid-grey (an amplitude shift; 1: unchanged)")
    p.add_argument("--test-gamma", type=float, default=1.0, help="test images' gamma curve (1: unchanged)")
    force(p, "replace an existing data folder at --out")

    p = stage("prep", "validate the data folder and cache it as arrays", _prep)
    p.add_argument("--data", default="data", help="data folder in the Kaggle layout")
    p.add_argument("--allow-unlisted", action="store_true", help="train images without a row in train.csv are left out (else an error)")
    force(p, "rebuild the cache although the inputs did not change")

    p = stage("folds", "stratified k-fold split -> folds/folds.csv", _folds)
    p.add_argument("--data", default="data", help="data folder (its prep cache)")
    p.add_argument("--k", type=int, default=5, help="number of folds")
    p.add_argument("--seed", type=int, default=42, help="seed of the split")
    p.add_argument("--by", choices=["coverage", "depth"], default="coverage", help="stratify by coverage class or by depth")
    p.add_argument("--group-mosaic", action="store_true", help="keep each mosaic (DATA/mosaic.csv, from `mosaic`) in one fold")
    p.add_argument("--out", default="folds/folds.csv", help="folds file to write")
    force(p, "replace a different existing split")

    def add_config(p, default_text="cpu-demo"):
        p.add_argument("--config", default=None, help=f"preset name (pipeline/configs) or YAML path; default {default_text}")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.epochs=3 (repeatable)")
        p.add_argument("--data", help="data folder (same as --set data.data_dir=DIR)")

    p = stage("train", "train one fold or all folds of a run", _train)
    add_config(p, "the run's own runs/NAME/config.yaml when it exists, else cpu-demo")
    p.add_argument("--fold", default="all", help="fold number(s) like 0 or 0,2, or 'all'")
    p.add_argument("--run", help="run name under runs/ (default: the config's name)")
    p.add_argument("--resume", action="store_true", help="continue each fold from its last.pt")
    p.add_argument("--pseudo", help="a `pseudo` folder: its images join each fold's training part (same as --set data.pseudo_dir=DIR)")
    force(p, "delete runs/NAME and train from scratch")

    p = stage("infer", "TTA fold-ensemble test probabilities; tune post-processing on OOF", _infer)
    p.add_argument("--run", required=True, help="run name under runs/")
    p.add_argument("--allow-partial", action="store_true", help="ensemble the folds that exist even if some are missing (else an error)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="change a runtime key for this and later stages, e.g. "
                   "infer.tta=[none] or infer.checkpoint=best (saved to the run's config.yaml; recipe keys are refused)")
    force(p, "recompute although the test probabilities are newer than the checkpoints")

    p = stage("pseudo", "confident test predictions of a finished run as a labelled set for train --pseudo", _pseudo)
    p.add_argument("--run", required=True, help="run name under runs/ (after infer)")
    p.add_argument("--out", required=True, help="folder for pseudo.csv, pseudo.npz and summary.json")
    p.add_argument("--margin", type=float, help="a pixel is decided when |p - threshold| > margin (default: tuned on OOF)")
    p.add_argument("--min-confidence", type=float, help="share of decided pixels an image needs (default: tuned on OOF)")
    p.add_argument("--min-oof-score", type=float, default=0.9, help="tuning: the kept OOF images must score at least this on average")
    force(p, "replace an existing pseudo set in --out")

    p = stage("submit", "write the submission CSV of a run into a folder", _submit)
    p.add_argument("--run", required=True, help="run name under runs/")
    p.add_argument("--out", default="submissions", help="folder for the CSV (named RUN-<time>.csv)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="infer again with this runtime key changed first (as infer --set)")
    force(p, "write a new file even if the latest submission of the run is identical")

    p = stage("evaluate", "competition score of a submission vs truth, or of a run's OOF predictions", _evaluate)
    p.add_argument("--submission", help="submission CSV (exactly id,rle_mask)")
    p.add_argument("--truth", help="truth CSV (id,rle_mask), e.g. data/test_truth.csv")
    p.add_argument("--run", help="score the run's OOF predictions instead (labelled 'OOF score')")

    p = stage("report", "plots and index.html in runs/NAME/report/", _report)
    p.add_argument("--run", required=True, help="run name under runs/")
    force(p, "rewrite the report although it is newer than the run's outputs")

    p = stage("summary", "runs/NAME/summary.json: every number about the run in one file", _summary)
    p.add_argument("--run", required=True, help="run name under runs/")
    p.add_argument("--submission", help="the run's submission CSV, scored against --truth")
    p.add_argument("--truth", help="truth CSV of the test images (synthetic or holdout data)")
    p.add_argument("--timings", help="file of 'stage seconds' lines (run.sh writes one)")

    p = stage("export", "a finished run as a model bundle folder (safetensors weights, config, post-processing, TTA)", _export)
    p.add_argument("--run", required=True, help="run name under runs/ (after infer)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (the fold ensemble as one ONNX graph)")
    force(p, "replace an existing bundle in --out")

    p = stage("predict", "a model bundle on an image folder or a SEG-Y section: masks, overlays, RLE CSV / SEG-Y", _predict)
    p.add_argument("--model", required=True, help="bundle folder (from export)")
    p.add_argument("--images", help="folder of PNG/JPEG/TIFF images, any size, 8-bit grey")
    p.add_argument("--segy", help="SEG-Y file: a 2-D line, or a slice of a 3-D volume with --inline/--crossline/--time-slice")
    p.add_argument("--inline", type=int, help="3-D SEG-Y: the inline number to predict")
    p.add_argument("--crossline", type=int, help="3-D SEG-Y: the crossline number to predict")
    p.add_argument("--time-slice", type=int, help="3-D SEG-Y: the sample index of a time (depth) slice to predict")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--runtime", choices=["torch", "onnx"], default="torch", help="torch, or onnxruntime on the bundle's model.onnx")
    p.add_argument("--overlap", type=int, default=25, help="pixels of overlap between 101 px tiles of larger images")
    p.add_argument("--depth", type=float, help="depth z of the images, for models with a depth channel")

    p = stage("ablate", "train every head with every seed on the same folds; table + plot", _ablate)
    add_config(p)
    p.add_argument("--heads", default="none,frozen,hebb,oja,neuromod,eligibility", help="comma-separated head names (frozen: the control)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per head (paired: seed s gives every head the same start and data)")
    p.add_argument("--allow-mixed-code", action="store_true", help="tabulate runs stamped with different code commits")
    p.add_argument("--fold", default="0", help="fold number(s) or 'all'")
    p.add_argument("--out", default="runs/ablation", help="output folder: tables, figure; runs already recorded in its runs.csv are kept")
    p.add_argument("--runs", help="folder for the run folders (weights); default: --out")
    p.add_argument("--hash-ids", action="store_true", help="image ids in image_scores.csv as hashes (real competition ids kept out of a committed --out)")
    p.add_argument("--test-time", help="also score each trained run another way at test time, as HEAD+NAME: adabn (BatchNorm statistics from the test images), notta (without the preset's TTA views)")
    p.add_argument("--also-test", action="append", metavar="NAME=DIR",
                   help="also score each trained run on DIR's test images (the same training set, e.g. a holdout --test-gain carve), as HEAD@NAME")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a write outside fileio (TensorBoard, a plot library) that the disk refused
        if error.errno not in DISK_ERRORS:
            raise
        print(f"error: {disk_error(error.filename or 'a file', error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: files already written are intact; rerun the stage (train: --resume)", file=sys.stderr)
        return 130
    return 0
