"""`holdout`: carve a local mini competition out of any labelled Kaggle layout: some train ids keep their
masks, others become test images whose masks go to test_truth.csv, so `evaluate` scores the whole path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.layout import Layout, read_depths
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_table


def carve_holdout(source: Path, out: Path, n_test: int, seed: int = 0, n_train: int | None = None, force: bool = False) -> dict:
    """Draw `n_test` held-out ids (and `n_train` train ids, default all the rest) at random with `seed`."""
    src, dst = Layout(Path(source)), Layout(Path(out))
    if not src.train_csv.is_file():
        raise PipelineError(f"{src.train_csv} is missing: --data must be a labelled Kaggle layout (train.csv, depths.csv, train/images, train/masks)")
    if dst.train_csv.exists() and not force:
        raise PipelineError(f"{dst.train_csv} already exists; holdout will not overwrite a data folder (pass --force to replace it)")
    if dst.root.resolve() == src.root.resolve():
        raise PipelineError(f"--out {dst.root} is the source folder; pick a new folder for the mini competition")
    labels = read_table(src.train_csv, ("id", "rle_mask"))
    rle_of = dict(zip(labels["id"], labels["rle_mask"]))
    depth_of = read_depths(src.depths_csv)
    ids = sorted(rle_of)
    n_train = len(ids) - n_test if n_train is None else n_train
    if n_test < 1 or n_train < 1 or n_test + n_train > len(ids):
        raise PipelineError(f"holdout: --test {n_test} and --train {n_train} must be >= 1 and sum to at most the {len(ids)} labelled ids in {src.train_csv}")
    missing_depth = [i for i in ids if i not in depth_of]
    if missing_depth:
        raise PipelineError(f"{src.depths_csv} has no depth for {len(missing_depth)} train ids (first: {missing_depth[0]}); use the complete depths.csv")
    order = np.random.default_rng(seed).permutation(len(ids))
    test_ids = sorted(ids[i] for i in order[:n_test])
    train_ids = sorted(ids[i] for i in order[n_test : n_test + n_train])
    if dst.root.exists() and force:
        for folder in ("train", "test", "cache"):
            shutil.rmtree(dst.root / folder, ignore_errors=True)
    for folder in ("train/images", "train/masks", "test/images"):
        (dst.root / folder).mkdir(parents=True, exist_ok=True)
    for image_id in train_ids:
        shutil.copyfile(src.train_image(image_id), dst.train_image(image_id))
        shutil.copyfile(src.train_mask(image_id), dst.train_mask(image_id))
    for image_id in test_ids:
        shutil.copyfile(src.train_image(image_id), dst.test_image(image_id))
    # CSVs last, train.csv the very last: its presence marks a complete folder
    write_table(dst.depths_csv, pd.DataFrame(columns=["id", "z"], data=[(i, _plain(depth_of[i])) for i in sorted(train_ids + test_ids)]))
    write_table(dst.sample_submission, pd.DataFrame(columns=["id", "rle_mask"], data=[(i, "1 1") for i in test_ids]))
    write_table(dst.test_truth, pd.DataFrame(columns=["id", "rle_mask"], data=[(i, rle_of[i]) for i in test_ids]))
    write_table(dst.train_csv, pd.DataFrame(columns=["id", "rle_mask"], data=[(i, rle_of[i]) for i in train_ids]))
    empty_test = sum(1 for i in test_ids if not rle_of[i])
    return {"train": len(train_ids), "test": len(test_ids), "test_empty_fraction": empty_test / len(test_ids), "seed": seed, "root": str(dst.root)}


def _plain(z: float):
    return int(z) if float(z).is_integer() else z
