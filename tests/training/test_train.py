import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.models import factory
from pipeline.training import trainer
from pipeline.models.checkpoints import load_checkpoint
from pipeline.training.losses import SaltLoss

REPO_ROOT = Path(__file__).resolve().parents[2]


def smoke(*overrides):
    return load_config("smoke", list(overrides))


class EpochRecorder:
    """An epoch-end callback that notes which epochs ran, and can interrupt after one."""

    def __init__(self, stop_after: int | None = None):
        self.epochs, self.stop_after = [], stop_after

    def __call__(self, training, row):
        self.epochs.append(row["epoch"])
        if self.stop_after is not None and row["epoch"] >= self.stop_after:
            raise trainer.InterruptTraining


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_resume_runs_only_the_remaining_epochs_and_matches_an_unbroken_run(workdir, augment_on):
    # CPU even on a GPU host: bit-exact comparisons need the CPU's determinism
    cfg = smoke("model.head.episode=lifetime", "model.aux_head=true", "train.epochs=3", "train.device=cpu", f"train.augment_on={augment_on}")
    whole_epochs = EpochRecorder()
    trainer.train(cfg, workdir / "runs" / "whole", folds=[0], callbacks=(whole_epochs,))
    assert whole_epochs.epochs == [1, 2, 3]
    with pytest.raises(trainer.InterruptTraining):
        trainer.train(cfg, workdir / "runs" / "broken", folds=[0], callbacks=(EpochRecorder(stop_after=1),))
    assert load_checkpoint(workdir / "runs" / "broken" / "fold_0" / "last.pt")["epoch"] == 1
    assert not (workdir / "runs" / "broken" / "fold_0" / "oof.npy").exists()
    with pytest.raises(PipelineError, match="--resume"):
        trainer.train(cfg, workdir / "runs" / "broken", folds=[0])
    resumed_epochs = EpochRecorder()
    result = trainer.train(cfg, workdir / "runs" / "broken", folds=[0], resume=True, callbacks=(resumed_epochs,))
    assert resumed_epochs.epochs == [2, 3] and result[0]["epochs_run"] == 2  # epoch 1 was not trained again
    whole = load_checkpoint(workdir / "runs" / "whole" / "fold_0" / "last.pt")
    resumed = load_checkpoint(workdir / "runs" / "broken" / "fold_0" / "last.pt")
    assert whole["model"].keys() == resumed["model"].keys()
    assert "unet.segmentation_head.lifetime_hebb" in whole["model"]
    for key, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    timing = {"seconds", "epoch_seconds", "train_img_per_s"}
    assert [{k: v for k, v in row.items() if k not in timing} for row in whole["history"]] == [
        {k: v for k, v in row.items() if k not in timing} for row in resumed["history"]
    ]


@pytest.mark.parametrize("checkpoint", ["last", "best", "ema"])
def test_oof_is_the_named_checkpoint_predicting_its_validation_images(workdir, checkpoint):
    from pipeline.data.prep import load_train_cache
    from pipeline.models.factory import build_model
    from pipeline.models.predict import predict_probs

    cfg = smoke("train.epochs=3", f"infer.checkpoint={checkpoint}", "train.device=cpu", "train.ema=0.5")
    trainer.train(cfg, workdir / "runs" / "r", folds=[1])
    fold_dir = workdir / "runs" / "r" / "fold_1"
    oof = np.load(fold_dir / "oof.npy")
    ids = (fold_dir / "oof_ids.csv").read_text().split()[1:]
    assert oof.dtype == np.float16 and oof.shape == (len(ids), 101, 101)
    train_set = load_train_cache(workdir / "data")
    split = trainer.fold_split(train_set, workdir / "folds" / "folds.csv", 1)
    assert ids == train_set.ids[split.val_index].tolist()  # exactly fold 1's images, in order
    model = build_model(cfg)
    model.load_state_dict(load_checkpoint(fold_dir / f"{checkpoint}.pt")["model"])
    expected = predict_probs(model, train_set.images[split.val_index], train_set.depth[split.val_index], cfg, torch.device("cpu"),
                             views=cfg.infer.tta)
    np.testing.assert_allclose(oof.astype(np.float32), expected, atol=1e-3)  # float16 storage
    other = "best" if checkpoint != "best" else "last"
    other_state = load_checkpoint(fold_dir / f"{other}.pt")
    if other_state["epoch"] != load_checkpoint(fold_dir / f"{checkpoint}.pt")["epoch"]:
        model.load_state_dict(other_state["model"])
        other_probs = predict_probs(model, train_set.images[split.val_index], train_set.depth[split.val_index], cfg, torch.device("cpu"))
        assert np.abs(other_probs - expected).max() > 1e-3  # the choice matters, so the test can tell them apart


