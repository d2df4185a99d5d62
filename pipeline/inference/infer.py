"""`infer`: TTA x fold-ensemble test probabilities, and post-processing tuned on the OOF predictions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.rundir import RunDir
from pipeline.config import Config, prediction_choice, with_runtime
from pipeline.data.folds import number_of_folds
from pipeline.data.prep import load_test_cache, load_train_cache
from pipeline.devices import choose_device
from pipeline.errors import PipelineError
from pipeline.fileio import save_npy, write_table, write_json
from pipeline.inference.oof import load_oof
from pipeline.inference.mosaic_rules import above_map, known_masks, measure_rules
from pipeline.inference.postprocess import to_masks, tune
from pipeline.models.factory import build_model
from pipeline.models.predict import predict_with_checkpoints


def checkpoints(run: RunDir, cfg: Config) -> dict[int, list[Path]]:
    """Each fold's checkpoint(s) that infer.checkpoint names (last.pt by default; snapshots: all of them), by fold."""
    found = {fold.number: paths for fold in run.folds() if (paths := [p for p in fold.checkpoints(cfg.infer.checkpoint) if p.exists()])}
    if not found:
        raise PipelineError(f"{run.root} has no fold checkpoint for infer.checkpoint {cfg.infer.checkpoint}: train the run first "
                            f"(python -m pipeline train --run {run.name})")
    return found


def checkpoint_paths(run: RunDir, cfg: Config, by_fold: dict[int, list[Path]] | None = None) -> list[Path]:
    """Every checkpoint the ensemble averages, fold by fold (from `by_fold` when the caller already found them)."""
    return [path for fold_paths in (by_fold or checkpoints(run, cfg)).values() for path in fold_paths]


def ensemble_probs(cfg: Config, paths: list[Path], images: np.ndarray, depth: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over checkpoints (every fold's, as infer.checkpoint names them) and TTA views of the test
    probabilities, (N,101,101) float32, and of the empty-mask probabilities (N,) (None without an empty-mask head).

    The plastic lifetime trace comes from each checkpoint and follows its `inference_plasticity` setting. With
    infer.adapt_bn each checkpoint's BatchNorm statistics are first re-estimated on these (the test) images.
    """
    model = build_model(cfg).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return predict_with_checkpoints(model, paths, cfg, images, depth, device, adapt_bn=cfg.infer.adapt_bn)


def refresh_oof(run: RunDir, cfg: Config, train) -> list[int]:
    """Predict again the OOF images of each finished fold whose OOF was made with another checkpoint or TTA choice
    than `cfg`'s (after `infer --set infer.checkpoint=...`), so post-processing is tuned on predictions made as the
    test's are. Returns the folds redone."""
    from pipeline.training.trainer import fold_split, write_oof

    stale = [fold for fold in run.finished_folds() if oof_choice(fold) not in (None, prediction_choice(cfg))]
    if stale:
        device = choose_device(cfg.train.device)
        model = build_model(cfg).to(device)
        if cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        for fold in stale:
            write_oof(cfg, fold, model, train, fold_split(train, Path(cfg.data.folds_file), fold.number), device)
    return [fold.number for fold in stale]


def oof_choice(fold) -> dict | None:
    """The prediction choice a fold's OOF was made with (None: written before it was recorded: the run's own)."""
    return json.loads(fold.oof_choice.read_text()) if fold.oof_choice.exists() else None


def infer(run_dir: Path, force: bool = False, allow_partial: bool = False, overrides: list[str] | tuple = ()) -> dict:
    """Test probabilities of the fold ensemble and post-processing tuned on OOF. `overrides`: runtime keys
    (config.RUNTIME_KEYS, e.g. infer.tta, infer.checkpoint) changed for this and later stages; saved to the run's
    config.yaml when infer completes."""
    run = RunDir(run_dir)
    run_dir = run.root
    saved = run.load_config()
    cfg = with_runtime(saved, overrides, "infer --set")
    if cfg != saved:
        force = True  # the test probabilities on disk were made with the saved choice
    by_fold = checkpoints(run, cfg)
    paths = checkpoint_paths(run, cfg, by_fold)  # the folders are searched once
    found = sorted(by_fold)
    expected = cfg.train.folds or list(range(number_of_folds(Path(cfg.data.folds_file))))
    missing = sorted(set(expected) - set(found))
    if missing and not allow_partial:
        raise PipelineError(
            f"{run_dir} has folds {', '.join(map(str, found))} of {len(expected)}; fold(s) {', '.join(map(str, missing))} are missing. "
            f"Train them (python -m pipeline train --run {run_dir.name} --fold {','.join(map(str, missing))}) or pass --allow-partial"
        )
    outputs = run.inference_outputs
    newest_checkpoint = max(p.stat().st_mtime for p in paths)
    if not force and all(p.exists() for p in outputs) and min(p.stat().st_mtime for p in outputs) > newest_checkpoint:
        return {"skipped": True, "folds": found}
    data_dir = Path(cfg.data.data_dir)
    train, test = load_train_cache(data_dir), load_test_cache(data_dir)
    redone = refresh_oof(run, cfg, train)
    oof = load_oof(run, train)
    post = tune(oof.probs, oof.truth, oof.is_constant, cfg.infer.thresholds, cfg.infer.min_areas, oof.empty, cfg.infer.empty_thresholds)
    post["oof_images"] = int(len(oof.ids))
    post["folds"], post["checkpoint"], post["tta"], post["adapt_bn"] = found, cfg.infer.checkpoint, list(cfg.infer.tta), cfg.infer.adapt_bn
    post["tta_shift"] = cfg.infer.tta_shift
    if redone:
        post["oof_predicted_again"] = redone
    started = time.perf_counter()
    probs, empty = ensemble_probs(cfg, paths, test.images, test.depth, choose_device(cfg.train.device))
    seconds = time.perf_counter() - started
    save_npy(run.test_probs, probs.astype(np.float16))
    empty_path = run.test_empty
    if empty is not None:
        save_npy(empty_path, empty)
    elif empty_path.exists():
        empty_path.unlink()  # from an earlier infer of another model: never gate with stale numbers
    write_table(run.test_ids, pd.DataFrame({"id": test.ids}))
    above = above_map(data_dir)
    if above is not None:  # DATA/mosaic.csv: measure each mosaic rule on OOF; submit applies those that help
        oof_masks = to_masks(oof.probs, post["best_threshold"], post["best_min_area"], oof.is_constant, oof.empty, post["best_empty_threshold"])
        test_masks = to_masks(probs, post["best_threshold"], post["best_min_area"], test.is_constant, empty, post["best_empty_threshold"])
        known = known_masks(train.ids, train.masks, test.ids, test_masks)
        post["mosaic_rules"] = measure_rules(oof.ids.tolist(), oof_masks, oof.truth, oof.is_constant, above, known)
    post["test_images"] = int(len(test.ids))
    post["test_img_per_s"] = len(test.ids) / max(seconds, 1e-9)
    if cfg != saved:
        run.save_config(cfg)
    write_json(run.postprocess, post)  # last: marks a complete infer
    return post
