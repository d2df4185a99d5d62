"""`folds`: k-fold split of the training ids, stratified on coverage class (or depth-sorted round-robin)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from pipeline.config import DataConfig
from pipeline.data.prep import load_train_cache
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_table


def assign_folds(coverage_class: np.ndarray, depth: np.ndarray, k: int, seed: int, by: str = "coverage",
                 groups: np.ndarray | None = None) -> np.ndarray:
    """Fold index per image. With `groups` (by coverage), images of one group share a fold (StratifiedGroupKFold)."""
    n = coverage_class.size
    if k < 2 or k > n:
        raise PipelineError(f"folds: k must be between 2 and the number of images ({n}), got {k}")
    folds = np.empty(n, dtype=np.int64)
    if by == "coverage":
        splitter = (StratifiedKFold if groups is None else StratifiedGroupKFold)(n_splits=k, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            # a coverage class with fewer than k images only spreads over fewer folds; that is fine
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(splitter.split(np.zeros(n), coverage_class, groups))
        for fold, (_, held_out) in enumerate(splits):
            folds[held_out] = fold
    elif groups is not None:
        raise PipelineError("folds: --group-mosaic works with --by coverage")
    elif by == "depth":
        order = np.argsort(depth, kind="stable")
        folds[order] = np.arange(n) % k
    else:
        raise PipelineError(f"folds: --by must be 'coverage' or 'depth', got {by!r}")
    return folds


def folds_path(k: int) -> Path:
    """Where `./run.sh` keeps a k-fold split: data.folds_file's default (folds/folds.csv) for data.folds' default
    (five), folds/folds-k{k}.csv beside it otherwise, so presets with different k share a data folder without
    replacing each other's split."""
    default = DataConfig()
    return Path(default.folds_file) if k == default.folds else Path(default.folds_file).with_name(f"folds-k{k}.csv")


def read_folds(path: Path) -> dict[str, int]:
    if not Path(path).exists():
        raise PipelineError(f"{path} is missing: run `python -m pipeline folds --data DIR --out {path}` first")
    table = read_table(path, ("id", "fold"))  # a missing column or unreadable file names the file
    try:
        return dict(zip(table["id"], table["fold"].astype(int).tolist()))
    except ValueError as error:
        raise PipelineError(f"{path}: a fold is not a whole number ({error}); rerun `python -m pipeline folds --force`") from None


def mosaic_groups(data_dir: Path, ids: np.ndarray) -> np.ndarray:
    """Each training tile's mosaic (DATA/mosaic.csv): neighbours would leak across folds otherwise."""
    from pipeline.data.mosaic import read_mosaic

    table = read_mosaic(data_dir)
    mosaic_of = dict(zip(table["id"], table["mosaic"]))
    missing = [i for i in ids.tolist() if i not in mosaic_of]
    if missing:
        raise PipelineError(f"{Path(data_dir) / 'mosaic.csv'} does not list training id {missing[0]}; rerun `python -m pipeline mosaic --data {data_dir}`")
    return np.array([mosaic_of[i] for i in ids.tolist()])


def make_folds(data_dir: Path, out: Path, k: int = 5, seed: int = 42, by: str = "coverage", force: bool = False,
               group_mosaic: bool = False) -> dict[str, int]:
    train = load_train_cache(data_dir)
    groups = mosaic_groups(data_dir, train.ids) if group_mosaic else None
    folds = assign_folds(train.coverage_class, train.depth, k, seed, by, groups)
    assignment = {str(i): int(f) for i, f in zip(train.ids, folds)}
    out = Path(out)
    if out.exists():
        existing = read_folds(out)
        if existing == assignment:
            return assignment
        if not force:
            raise PipelineError(
                f"{out} already holds a different split; folds are part of an experiment's identity. "
                "Pass --force to replace it (runs trained on the old split no longer match)"
            )
    write_table(out, pd.DataFrame(columns=["id", "fold"], data=sorted(assignment.items(), key=lambda item: (item[1], item[0]))))
    return assignment


def number_of_folds(folds_file: Path) -> int:
    return max(read_folds(folds_file).values()) + 1
