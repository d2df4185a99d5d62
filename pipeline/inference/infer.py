"""`infer`: TTA x fold-ensemble test probabilities, and post-processing tuned on the OOF predictions."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.config import load_run_config
from pipeline.data.folds import number_of_folds
from pipeline.data.prep import load_test_cache, load_train_cache
from pipeline.devices import choose_device
from pipeline.fileio import PipelineError, save_npy, write_table, write_json
from pipeline.inference.oof import load_oof
from pipeline.inference.mosaic_rules import above_map, known_masks, measure_rules
from pipeline.inference.postprocess import to_masks, tune
from pipeline.models.factory import build_model
from pipeline.training.checkpoint import fold_checkpoints, predict_with_checkpoints


def checkpoints(run_dir: Path) -> list[Path]:
    """Each fold's checkpoint(s) that infer.checkpoint names (last.pt by default; snapshots: all of them)."""
    cfg = load_run_config(run_dir)
    found = [path for fold_dir in sorted(Path(run_dir).glob("fold_*")) for path in fold_checkpoints(cfg, fold_dir) if path.exists()]
    if not found:
        raise PipelineError(f"{run_dir} has no fold checkpoint for infer.checkpoint {cfg.infer.checkpoint}: train the run first "
                            f"(python -m pipeline train --run {Path(run_dir).name})")
    return found


def ensemble_probs(run_dir: Path, images: np.ndarray, depth: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over folds (infer.checkpoint) and TTA views of the test probabilities, (N,101,101) float32, and of
    the empty-mask probabilities (N,) (None without an empty-mask head).

    The plastic lifetime trace comes from each checkpoint and follows its `inference_plasticity` setting.
    """
    cfg = load_run_config(run_dir)
    model = build_model(cfg).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return predict_with_checkpoints(model, checkpoints(run_dir), cfg, images, depth, device)


def fold_numbers(paths: list[Path]) -> list[int]:
    return sorted({int(path.parent.name.split("_")[1]) for path in paths})


def infer(run_dir: Path, force: bool = False, allow_partial: bool = False) -> dict:
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    paths = checkpoints(run_dir)
    found = fold_numbers(paths)
    expected = cfg.train.folds or list(range(number_of_folds(Path(cfg.data.folds_file))))
    missing = sorted(set(expected) - set(found))
    if missing and not allow_partial:
        raise PipelineError(
            f"{run_dir} has folds {', '.join(map(str, found))} of {len(expected)}; fold(s) {', '.join(map(str, missing))} are missing. "
            f"Train them (python -m pipeline train --run {run_dir.name} --fold {','.join(map(str, missing))}) or pass --allow-partial"
        )
    outputs = [run_dir / "test_probs.npy", run_dir / "test_ids.csv", run_dir / "postprocess.json"]
    newest_checkpoint = max(p.stat().st_mtime for p in paths)
    if not force and all(p.exists() for p in outputs) and min(p.stat().st_mtime for p in outputs) > newest_checkpoint:
        return {"skipped": True, "folds": found}
    data_dir = Path(cfg.data.data_dir)
    train, test = load_train_cache(data_dir), load_test_cache(data_dir)
    oof = load_oof(run_dir, train)
    post = tune(oof.probs, oof.truth, oof.is_constant, cfg.infer.thresholds, cfg.infer.min_areas, oof.empty, cfg.infer.empty_thresholds)
    post["oof_images"] = int(len(oof.ids))
    post["folds"], post["checkpoint"] = found, cfg.infer.checkpoint
    started = time.perf_counter()
    probs, empty = ensemble_probs(run_dir, test.images, test.depth, choose_device(cfg.train.device))
    seconds = time.perf_counter() - started
    save_npy(run_dir / "test_probs.npy", probs.astype(np.float16))
    empty_path = run_dir / "test_empty.npy"
    if empty is not None:
        save_npy(empty_path, empty)
    elif empty_path.exists():
        empty_path.unlink()  # from an earlier infer of another model: never gate with stale numbers
    write_table(run_dir / "test_ids.csv", pd.DataFrame({"id": test.ids}))
    above = above_map(data_dir)
    if above is not None:  # DATA/mosaic.csv: measure each mosaic rule on OOF; submit applies those that help
        oof_masks = to_masks(oof.probs, post["best_threshold"], post["best_min_area"], oof.is_constant, oof.empty, post["best_empty_threshold"])
        test_masks = to_masks(probs, post["best_threshold"], post["best_min_area"], test.is_constant, empty, post["best_empty_threshold"])
        known = known_masks(train.ids, train.masks, test.ids, test_masks)
        post["mosaic_rules"] = measure_rules(oof.ids.tolist(), oof_masks, oof.truth, oof.is_constant, above, known)
    post["test_images"] = int(len(test.ids))
    post["test_img_per_s"] = len(test.ids) / max(seconds, 1e-9)
    write_json(run_dir / "postprocess.json", post)  # last: marks a complete infer
    return post
