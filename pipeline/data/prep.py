"""`prep`: validate a Kaggle-layout data folder and cache it as arrays in DIR/cache/ (a no-op when unchanged)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.competition.coverage import coverage, coverage_class
from pipeline.competition.rle import decode
from pipeline.data.layout import IMAGE_SIZE, Layout, check_layout, id_mismatch, read_depths, read_image, read_mask
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, save_npz, write_json

CACHE_VERSION = 1


@dataclass
class TrainSet:
    ids: np.ndarray  # (N,) str
    images: np.ndarray  # (N, 101, 101) uint8
    masks: np.ndarray  # (N, 101, 101) bool
    depth: np.ndarray  # (N,) float32
    coverage: np.ndarray  # (N,) float32
    coverage_class: np.ndarray  # (N,) int64 in 0..10
    is_constant: np.ndarray  # (N,) bool


@dataclass
class TestSet:
    ids: np.ndarray
    images: np.ndarray
    depth: np.ndarray
    is_constant: np.ndarray


def fingerprint(layout: Layout) -> str:
    """Names, sizes and modification times of every input file: cheap, and changes when any input does."""
    digest = hashlib.sha256(str(CACHE_VERSION).encode())
    files = [layout.train_csv, layout.depths_csv, layout.sample_submission]
    for folder in ("train/images", "train/masks", "test/images"):
        files.extend(sorted((layout.root / folder).glob("*.png")))
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(layout.root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read_all(reader, paths: list[Path]) -> list[np.ndarray]:
    # PNG decoding releases the GIL, so two threads use both cores without process start-up costs
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(reader, paths, chunksize=64))


def _is_constant(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(images.shape[0], -1)
    return (flat == flat[:, :1]).all(axis=1)


def _depths_for(ids, depths: dict[str, float], path: Path) -> np.ndarray:
    missing = [i for i in ids if i not in depths]
    if missing:
        raise PipelineError(f"{path}: no depth for {len(missing)} ids (first: {missing[0]}); add their z values")
    return np.array([depths[i] for i in ids], np.float32)


def unlisted_train_ids(layout: Layout, ids) -> list[str]:
    """Train images that have no row in train.csv."""
    return sorted({p.stem for p in (layout.root / "train" / "images").glob("*.png")} - set(ids))


def load_train(layout: Layout, depths: dict[str, float], allow_unlisted: bool = False) -> TrainSet:
    columns = read_table(layout.train_csv, ("id", "rle_mask"))
    ids = columns["id"].tolist()
    if not ids:
        raise PipelineError(f"{layout.train_csv} lists no images; it needs one row per training image")
    missing = [i for i in ids if not layout.train_image(i).is_file()]
    if missing:
        raise PipelineError(
            f"{len(missing)} ids of {layout.train_csv} have no image in {layout.root / 'train' / 'images'} (first: {missing[0]}); "
            "restore the images or remove their rows"
        )
    unlisted = unlisted_train_ids(layout, ids)
    if unlisted and not allow_unlisted:  # a truncated train.csv would otherwise silently shrink the training set
        raise PipelineError(
            f"{len(unlisted)} images in {layout.root / 'train' / 'images'} have no row in {layout.train_csv} (first: {unlisted[0]}); "
            "restore the full CSV, or pass --allow-unlisted to train on the listed ones only"
        )
    images = np.stack(_read_all(read_image, [layout.train_image(i) for i in ids]))
    masks = np.stack(_read_all(read_mask, [layout.train_mask(i) for i in ids]))
    for index, (image_id, rle) in enumerate(zip(ids, columns["rle_mask"])):
        try:
            from_csv = decode(rle, (IMAGE_SIZE, IMAGE_SIZE), image_id)
        except ValueError as error:
            raise PipelineError(f"{layout.train_csv}: {error}; fix that row") from None
        if not np.array_equal(from_csv, masks[index]):
            differ = int((from_csv != masks[index]).sum())
            raise PipelineError(
                f"{layout.train_mask(image_id)} disagrees with its RLE in {layout.train_csv} on {differ} pixels; "
                "restore the original mask or row"
            )
    cover = coverage(masks).astype(np.float32)
    return TrainSet(
        ids=np.array(ids),
        images=images,
        masks=masks,
        depth=_depths_for(ids, depths, layout.depths_csv),
        coverage=cover,
        coverage_class=coverage_class(cover),
        is_constant=_is_constant(images),
    )


def load_test(layout: Layout, depths: dict[str, float]) -> TestSet:
    expected = read_table(layout.sample_submission, ("id", "rle_mask"))["id"].tolist()
    present = sorted(p.stem for p in layout.test_image_dir.glob("*.png"))
    mismatch = id_mismatch(
        expected,
        present,
        f"{{n}} ids of {layout.sample_submission} have no image in {layout.test_image_dir}",
        f"{{n}} images in {layout.test_image_dir} are not in {layout.sample_submission}",
    )
    if mismatch:
        raise PipelineError(f"test images and sample_submission.csv disagree: {mismatch}; restore the missing files")
    images = np.stack(_read_all(read_image, [layout.test_image(i) for i in expected]))
    return TestSet(
        ids=np.array(expected),
        images=images,
        depth=_depths_for(expected, depths, layout.depths_csv),
        is_constant=_is_constant(images),
    )


def cache_paths(layout: Layout) -> dict[str, Path]:
    return {
        "train": layout.cache_dir / "train.npz",
        "test": layout.cache_dir / "test.npz",
        "manifest": layout.cache_dir / "manifest.json",
    }


def prep(data_dir: Path, force: bool = False, allow_unlisted: bool = False) -> dict:
    """Validate and cache; returns the manifest. Skips all work when the inputs are unchanged."""
    layout = Layout(Path(data_dir))
    check_layout(layout)
    paths = cache_paths(layout)
    stamp = fingerprint(layout)
    if not force and paths["manifest"].exists() and paths["train"].exists() and paths["test"].exists():
        manifest = json.loads(paths["manifest"].read_text())
        if manifest.get("fingerprint") == stamp:
            manifest["skipped"] = True
            return manifest
    depths = read_depths(layout.depths_csv)
    train = load_train(layout, depths, allow_unlisted)
    test = load_test(layout, depths)
    save_npz(paths["train"], **train.__dict__)
    save_npz(paths["test"], **test.__dict__)
    manifest = {
        "fingerprint": stamp,
        "train_images": int(train.ids.size),
        "unlisted_train_images": len(unlisted_train_ids(layout, train.ids.tolist())),
        "test_images": int(test.ids.size),
        "empty_fraction": float((train.coverage == 0).mean()),
        "constant_images": int(train.is_constant.sum()),
        "coverage_class_counts": np.bincount(train.coverage_class, minlength=11).tolist(),
    }
    write_json(paths["manifest"], manifest)  # last: its presence marks a complete cache
    manifest["skipped"] = False
    return manifest


def _load_cache(data_dir: Path, split: str, cls):
    path = cache_paths(Layout(Path(data_dir)))[split]
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `python -m pipeline prep --data {data_dir}` first")
    with np.load(path) as arrays:
        return cls(**{k: arrays[k] for k in arrays.files})


def load_train_cache(data_dir: Path) -> TrainSet:
    return _load_cache(data_dir, "train", TrainSet)


def load_test_cache(data_dir: Path) -> TestSet:
    return _load_cache(data_dir, "test", TestSet)
