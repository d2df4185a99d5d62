"""The pipeline path, written once: data (synth when empty) -> prep -> folds -> train -> infer -> submit ->
evaluate -> summary -> report. `./run.sh` is `python -m pipeline run`; `ablate` and the studies in
benchmarks/ run their variants through `run_variant`. Each step returns typed results; nothing reads stdout.

A variant is a preset plus config overrides, trained as one run folder. Every variant of a paired study
sees the same data, folds and seed unless its overrides say otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import load_config
from pipeline.data.folds import folds_path, make_folds
from pipeline.data.layout import Layout
from pipeline.data.prep import prep
from pipeline.data.synth import synthesize
from pipeline.devices import usable_gpus
from pipeline.evaluation.evaluate import evaluate_run, evaluate_submission
from pipeline.evaluation.report import report
from pipeline.evaluation.summary import run_summary
from pipeline.fileio import run_lock
from pipeline.inference.infer import infer
from pipeline.inference.submit import submit
from pipeline.rundir import RUNS, RunDir
from pipeline.training.fold_parallel import folds_to_share, train_args, train_in_parallel
from pipeline.training.trainer import train

DEMO_SIZES = (1600, 1600)  # the embedded default: synthetic train and test images made when the data folder is empty


@dataclass(frozen=True)
class Variant:
    """A preset and its config overrides (`section.key=value`), trained as one run."""

    preset: str
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "overrides", tuple(self.overrides))


@dataclass
class Outcome:
    """What one variant's path left: its run folder, the submission and the scores."""

    run: RunDir
    submission: Path
    postprocess: dict  # infer's result (OOF-tuned threshold, min area, gate, OOF score)
    oof_untuned: dict  # evaluate_run(tuned=False): per-image OOF scores at threshold 0.5, nothing tuned on the images it scores
    test_score: float | None  # the submission against DATA/test_truth.csv (None without truth: Kaggle scores it)
    test_result: dict | None  # evaluate_submission's per-image scores, when scored
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    @property
    def oof_score_untuned(self) -> float:
        return float(self.oof_untuned["scores"].mean())


def _timed(seconds: dict, stage: str, work):
    started = time.perf_counter()
    result = work()
    seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - started
    return result


def _stage(run: RunDir, locked: bool, seconds: dict, stage: str, work):
    """`work()` timed, under the run's writer lock when `locked`."""
    if not locked:
        return _timed(seconds, stage, work)
    with run_lock(run.root, stage):
        return _timed(seconds, stage, work)


def prepare_data(data_dir: Path, folds_file: Path, k: int, force: bool = False, demo_sizes: tuple[int, int] = DEMO_SIZES,
                 log=print) -> dict[str, float]:
    """The data folder ready to train on: synthesised when it holds no competition data, validated and cached,
    split into k stratified folds. Returns the seconds of each step."""
    seconds: dict[str, float] = {}
    if not Layout(data_dir).train_csv.exists():
        log(f"== synth == {data_dir} holds no train.csv: writing the synthetic default ({demo_sizes[0]} train / {demo_sizes[1]} test)")
        _timed(seconds, "synth", lambda: synthesize(data_dir, demo_sizes[0], demo_sizes[1], seed=0))
    manifest = _timed(seconds, "prep", lambda: prep(data_dir, force))
    log(f"== prep == {data_dir}/cache " + ("up to date" if manifest["skipped"] else f"cached {manifest['train_images']} train and {manifest['test_images']} test images"))
    assignment = _timed(seconds, "folds", lambda: make_folds(data_dir, folds_file, k, 42, "coverage", force))
    log(f"== folds == {len(assignment)} ids in {k} folds -> {folds_file}")
    return seconds


def _train_args(variant: Variant, run: RunDir) -> list[str]:
    """The `train` command line of a variant's run, for the processes that train it on several GPUs."""
    if run.root.parent.resolve() != RUNS.resolve():
        raise RuntimeError(f"training on several GPUs writes under {RUNS}/; {run.root} is elsewhere")
    return train_args(variant.preset, run.name, variant.overrides)


