"""`holdout`: carve a local mini competition out of any labelled Kaggle layout: some train ids keep their
masks, others become test images whose masks go to test_truth.csv, so `evaluate` scores the whole path.

Two shifts a real survey has, for studies of adaptation at test time: `split="depth"` trains on the shallowest
two thirds by z and tests on the deepest third; a `ContrastCurve` writes the test images through another
amplitude response (gain around mid-grey, gamma). DATA/holdout.json records how the folder was carved."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.layout import Layout, png_bytes, read_depths, read_image
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_bytes, write_json, write_table

SPLITS = ("random", "depth")


@dataclass(frozen=True)
class ContrastCurve:
    """Another survey's amplitude response: y = 255 * clip(0.5 + gain * ((x/255)**gamma - 0.5), 0, 1).
    gain < 1 flattens the contrast around mid-grey, gamma != 1 bends the grey levels; (1, 1) is the identity."""

    gain: float = 1.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if not (self.gain > 0 and self.gamma > 0):
            raise PipelineError(f"holdout: --test-gain {self.gain} and --test-gamma {self.gamma} must both be > 0")

    @property
    def identity(self) -> bool:
        return self.gain == 1.0 and self.gamma == 1.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The uint8 image through the curve (uint8, same shape)."""
        levels = (image.astype(np.float64) / 255.0) ** self.gamma
        return np.rint(255.0 * np.clip(0.5 + self.gain * (levels - 0.5), 0.0, 1.0)).astype(np.uint8)


def draw_ids(ids: list[str], depth_of: dict[str, float], n_test: int, n_train: int | None, seed: int, split: str) -> tuple[list[str], list[str]]:
    """(train ids, test ids), sorted. random: both drawn from all ids. depth: the test ids from the deepest third
    by z (ties by id), the train ids from the shallower two thirds (`n_train` None: all of them)."""
    if split not in SPLITS:
        raise PipelineError(f"holdout: unknown --split {split!r}; choose from {', '.join(SPLITS)}")
    rng = np.random.default_rng(seed)
    if split == "random":
        test_pool = train_pool = ids
    else:
        by_depth = sorted(ids, key=lambda i: (depth_of[i], i))
        cut = len(ids) - -(-len(ids) // 3)  # the deepest ceil(n/3) ids are the test pool
        train_pool, test_pool = by_depth[:cut], by_depth[cut:]
    if split == "random":
        n_train = len(ids) - n_test if n_train is None else n_train
        if n_test < 1 or n_train < 1 or n_test + n_train > len(ids):
            raise PipelineError(f"holdout: --test {n_test} and --train {n_train} must be >= 1 and sum to at most the {len(ids)} labelled ids")
        order = rng.permutation(len(ids))
        return sorted(ids[i] for i in order[n_test : n_test + n_train]), sorted(ids[i] for i in order[:n_test])
    n_train = len(train_pool) if n_train is None else n_train
    if not (1 <= n_test <= len(test_pool)) or not (1 <= n_train <= len(train_pool)):
        raise PipelineError(f"holdout --split depth: --test {n_test} must be 1..{len(test_pool)} (the deepest third) and --train {n_train} "
                            f"1..{len(train_pool)} (the shallower two thirds) of the {len(ids)} labelled ids")
    test = [test_pool[i] for i in rng.permutation(len(test_pool))[:n_test]]
    train = [train_pool[i] for i in rng.permutation(len(train_pool))[:n_train]]
    return sorted(train), sorted(test)


def carve_holdout(source: Path, out: Path, n_test: int, seed: int = 0, n_train: int | None = None, force: bool = False,
                  split: str = "random", test_curve: ContrastCurve = ContrastCurve()) -> dict:
    """Draw `n_test` held-out ids (and `n_train` train ids, default all the rest) at random with `seed`, from
    all ids or (split depth) from the deepest third and the rest; the test images pass through `test_curve`."""
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
    missing_depth = [i for i in ids if i not in depth_of]
    if missing_depth:
        raise PipelineError(f"{src.depths_csv} has no depth for {len(missing_depth)} train ids (first: {missing_depth[0]}); use the complete depths.csv")
    try:
        train_ids, test_ids = draw_ids(ids, depth_of, n_test, n_train, seed, split)
    except PipelineError as error:
        raise PipelineError(f"{error} in {src.train_csv}") from None
    if dst.root.exists() and force:
        for folder in ("train", "test", "cache"):
            shutil.rmtree(dst.root / folder, ignore_errors=True)
    for folder in ("train/images", "train/masks", "test/images"):
        (dst.root / folder).mkdir(parents=True, exist_ok=True)
    for image_id in train_ids:
        shutil.copyfile(src.train_image(image_id), dst.train_image(image_id))
        shutil.copyfile(src.train_mask(image_id), dst.train_mask(image_id))
    for image_id in test_ids:
        if test_curve.identity:
            shutil.copyfile(src.train_image(image_id), dst.test_image(image_id))
        else:  # stored as the competition stores images: RGB with R=G=B
            write_bytes(dst.test_image(image_id), png_bytes(np.repeat(test_curve(read_image(src.train_image(image_id)))[..., None], 3, axis=-1)))
    # CSVs last, train.csv the very last: its presence marks a complete folder
    write_table(dst.depths_csv, pd.DataFrame(columns=["id", "z"], data=[(i, _plain(depth_of[i])) for i in sorted(train_ids + test_ids)]))
    write_table(dst.sample_submission, pd.DataFrame(columns=["id", "rle_mask"], data=[(i, "1 1") for i in test_ids]))
    write_table(dst.test_truth, pd.DataFrame(columns=["id", "rle_mask"], data=[(i, rle_of[i]) for i in test_ids]))
    empty_test = sum(1 for i in test_ids if not rle_of[i])
    depths = lambda chosen: [float(depth_of[i]) for i in chosen]  # noqa: E731
    summary = {"train": len(train_ids), "test": len(test_ids), "test_empty_fraction": empty_test / len(test_ids), "seed": seed,
               "split": split, "test_curve": asdict(test_curve), "source": str(src.root.resolve()),
               "train_depth": [min(depths(train_ids)), max(depths(train_ids))], "test_depth": [min(depths(test_ids)), max(depths(test_ids))]}
    write_json(dst.root / "holdout.json", summary)
    write_table(dst.train_csv, pd.DataFrame(columns=["id", "rle_mask"], data=[(i, rle_of[i]) for i in train_ids]))
    return summary | {"root": str(dst.root)}


def _plain(z: float):
    return int(z) if float(z).is_integer() else z