def test_outputs_of_a_fold(workdir):
    trainer.train(smoke(), workdir / "runs" / "r", folds=[1])
    fold_dir = workdir / "runs" / "r" / "fold_1"
    header = (fold_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "val_metric", "val_loss", "train_img_per_s", "head_eta", "head_alpha_abs"} <= set(header)
    assert (workdir / "runs" / "r" / "config.yaml").exists()
    # a rerun skips the finished fold
    assert trainer.train(smoke(), workdir / "runs" / "r", folds=[1]) == [{"fold": 1, "skipped": True}]


def test_val_every_skips_validation_without_changing_training(workdir):
    """train.val_every 2 over 3 epochs: validated at epochs 2 and 3 only, the same weights as validating every
    epoch (validation draws nothing the training uses), best.pt chosen among the validated epochs."""
    from pipeline.evaluation.report import read_metrics
    from pipeline.evaluation.summary import run_summary

    every = smoke("train.epochs=3", "train.device=cpu")
    sparse = smoke("train.epochs=3", "train.device=cpu", "train.val_every=2")
    trainer.train(every, workdir / "runs" / "every", folds=[0])
    trainer.train(sparse, workdir / "runs" / "sparse", folds=[0])
    dense_rows, sparse_rows = read_metrics(workdir / "runs" / "every")[0], read_metrics(workdir / "runs" / "sparse")[0]
    assert [("val_metric" in row) for row in dense_rows] == [True, True, True]
    assert [("val_metric" in row) for row in sparse_rows] == [False, True, True]
    for dense, row in zip(dense_rows, sparse_rows):
        assert dense["train_loss"] == row["train_loss"]
        if "val_metric" in row:
            assert dense["val_metric"] == row["val_metric"] and dense["val_loss"] == row["val_loss"]
    whole = load_checkpoint(workdir / "runs" / "every" / "fold_0" / "last.pt")
    part = load_checkpoint(workdir / "runs" / "sparse" / "fold_0" / "last.pt")
    for key, value in whole["model"].items():
        assert torch.equal(value, part["model"][key]), key
    validated = [row for row in sparse_rows if "val_metric" in row]
    best = load_checkpoint(workdir / "runs" / "sparse" / "fold_0" / "best.pt")
    assert best["epoch"] in (2, 3)
    assert best["best"]["score"] == max(row["val_metric"] for row in validated)
    fold = json.loads(run_summary(workdir / "runs" / "sparse").read_text())["folds"]["0"]
    assert fold["epochs"] == 3 and fold["last_val_metric"] == round(validated[-1]["val_metric"], 4)
    assert fold["best_val_metric"] == round(max(row["val_metric"] for row in validated), 4)


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


def test_a_folds_file_of_another_size_than_the_recipes_is_noted_with_the_command_for_run_sh_s_split(workdir, capsys):
    with pytest.raises(PipelineError, match="fold 7 is out of range"):  # refused before any training
        trainer.train(smoke("data.folds=10"), workdir / "runs" / "x", folds=[7])
    out = capsys.readouterr().out
    assert "holds 3 folds, the recipe's ./run.sh splits into 10 (data.folds)" in out and "--k 10 --out folds/folds-k10.csv" in out
    with pytest.raises(PipelineError, match="fold 7 is out of range"):
        trainer.train(smoke("data.folds=3"), workdir / "runs" / "z", folds=[7])
    assert "note:" not in capsys.readouterr().out


def test_run_folder_refuses_a_different_config(workdir):
    trainer.train(smoke("train.epochs=1"), workdir / "runs" / "y", folds=[0])
    with pytest.raises(PipelineError, match=r"different recipe \(model.head.rule: saved 'hebb', now 'oja'\)"):
        trainer.train(smoke("train.epochs=1", "model.head.rule=oja"), workdir / "runs" / "y", folds=[0])


