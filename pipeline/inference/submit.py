"""`submit`: post-processed test masks as an RLE CSV in sample_submission's order, checked by decoding it back."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.rle import decode_many, encode_many
from pipeline.data.layout import IMAGE_SIZE, Layout
from pipeline.data.prep import load_test_cache, load_train_cache
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_table
from pipeline.inference.mosaic_rules import above_map, apply_rule, known_masks
from pipeline.inference.postprocess import PostProcess
from pipeline.rundir import RunDir


def _fresh_path(out_dir: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{name}-{stamp}.csv"
    counter = 1
    while path.exists():  # never overwrite an earlier submission
        path = out_dir / f"{name}-{stamp}-{counter}.csv"
        counter += 1
    return path


def _latest_identical(out_dir: Path, name: str, rows: list[tuple[str, str]]) -> Path | None:
    """The newest earlier submission of this run, if it holds exactly these rows."""
    earlier = sorted(out_dir.glob(f"{name}-*.csv"), key=lambda path: path.stat().st_mtime)
    if not earlier:
        return None
    table = read_table(earlier[-1], ("id", "rle_mask"))
    return earlier[-1] if list(zip(table["id"], table["rle_mask"])) == rows else None


def submit(run_dir: Path, out_dir: Path = Path("submissions"), force: bool = False) -> dict:
    run, out_dir = RunDir(run_dir), Path(out_dir)
    if out_dir.suffix == ".csv" or out_dir.is_file():
        raise PipelineError(f"submit --out {out_dir} must be a folder (the file is named RUN-<time>.csv inside it); pass its folder")
    cfg = run.load_config()
    run.require_inferred()
    post = PostProcess.load(run.postprocess)
    probs = np.load(run.test_probs).astype(np.float32)
    prob_ids = read_table(run.test_ids, ("id",))["id"].tolist()
    layout = Layout(Path(cfg.data.data_dir))
    order = read_table(layout.sample_submission, ("id", "rle_mask"))["id"].tolist()
    test = load_test_cache(layout.root)
    if sorted(prob_ids) != sorted(order):
        raise PipelineError(f"{run.test_ids} does not match {layout.sample_submission}; rerun `infer --force`")
    position = {image_id: i for i, image_id in enumerate(prob_ids)}
    constant = dict(zip(test.ids.tolist(), test.is_constant.tolist()))
    index = np.array([position[i] for i in order])
    empty = None
    if post.empty_threshold is not None:
        if not run.test_empty.exists():
            raise PipelineError(f"{run.test_empty} is missing but postprocess.json tunes an empty gate; rerun `infer --force`")
        empty = np.load(run.test_empty)[index]
    is_constant = np.array([constant[i] for i in order])
    masks = post.masks(probs[index], is_constant, empty)
    applied = list(post.mosaic_rules)
    if applied:  # mosaic rules that raised the OOF score (infer measured them)
        above = above_map(layout.root)
        if above is None:
            raise PipelineError(f"postprocess.json applies mosaic rules but {layout.root / 'mosaic.csv'} is missing; rerun `mosaic` or `infer --force`")
        train = load_train_cache(layout.root)
        for rule in applied:
            known = known_masks(train.ids, train.masks, order, masks)
            masks, _ = apply_rule(rule, order, masks, is_constant, above, known)
    rles = encode_many(masks)
    rows = list(zip(order, rles))
    identical = None if force else _latest_identical(out_dir, run.name, rows)
    path = identical or _fresh_path(out_dir, run.name)
    if identical is None:
        write_table(path, pd.DataFrame(rows, columns=["id", "rle_mask"]))
    written = read_table(path, ("id", "rle_mask"))
    if written["id"].tolist() != order or not np.array_equal(decode_many(written["rle_mask"].tolist(), written["id"].tolist(), (IMAGE_SIZE, IMAGE_SIZE)), masks):
        raise PipelineError(f"{path} did not decode back to the masks it was written from; please report this")
    coverage = masks.reshape(len(masks), -1).mean(axis=1)
    return {
        "path": str(path),
        "unchanged": identical is not None,
        "images": len(order),
        "empty_fraction": float((coverage == 0).mean()),
        "mean_coverage": float(coverage.mean()),
        "threshold": post.threshold,
        "min_area": post.min_area,
        "mosaic_rules": applied,
    }
