"""Fold-parallel training: N GPUs train N folds at once, one `train` process per GPU, each seeing its one GPU
through CUDA_VISIBLE_DEVICES, every fold trained exactly as one GPU trains it.

What a competitor wants from several GPUs for k-fold CV of 101 px images: no step is split, so the recipe (the
batch per step, BatchNorm statistics over the whole batch, the learning rate) is the one-GPU recipe and a fold's
weights do not depend on how many GPUs there were. Data-parallel DDP (torchrun, `train.multi_gpu: ddp`) splits
each step's batch over the GPUs instead: for one fold that must finish sooner, at 1/N of the batch per GPU.

The parent holds the run's writer lock for the job; the children are told so (LOCK_HELD) and do not take it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.data.folds import number_of_folds
from pipeline.errors import PipelineError

LOCK_HELD = "PLASTIC_SALT_LOCK_HELD"  # in a child's environment: its parent holds the run's writer lock
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding pipeline/: the children import this code


def folds_to_share(cfg, folds: list[int] | None, gpus: int) -> list[int] | None:
    """The folds to train one per GPU at once (several GPUs, train.multi_gpu folds, more than one fold to train;
    `folds` None: the recipe's, else all of the split's), or None: one process, or DDP."""
    if gpus <= 1 or cfg.train.multi_gpu != "folds":
        return None
    to_train = folds or cfg.train.folds or list(range(number_of_folds(Path(cfg.data.folds_file))))
    return to_train if len(to_train) > 1 else None


def train_args(preset: str, run_name: str, overrides, resume: bool = True) -> list[str]:
    """The `train` command line (without --fold) of a run, for the processes that train it on several GPUs."""
    return ["--config", preset, "--run", run_name, *(["--resume"] if resume else []), *[part for override in overrides for part in ("--set", override)]]


def assign(folds: list[int], workers: int) -> list[list[int]]:
    """Folds dealt round-robin to at most `workers` workers (none left empty)."""
    workers = max(1, min(workers, len(folds)))
    return [folds[i::workers] for i in range(workers)]


def train_in_parallel(train_args: list[str], folds: list[int], devices: list[str], run_dir: Path, log=print) -> None:
    """`python -m pipeline train TRAIN_ARGS --fold F,...` once per device, CUDA_VISIBLE_DEVICES=device, all at
    once; waits for every child. Each child's output goes to RUN/fold-parallel-K.log; a child that fails is named
    with its device, folds, log and the log's last lines, after the others have ended."""
    run_dir.mkdir(parents=True, exist_ok=True)
    children = []
    for worker, (device, share) in enumerate(zip(devices, assign(folds, len(devices)))):
        log_path = run_dir / f"fold-parallel-{worker}.log"
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=device, PYTHONPATH=os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])),
                   **{LOCK_HELD: "1"})
        command = [sys.executable, "-m", "pipeline", "train", *train_args, "--fold", ",".join(map(str, share))]
        handle = open(log_path, "w")
        children.append((device, share, log_path, handle, subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)))
        log(f"train: folds {','.join(map(str, share))} on GPU {device or '(none)'} -> {log_path}")
    failed = []
    for device, share, log_path, handle, process in children:
        code = process.wait()
        handle.close()
        if code != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            failed.append(f"folds {','.join(map(str, share))} on GPU {device or '(none)'} exited {code} (see {log_path}): {' | '.join(tail)}")
    if failed:
        raise PipelineError("fold-parallel training: " + "; ".join(failed) + ". The finished folds are kept: rerun to resume the rest")