def _train_distributed(variant: Variant, run: RunDir, gpus: int, folds: list[int] | None) -> None:
    """`train` under torchrun, one process per GPU (rank 0 takes the run's lock)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", "-m", "pipeline", "--",
               "train", *_train_args(variant, run), "--fold", "all" if folds is None else ",".join(map(str, folds))]
    subprocess.run(command, check=True, env=dict(os.environ))


def _train_on_gpus(cfg, variant: Variant, run: RunDir, gpus: int, folds: list[int] | None, locked: bool, seconds: dict) -> None:
    """Several GPUs: one fold per GPU at once (train.multi_gpu folds, when there are folds to share), else DDP."""
    to_train = folds_to_share(cfg, folds, gpus)
    if to_train:
        devices = [str(i) for i in range(gpus)]
        _stage(run, locked, seconds, "train", lambda: train_in_parallel(_train_args(variant, run), to_train, devices, run.root))
    else:
        _timed(seconds, "train", lambda: _train_distributed(variant, run, gpus, folds))


def multi_gpu_mode(cfg, gpus: int) -> str:
    return "one process" if gpus <= 1 else ("one fold per GPU" if folds_to_share(cfg, None, gpus) else f"torchrun DDP, {gpus} GPUs")


def run_variant(variant: Variant, run: RunDir, folds: list[int] | None = None, submissions: Path | None = None, truth: Path | None = None,
                refresh: bool = False, allow_partial: bool | None = None, gpus: int = 1, locked: bool = True) -> Outcome:
    """Train (resuming what exists), infer, submit and score one variant. `refresh`: infer again although the
    test probabilities look up to date. `truth`: a test truth CSV to score the submission against (default: the
    data folder's test_truth.csv when it has one)."""
    cfg = load_config(variant.preset, list(variant.overrides))
    seconds: dict[str, float] = {}
    run.root.mkdir(parents=True, exist_ok=True)

    if gpus > 1:
        _train_on_gpus(cfg, variant, run, gpus, folds, locked, seconds)
    else:
        _stage(run, locked, seconds, "train", lambda: train(cfg, run.root, folds, resume=True))
    partial = folds is not None if allow_partial is None else allow_partial
    return score_run(run, submissions, truth, refresh, partial, locked, seconds)


def score_run(run: RunDir, submissions: Path | None = None, truth: Path | None = None, refresh: bool = False, allow_partial: bool = False,
              locked: bool = True, seconds: dict[str, float] | None = None, overrides: tuple[str, ...] = ()) -> Outcome:
    """A trained run's infer, submit and scores (what run_variant does after training). `overrides`: runtime
    keys for infer (e.g. infer.adapt_bn=true)."""
    seconds = {} if seconds is None else seconds
    cfg = run.load_config()
    oof = evaluate_run(run, tuned=False)  # threshold 0.5: nothing tuned on the images being scored
    post = _stage(run, locked, seconds, "infer", lambda: infer(run.root, force=refresh, allow_partial=allow_partial, overrides=overrides))
    if post.get("skipped"):
        post = dict(json.loads(run.postprocess.read_text()), skipped=True)
    submitted = _stage(run, locked, seconds, "submit", lambda: submit(run.root, submissions or run.root / "submissions"))
    truth = truth if truth is not None else Layout(Path(cfg.data.data_dir)).test_truth
    result = _timed(seconds, "evaluate", lambda: evaluate_submission(Path(submitted["path"]), truth)) if truth.exists() else None
    return Outcome(run, Path(submitted["path"]), post, oof,
                   None if result is None else float(result["scores"].mean()), result, seconds)


def choose_preset(preset: str | None, gpus: int) -> str:
    return preset or ("gpu-full" if gpus > 0 else "cpu-demo")


def main_job(data_dir: Path = Path("data"), preset: str | None = None, run_name: str | None = None, overrides: tuple[str, ...] = (),
             force: bool = False, demo_sizes: tuple[int, int] = DEMO_SIZES, log=print) -> Outcome:
    """What `./run.sh` does: the whole path on `data_dir` with the preset for this machine (gpu-full with a GPU,
    cpu-demo without), then the run's summary.json and report. `force` redoes every stage (the data is kept)."""
    started = time.perf_counter()
    gpus = usable_gpus(preset_given=preset is not None)
    preset = choose_preset(preset, gpus)
    k = load_config(preset, list(overrides)).data.folds  # the preset's split: cpu-demo holds out a tenth, gpu-full a fifth
    folds_file = folds_path(k)
    seconds = prepare_data(data_dir, folds_file, k, force=force, demo_sizes=demo_sizes, log=log)
    run = RunDir.named(run_name or preset)
    log(f"== preset: {preset} ({gpus} GPU(s) visible to torch) ==")
    if overrides:
        log(f"== overrides: {';'.join(overrides)} (run {run.name}) ==")
    if force and run.root.exists():
        shutil.rmtree(run.root)
    variant = Variant(preset, tuple(overrides) + (f"data.data_dir={data_dir}", f"data.folds_file={folds_file}"))
    log(f"== train == {run.root} ({multi_gpu_mode(load_config(preset, list(variant.overrides)), gpus)}; resumes what exists)")
    outcome = run_variant(variant, run, refresh=force, allow_partial=False, gpus=gpus, submissions=Path("submissions"))
    post = outcome.postprocess
    log("== infer == " + ("test probabilities up to date" if post.get("skipped") else
                            f"folds {', '.join(map(str, post['folds']))}, threshold {post['best_threshold']}, min area {post['best_min_area']}, "
                            f"OOF score {post['oof_score']:.4f}"))
    log(f"== submit == {outcome.submission}")
    seconds.update(outcome.seconds)
    seconds["total"] = time.perf_counter() - started
    truth = Layout(data_dir).test_truth
    run_summary(run, outcome.submission, truth if truth.exists() else None, timings={k: round(v) for k, v in seconds.items()})
    index = report(run, force)
    log(f"== report == {index}")
    log(f"done in {seconds['total']:.0f} s")
    log("local test " + (f"score {outcome.test_score:.4f}" if outcome.test_score is not None else "(no truth file: the real competition scores on Kaggle)"))
    log(f"submission: {outcome.submission}")
    return outcome
