"""`submit`: post-processed test masks as an RLE CSV in sample_submission's order, checked by decoding it back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.rle import decode_many, encode_many
from pipeline.config import load_run_config
from pipeline.data.layout import IMAGE_SIZE, Layout
from pipeline.data.prep import load_test_cache, load_train_cache
from pipeline.fileio import PipelineError, read_table, write_table
from pipeline.inference.mosaic_rules import above_map, apply_rule, known_masks
from pipeline.inference.postprocess import to_masks


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
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.suffix == ".csv" or out_dir.is_file():
        raise PipelineError(f"submit --out {out_dir} must be a folder (the file is named RUN-<time>.csv inside it); pass its folder")
    cfg = load_run_config(run_dir)
    for needed in ("test_probs.npy", "test_ids.csv", "postprocess.json"):
        if not (run_dir / needed).exists():
            raise PipelineError(f"{run_dir / needed} is missing: run `python -m pipeline infer --run {run_dir.name}` first")
    post = json.loads((run_dir / "postprocess.json").read_text())
    probs = np.load(run_dir / "test_probs.npy").astype(np.float32)
    prob_ids = read_table(run_dir / "test_ids.csv", ("id",))["id"].tolist()
    layout = Layout(Path(cfg.data.data_dir))
    order = read_table(layout.sample_submission, ("id", "rle_mask"))["id"].tolist()
    test = load_test_cache(layout.root)
    if sorted(prob_ids) != sorted(order):
        raise PipelineError(f"{run_dir / 'test_ids.csv'} does not match {layout.sample_submission}; rerun `infer --force`")
    position = {image_id: i for i, image_id in enumerate(prob_ids)}
    constant = dict(zip(test.ids.tolist(), test.is_constant.tolist()))
    index = np.array([position[i] for i in order])
    gate = post.get("best_empty_threshold")
    empty = None
    if gate is not None:
        if not (run_dir / "test_empty.npy").exists():
            raise PipelineError(f"{run_dir / 'test_empty.npy'} is missing but postprocess.json tunes an empty gate; rerun `infer --force`")
        empty = np.load(run_dir / "test_empty.npy")[index]
    is_constant = np.array([constant[i] for i in order])
    masks = to_masks(probs[index], post["best_threshold"], post["best_min_area"], is_constant, empty, gate)
    applied = [rule for rule, result in post.get("mosaic_rules", {}).items() if result["applied"]]
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
    identical = None if force else _latest_identical(out_dir, run_dir.name, rows)
    path = identical or _fresh_path(out_dir, run_dir.name)
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
        "threshold": post["best_threshold"],
        "min_area": post["best_min_area"],
        "mosaic_rules": applied,
    }
