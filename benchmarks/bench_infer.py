"""Infer-stage efficiency: test img/s of the stage's prediction path (checkpoint loading, dataset, loader,
TTA, fold ensemble, unpadding) over a bare loop of model forward passes on the same tensors with the
same TTA. Goal: >= 0.85."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import write_result

from pipeline.config import load_config
from pipeline.rundir import RunDir
from pipeline.data.dataset import SaltDataset
from pipeline.data.folds import make_folds
from pipeline.data.prep import load_test_cache, prep
from pipeline.data.synth import synthesize
from pipeline.inference.infer import checkpoint_paths, ensemble_probs, infer
from pipeline.models.factory import build_model
from pipeline.models.checkpoints import load_checkpoint
from pipeline.training.trainer import train


def bare_loop(run_dir: Path, inputs: torch.Tensor, batch_size: int, device) -> float:
    run = RunDir(run_dir)
    cfg = run.load_config()
    models = []
    for path in checkpoint_paths(run, cfg):
        model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
        model.load_state_dict(load_checkpoint(path)["model"])
        models.append(model.eval())
    started = time.perf_counter()
    with torch.no_grad():
        for model in models:
            for start in range(0, len(inputs), batch_size):
                batch = inputs[start : start + batch_size].to(device)
                model(batch)
                model(torch.flip(batch, dims=[-1]))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def run(n_test: int = 1024, config: str = "cpu-tiny", rounds: int = 3) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    workdir = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    try:
        synthesize(workdir / "data", 64, n_test, seed=0)
        prep(workdir / "data")
        make_folds(workdir / "data", workdir / "folds.csv", k=2)
        cfg = load_config(config, [f"data.data_dir={workdir / 'data'}", f"data.folds_file={workdir / 'folds.csv'}",
                                   "train.epochs=1", "train.max_steps_per_epoch=1", "infer.tta=[none, hflip]"])
        run_dir = workdir / "run"
        train(cfg, run_dir)
        test = load_test_cache(workdir / "data")
        dataset = SaltDataset(test.images, test.depth, cfg)
        inputs = torch.stack([dataset[i]["image"] for i in range(len(dataset))]).contiguous(memory_format=torch.channels_last)
        stage_s, bare_s = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            probs, _ = ensemble_probs(cfg, checkpoint_paths(RunDir(run_dir), cfg), test.images, test.depth, device)
            stage_s.append(time.perf_counter() - started)
            bare_s.append(bare_loop(run_dir, inputs, cfg.infer.batch_size, device))
        assert probs.shape == (n_test, 101, 101) and np.isfinite(probs).all()
        started = time.perf_counter()
        infer(run_dir, force=True)
        full_stage_s = time.perf_counter() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "device": str(device),
        "test_images": n_test,
        "folds": 2,
        "tta_views": 2,
        "stage_prediction_img_per_s": n_test / min(stage_s),
        "bare_forward_img_per_s": n_test / min(bare_s),
        "efficiency": min(bare_s) / min(stage_s),
        "full_infer_stage_s": full_stage_s,
        "goals": {"efficiency": 0.85},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--test", type=int, default=1024)
    args = parser.parse_args()
    write_result("infer", run(args.test))