def test_checkpoint_from_a_different_model_config(workdir):
    trainer.train(smoke("train.epochs=1"), workdir / "runs" / "z", folds=[0])
    with pytest.raises(PipelineError, match=r"different model config \(differs in: head.rule\)"):
        load_checkpoint(workdir / "runs" / "z" / "fold_0" / "best.pt", smoke("model.head.rule=oja"))
    # how the weights are read at prediction (a READING_KEY) is not another model
    state = load_checkpoint(workdir / "runs" / "z" / "fold_0" / "best.pt", smoke("model.head.inference_plasticity=adapt"))
    assert state["config"]["model"]["head"]["inference_plasticity"] == "frozen"


def test_two_process_gloo_ddp_ranks_see_different_shards_and_end_identical(workdir):
    """Every parameter and buffer (BatchNorm statistics, lifetime traces) equal on both ranks after every epoch,
    with an aux head that gets no gradient (aux_weight 0: DDP must be told about unused parameters)."""
    overrides = ["model.head.episode=lifetime", "model.aux_head=true", "loss.aux_weight=0", "train.device=cpu"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(REPO_ROOT / "tests" / "training" / "ddp_worker.py"), str(workdir / "runs" / "ddp"), *overrides]
    (workdir / "runs" / "ddp").mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), CUDA_VISIBLE_DEVICES="")  # gloo on CPU even on a GPU host
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for epoch in (1, 2):
        rank0 = torch.load(workdir / "runs" / "ddp" / f"rank0_epoch{epoch}.pt")
        rank1 = torch.load(workdir / "runs" / "ddp" / f"rank1_epoch{epoch}.pt")
        assert rank0["indices"] and rank1["indices"] and not set(rank0["indices"]) & set(rank1["indices"])
        assert "unet.segmentation_head.lifetime_hebb" in rank0["state"]
        assert any("running_mean" in key for key in rank0["state"])
        for key, value in rank0["state"].items():
            assert torch.equal(value, rank1["state"][key]), (epoch, key)
        assert rank0["state"]["unet.segmentation_head.lifetime_hebb"].abs().sum() > 0
    assert (workdir / "runs" / "ddp" / "fold_0" / "oof.npy").exists()
    rng = load_checkpoint(workdir / "runs" / "ddp" / "fold_0" / "last.pt")["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["torch"], rng[1]["torch"])  # each rank its own seed and state


def test_killed_process_resumes_to_the_same_weights(workdir):
    """SIGKILL a real training process once its first checkpoint exists, resume, compare with an unbroken run."""
    import signal
    import time

    overrides = ["train.epochs=4", "train.device=cpu"]
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
    resumed_epochs = EpochRecorder()
    trainer.train(smoke(*overrides), workdir / "runs" / "killed", folds=[0], resume=True, callbacks=(resumed_epochs,))
    assert resumed_epochs.epochs == list(range(epochs_done + 1, 5))  # only the epochs the killed process had not finished
    trainer.train(smoke(*overrides), workdir / "runs" / "unbroken", folds=[0])
    resumed = load_checkpoint(last)["model"]
    unbroken = load_checkpoint(workdir / "runs" / "unbroken" / "fold_0" / "last.pt")["model"]
    for key, value in unbroken.items():
        assert torch.equal(value, resumed[key]), key


def test_global_batch_is_split_over_ranks():
    assert trainer.rank_batch_size(smoke("train.batch_size=32"), world_size=2, n_train=1000) == 16
    assert trainer.rank_batch_size(smoke("train.batch_size=32"), world_size=1, n_train=1000) == 32
    with pytest.raises(PipelineError, match="batch_size 30 does not split evenly over 4"):
        trainer.rank_batch_size(smoke("train.batch_size=30"), world_size=4, n_train=1000)


@pytest.mark.parametrize("first, then", [(False, True), (True, False)])
def test_resume_across_a_grad_scaler_switch(workdir, monkeypatch, first, then):
    """A checkpoint from a disabled scaler (bf16, CPU) resumes with an enabled one (fp16) and back."""
    cfg = smoke("train.epochs=2", "train.device=cpu")
    monkeypatch.setattr(trainer, "needs_grad_scaler", lambda device, amp: first)
    with pytest.raises(trainer.InterruptTraining):
        trainer.train(cfg, workdir / "runs" / "s", folds=[0], callbacks=(EpochRecorder(stop_after=1),))
    monkeypatch.setattr(trainer, "needs_grad_scaler", lambda device, amp: then)
    result = trainer.train(cfg, workdir / "runs" / "s", folds=[0], resume=True)
    assert result[0]["epochs_run"] == 1


def test_last_checkpoint_every_k_epochs_and_after_the_last(workdir):
    written = []

    def last_epoch_on_disk(training, row):
        written.append(load_checkpoint(training.last_path)["epoch"] if training.last_path.exists() else None)

    trainer.train(smoke("train.epochs=3", "train.checkpoint_every=2"), workdir / "runs" / "k", folds=[0], callbacks=(last_epoch_on_disk,))
    assert written == [None, 2, 3]
    best = load_checkpoint(workdir / "runs" / "k" / "fold_0" / "best.pt")
    assert set(best) == {"model", "epoch", "best", "config"}  # the model alone, no optimizer state


def test_validation_and_oof_leave_the_lifetime_trace_as_training_left_it(workdir, monkeypatch):
    """With inference_plasticity adapt, OOF prediction adapts the trace image by image; neither it nor
    validation may change the trace that training goes on from and that the checkpoints store."""
    cfg = smoke("model.head.episode=lifetime", "model.head.inference_plasticity=adapt", "model.head.eta_init=0.5", "train.device=cpu")
    unchanged = []
    original_validate, original_write_oof = trainer.FoldTraining.validate, trainer.write_oof

    def watched_validate(self):
        before = self.model.head.lifetime_hebb.clone()
        result = original_validate(self)
        unchanged.append(("validate", torch.equal(before, self.model.head.lifetime_hebb)))
        return result

    def watched_write_oof(cfg, fold_dir, model, train, split, device):
        original_write_oof(cfg, fold_dir, model, train, split, device)
        best = load_checkpoint(fold_dir.checkpoints(cfg.infer.checkpoint)[0])["model"]["unet.segmentation_head.lifetime_hebb"]
        assert best.abs().sum() > 0
        unchanged.append(("oof", torch.equal(best, model.head.lifetime_hebb)))

    monkeypatch.setattr(trainer.FoldTraining, "validate", watched_validate)
    monkeypatch.setattr(trainer, "write_oof", watched_write_oof)
    trainer.train(cfg, workdir / "runs" / "adapt", folds=[0])
    assert unchanged == [("validate", True), ("validate", True), ("oof", True)]


def test_paired_design_same_seed_same_network_start_data_order_augmentations_and_random_stream(workdir):
    """Seed s gives every head the same initial U-Net body, the same batches in the same order with the same
    augmentations, and the same random stream afterwards (dropout): the heads differ in the head alone."""
    from pipeline.data.prep import load_train_cache
    from pipeline.training import distributed

    train_set = load_train_cache(workdir / "data")
    ctx = distributed.DistContext()
    seen = {}
    for rule in ("none", "frozen", "hebb", "eligibility"):
        training = trainer.build_fold_training(smoke(f"model.head.rule={rule}", "train.device=cpu"), workdir / "runs" / rule, 0, train_set, ctx)
        body = {k: v.clone() for k, v in training.model.state_dict().items() if "segmentation_head" not in k}
        training.loader.sampler.set_epoch(1)
        training.train_set.set_epoch(1)
        first_batch = next(iter(training.loader))
        seen[rule] = (body, list(iter(training.loader.sampler)), first_batch["image"], torch.rand(3))
    reference = seen["none"]
    for rule, (body, order, images, stream) in seen.items():
        assert body.keys() == reference[0].keys()
        for key, value in body.items():
            assert torch.equal(value, reference[0][key]), (rule, key)
        assert order == reference[1] and torch.equal(images, reference[2]) and torch.equal(stream, reference[3]), rule


def test_snapshot_ensemble_keeps_each_cycles_model_and_averages_them(workdir):
    from pipeline.data.prep import load_train_cache
    from pipeline.inference.infer import infer
    from pipeline.models.factory import build_model
    from pipeline.models.predict import predict_probs

    cfg = smoke("train.epochs=4", "optim.schedule=restarts", "optim.cycles=2", "optim.warmup_epochs=0", "infer.checkpoint=snapshots",
                "train.device=cpu")
    trainer.train(cfg, workdir / "runs" / "snap")
    fold_dir = workdir / "runs" / "snap" / "fold_1"
    snapshots = sorted(fold_dir.glob("snapshot_*.pt"))
    assert [load_checkpoint(p)["epoch"] for p in snapshots] == [2, 4]
    train_set = load_train_cache(workdir / "data")
    split = trainer.fold_split(train_set, workdir / "folds" / "folds.csv", 1)
    model, each = build_model(cfg), []
    for path in snapshots:
        model.load_state_dict(load_checkpoint(path)["model"])
        each.append(predict_probs(model, train_set.images[split.val_index], train_set.depth[split.val_index], cfg, torch.device("cpu"),
                                  views=cfg.infer.tta))
    assert np.abs(each[0] - each[1]).max() > 1e-3
    np.testing.assert_allclose(np.load(fold_dir / "oof.npy").astype(np.float32), (each[0] + each[1]) / 2, atol=1e-3)
    assert infer(workdir / "runs" / "snap")["folds"] == [0, 1, 2]


def test_ema_checkpoint_is_the_moving_average_of_every_steps_weights_and_resumes_exactly(workdir):
    # one step per epoch, so the epoch-end callback sees the weights after every optimizer step
    cfg = smoke("train.epochs=4", "train.max_steps_per_epoch=1", "train.ema=0.6", "train.device=cpu", "model.aux_head=true")
    steps = []

    def record(training, row):
        steps.append({key: value.detach().clone() for key, value in training.model.state_dict().items()})

    trainer.train(cfg, workdir / "runs" / "whole", folds=[0], callbacks=(record,))
    expected = steps[0]  # the first update copies the weights
    for weights in steps[1:]:
        expected = {key: 0.6 * expected[key] + 0.4 * value for key, value in weights.items()}
    whole = load_checkpoint(workdir / "runs" / "whole" / "fold_0" / "ema.pt")
    assert whole["epoch"] == 4 and whole["model"].keys() == expected.keys()
    floats = [key for key, value in steps[-1].items() if value.is_floating_point()]
    assert any("running_var" in key for key in floats)  # BatchNorm statistics are averaged too
    for key in floats:
        torch.testing.assert_close(whole["model"][key], expected[key], rtol=1e-5, atol=1e-6, msg=key)
    last = load_checkpoint(workdir / "runs" / "whole" / "fold_0" / "last.pt")["model"]
    assert max(float((whole["model"][key] - last[key]).abs().max()) for key in floats) > 1e-3  # the average is not the last weights
    with pytest.raises(trainer.InterruptTraining):
        trainer.train(cfg, workdir / "runs" / "broken", folds=[0], callbacks=(EpochRecorder(stop_after=2),))
    trainer.train(cfg, workdir / "runs" / "broken", folds=[0], resume=True)
    resumed = load_checkpoint(workdir / "runs" / "broken" / "fold_0" / "ema.pt")["model"]
    for key, value in whole["model"].items():
        assert torch.equal(value, resumed[key]), key


def test_a_step_budget_sizes_the_epochs_to_the_data_and_the_recipe_names_its_folds(workdir):
    from pipeline.inference.infer import infer

    # 60 training images per fold, batch 8, drop_last: 7 steps an epoch; 10 steps -> 2 epochs
    cfg = smoke("train.epochs=3", "train.max_steps_per_epoch=null", "train.steps=10", "train.folds=[1]", "loss.lovasz_from=0.5")
    epochs = EpochRecorder()
    result = trainer.train(cfg, workdir / "runs" / "budget", callbacks=(epochs,))
    assert [r["fold"] for r in result] == [1] and epochs.epochs == [1, 2]
    assert not (workdir / "runs" / "budget" / "fold_0").exists()
    assert load_checkpoint(workdir / "runs" / "budget" / "fold_1" / "last.pt")["epochs"] == 2
    assert trainer.train(cfg, workdir / "runs" / "budget")[0].get("skipped")  # finished by its own epoch count
    assert infer(workdir / "runs" / "budget")["folds"] == [1]  # the recipe's folds: not a partial ensemble
    # half the data: the same budget takes twice the epochs
    assert trainer.fold_epochs(cfg.train, steps_per_epoch=7) == 2 and trainer.fold_epochs(cfg.train, steps_per_epoch=3) == 4
    assert trainer.fold_epochs(smoke("train.epochs=5").train, steps_per_epoch=7) == 5


@pytest.mark.parametrize(("share", "epochs", "first"), [(0.6, 10, 6), (0.2, 150, 30), (0.5, 3, 2), (0.5, 5, 3), (0.0, 5, 0), (1.0, 5, 5)])
def test_lovasz_starts_at_its_share_of_the_epochs(share, epochs, first):
    from pipeline.config import LossConfig
    from pipeline.training.losses import lovasz_start_epoch

    assert lovasz_start_epoch(LossConfig(lovasz_from=share), epochs) == first
    loss = SaltLoss(LossConfig(lovasz_from=share, symmetric_lovasz=False), epochs)
    logits, masks = torch.tensor([[[[2.0, -1.0]]]]), torch.tensor([[[[1.0, 0.0]]]])
    if first < epochs:  # Lovasz from epoch `first`: both pixels right with margin >= 1, so zero
        assert loss.segmentation(logits, masks, first) == 0.0
    if first > 0:  # BCE+Dice until then (share 1.0: every epoch of the fold)
        assert loss.segmentation(logits, masks, first - 1) > 0.0


def test_tensorboard_logs_every_metric_and_a_validation_overlay_and_can_be_turned_off(workdir):
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer.train(smoke("train.epochs=2"), workdir / "runs" / "tb", folds=[0])
    fold = workdir / "runs" / "tb" / "fold_0"
    events = EventAccumulator(str(fold / "tensorboard"), size_guidance={"images": 0}).Reload()
    metrics = pd.read_csv(fold / "metrics.csv")
    for tag, column in [("loss/train", "train_loss"), ("loss/val", "val_loss"), ("metric/val", "val_metric"), ("optim/lr", "lr"),
                        ("head/eta", "head_eta"), ("head/alpha_abs", "head_alpha_abs")]:
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2], tag
        np.testing.assert_allclose([e.value for e in logged], metrics[column], rtol=1e-6, err_msg=tag)
    overlays = events.Images("validation/image_truth_prediction")
    assert [e.step for e in overlays] == [1, 2] and (overlays[0].width, overlays[0].height) == (4 * 3 * 101, 101)  # 4 overlays in a row
    trainer.train(smoke("train.epochs=1", "train.tensorboard=false"), workdir / "runs" / "quiet", folds=[0])
    assert (workdir / "runs" / "quiet" / "fold_0" / "metrics.csv").exists() and not (workdir / "runs" / "quiet" / "fold_0" / "tensorboard").exists()


