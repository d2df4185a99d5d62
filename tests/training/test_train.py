import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import load_config
from pipeline.fileio import PipelineError
from pipeline.training import trainer
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.losses import SaltLoss

REPO_ROOT = Path(__file__).resolve().parents[2]


def smoke(*overrides):
    return load_config("smoke", list(overrides))


def test_resume_after_interruption_matches_an_unbroken_run(workdir):
    cfg = smoke("model.head.episode=lifetime", "model.aux_head=true")
    trainer.train(cfg, workdir / "runs" / "whole", folds=[0])
    stopped = trainer.train(cfg, workdir / "runs" / "broken", folds=[0], stop_after_epoch=1)
    assert stopped[0]["stopped_at"] == 1
    assert load_checkpoint(workdir / "runs" / "broken" / "fold_0" / "last.pt")["epoch"] == 1
    assert not (workdir / "runs" / "broken" / "fold_0" / "oof.npy").exists()
    with pytest.raises(PipelineError, match="--resume"):
        trainer.train(cfg, workdir / "runs" / "broken", folds=[0])
    trainer.train(cfg, workdir / "runs" / "broken", folds=[0], resume=True)
    whole = load_checkpoint(workdir / "runs" / "whole" / "fold_0" / "last.pt")
    resumed = load_checkpoint(workdir / "runs" / "broken" / "fold_0" / "last.pt")
    assert whole["model"].keys() == resumed["model"].keys()
    assert "unet.segmentation_head.lifetime_hebb" in whole["model"]
    for key, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert whole["history"][-1]["val_metric"] == resumed["history"][-1]["val_metric"]


def test_outputs_of_a_fold(workdir):
    trainer.train(smoke(), workdir / "runs" / "r", folds=[1])
    fold_dir = workdir / "runs" / "r" / "fold_1"
    oof = np.load(fold_dir / "oof.npy")
    assert oof.dtype == np.float16 and oof.shape[1:] == (101, 101)
    assert 0 <= oof.min() and oof.max() <= 1
    ids = (fold_dir / "oof_ids.csv").read_text().split()[1:]
    assert len(ids) == len(oof)
    header = (fold_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "val_metric", "val_loss", "train_img_per_s", "head_eta", "head_alpha_abs"} <= set(header)
    assert (workdir / "runs" / "r" / "config.yaml").exists()
    # a rerun skips the finished fold
    assert trainer.train(smoke(), workdir / "runs" / "r", folds=[1]) == [{"fold": 1, "skipped": True}]


def test_nan_loss_stops_with_fold_epoch_step_and_keeps_last_good_checkpoint(workdir, monkeypatch):
    original = SaltLoss.__call__
    calls = {"n": 0}

    def poisoned(self, logits, masks, empty_logit, empty_target, epoch):
        loss = original(self, logits, masks, empty_logit, empty_target, epoch)
        calls["n"] += 1
        return loss * float("nan") if epoch == 1 and calls["n"] > 5 else loss

    monkeypatch.setattr(SaltLoss, "__call__", poisoned)
    with pytest.raises(PipelineError, match=r"fold 0 epoch 2 step \d+: loss is nan"):
        trainer.train(smoke(), workdir / "runs" / "nan", folds=[0])
    state = load_checkpoint(workdir / "runs" / "nan" / "fold_0" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_fold_out_of_range(workdir):
    with pytest.raises(PipelineError, match="fold 7 is out of range: .* folds 0..2"):
        trainer.train(smoke(), workdir / "runs" / "x", folds=[7])


def test_run_folder_refuses_a_different_config(workdir):
    trainer.train(smoke("train.epochs=1"), workdir / "runs" / "y", folds=[0])
    with pytest.raises(PipelineError, match="different config"):
        trainer.train(smoke("train.epochs=1", "model.head.rule=oja"), workdir / "runs" / "y", folds=[0])


def test_checkpoint_from_a_different_model_config(workdir):
    trainer.train(smoke("train.epochs=1"), workdir / "runs" / "z", folds=[0])
    with pytest.raises(PipelineError, match="different model config .*head"):
        load_checkpoint(workdir / "runs" / "z" / "fold_0" / "best.pt", smoke("model.head.rule=oja"))


def test_two_process_gloo_ddp_ends_with_identical_weights(workdir):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "pipeline", "--", "train",
               "--config", "smoke", "--run", "ddp", "--fold", "0", "--set", "model.head.episode=lifetime"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (workdir / "runs" / "ddp" / "fold_0" / "ranks.csv").read_text().splitlines()[1:]
    checksums = {row.split(",")[1] for row in rows}
    assert len(rows) == 2 and len(checksums) == 1
    assert (workdir / "runs" / "ddp" / "fold_0" / "oof.npy").exists()


def test_killed_process_resumes_to_the_same_weights(workdir):
    """SIGKILL a real training process once its first checkpoint exists, resume, compare with an unbroken run."""
    import signal
    import time

    overrides = ["train.epochs=4"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, "-m", "pipeline", "train", "--config", "smoke", "--run", "killed", "--fold", "0"]
    for override in overrides:
        command += ["--set", override]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = workdir / "runs" / "killed" / "fold_0" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    epochs_done = load_checkpoint(last)["epoch"]
    assert 1 <= epochs_done < 4, "the kill should land before the run finished"
    trainer.train(smoke(*overrides), workdir / "runs" / "killed", folds=[0], resume=True)
    trainer.train(smoke(*overrides), workdir / "runs" / "unbroken", folds=[0])
    resumed = load_checkpoint(last)["model"]
    unbroken = load_checkpoint(workdir / "runs" / "unbroken" / "fold_0" / "last.pt")["model"]
    for key, value in unbroken.items():
        assert torch.equal(value, resumed[key]), key
