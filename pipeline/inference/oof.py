"""Collect a run's out-of-fold predictions and line them up with the cached truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.prep import TrainSet
from pipeline.errors import PipelineError
from pipeline.fileio import read_table
from pipeline.rundir import RunDir


@dataclass
class OOF:
    ids: np.ndarray
    probs: np.ndarray  # (N,101,101) float32
    truth: np.ndarray  # (N,101,101) bool
    images: np.ndarray
    is_constant: np.ndarray
    coverage_class: np.ndarray
    fold: np.ndarray
    empty: np.ndarray | None = None  # (N,) P(mask empty) from the empty-mask head, when the model has one


def load_oof(run_dir: Path | RunDir, train: TrainSet) -> OOF:
    run = RunDir(run_dir)
    folds = run.finished_folds()
    if not folds:
        raise PipelineError(f"{run.root} has no fold with oof.npy: train at least one fold (python -m pipeline train --run {run.name})")
    position = {image_id: i for i, image_id in enumerate(train.ids)}
    ids, probs, fold_of, empty = [], [], [], []
    for fold in folds:
        fold_ids = read_table(fold.oof_ids, ("id",))["id"].tolist()
        fold_probs = np.load(fold.oof)
        if len(fold_ids) != len(fold_probs):
            raise PipelineError(f"{fold.root}: oof_ids.csv and oof.npy disagree in length; rerun that fold's training")
        unknown = [i for i in fold_ids if i not in position]
        if unknown:
            raise PipelineError(f"{fold.root}: OOF id {unknown[0]} is not in the prep cache; the run used other data")
        ids.extend(fold_ids)
        probs.append(fold_probs.astype(np.float32))
        empty.append(np.load(fold.oof_empty).astype(np.float32) if fold.oof_empty.exists() else None)
        fold_of.extend([fold.number] * len(fold_ids))
    index = np.array([position[i] for i in ids])
    return OOF(
        ids=np.array(ids),
        probs=np.concatenate(probs),
        truth=train.masks[index],
        images=train.images[index],
        is_constant=train.is_constant[index],
        coverage_class=train.coverage_class[index],
        fold=np.array(fold_of),
        empty=None if any(e is None for e in empty) else np.concatenate(empty),  # the gate needs every fold's
    )