def test_time_left_is_the_remaining_epochs_at_the_mean_epoch_length():
    history = [{"epoch": 1, "epoch_seconds": 10.0}, {"epoch": 2, "epoch_seconds": 20.0}]
    assert trainer.time_left(history, epochs=5) == ", about 0.8 min left in this fold"  # 3 epochs x 15 s = 45 s
    assert trainer.time_left(history, epochs=2) == ""  # the fold is done
    # a resumed fold: epochs 1-2 ran elsewhere (no time recorded here), epoch 3 took 60 s, 7 more to go
    assert trainer.time_left([{"epoch": 2}, {"epoch": 3, "epoch_seconds": 60.0}], epochs=10) == ", about 7.0 min left in this fold"


def test_resuming_a_last_checkpoint_written_before_the_unused_encoder_blocks_were_dropped_says_what_to_do(workdir, monkeypatch):
    """An EfficientNet at stride 16 used to keep its stride-32 blocks; a last.pt from then holds an optimizer for
    their parameters too. Resuming it with today's (cut) network is refused in one line naming the file and the fix."""
    cfg = smoke("model.encoder=tu-tf_efficientnet_lite0", "model.encoder_depth=4", "model.decoder_channels=[16,8,8,8]", "train.device=cpu")
    with monkeypatch.context() as before_the_cut, pytest.raises(trainer.InterruptTraining):
        before_the_cut.setattr(factory, "drop_unused_blocks", lambda encoder: ())
        trainer.train(cfg, workdir / "runs" / "old", folds=[0], callbacks=(EpochRecorder(stop_after=1),))
    with pytest.raises(PipelineError, match="last.pt holds an optimizer for other parameters.*delete the fold's last.pt"):
        trainer.train(cfg, workdir / "runs" / "old", folds=[0], resume=True)
