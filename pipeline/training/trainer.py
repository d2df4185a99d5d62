"""`train`: per-fold training with validation on the competition metric, best/last checkpoints, exact
resume, OOF predictions, AMP on CUDA and DDP under torchrun.

A fold's state lives in one `FoldTraining` object (model, optimizer, scheduler, scaler, epoch, best, history)
with one method per concern; checkpointing, the metrics log and the console line are epoch-end callbacks."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from pipeline.competition.metric import per_image_scores
from pipeline.config import (RUNTIME_KEYS, Config, TrainConfig, differing_keys, flat_dict, is_runtime, prediction_choice, to_dict,
                             with_absolute_paths)
from pipeline.data.dataset import SaltDataset, to_original_geometry
from pipeline.data.device_batches import DeviceBatches
from pipeline.data.folds import folds_path, number_of_folds, read_folds
from pipeline.data.prep import TrainSet, load_train_cache
from pipeline.data.pseudo_set import load_pseudo
from pipeline.devices import autocast, configure_determinism, needs_grad_scaler
from pipeline.errors import PipelineError
from pipeline.fileio import save_npy, write_json, write_table
from pipeline.models import plastic
from pipeline.models.checkpoints import load_checkpoint, load_model_state, save_checkpoint
from pipeline.models.factory import build_model
from pipeline.models.plastic import lifetime_preserved
from pipeline.models.predict import predict_with_checkpoints
from pipeline.rundir import FoldDir, RunDir
from pipeline.training import distributed
from pipeline.training.checkpoint import restore_rng, rng_state
from pipeline.training.losses import SaltLoss
from pipeline.training.schedule import build_optimizer, build_scheduler, cycle_end_epochs
from pipeline.training.tensorboard import write_tensorboard


@dataclass
class FoldData:
    train_index: np.ndarray
    val_index: np.ndarray


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_run_dir(cfg: Config, run_dir: Path, is_main: bool) -> None:
    """A run folder belongs to one recipe: refuse to mix two in it. Runtime keys (config.RUNTIME_KEYS: workers,
    device, TensorBoard, infer.*) may change on resume and are saved. A folder where no epoch was ever saved (a
    start that failed) takes the new config."""
    run = RunDir(run_dir)
    if run.config.exists():
        saved = with_absolute_paths(run.load_config())  # runs saved with cwd-relative paths compare as absolute
        differing = differing_keys(saved, cfg)
        recipe = [key for key in differing if not is_runtime(key)]
        if recipe and any(fold.last.exists() for fold in run.folds()):
            theirs, ours = flat_dict(to_dict(saved)), flat_dict(to_dict(cfg))
            shown = "; ".join(f"{key}: saved {theirs[key]!r}, now {ours.get(key)!r}" for key in recipe[:3])
            raise PipelineError(
                f"{run.config} holds a different recipe ({shown}{'; ...' if len(recipe) > 3 else ''}). To continue the run: "
                f"train --run {run.name} --resume (its config is the default; only {', '.join(RUNTIME_KEYS)} may change); "
                f"to start over: --force; or pick a new --run NAME"
            )
        if not differing:
            return
        if is_main and any(fold.last.exists() for fold in run.folds()):
            print(f"train: {run.name} continues with new runtime settings: {', '.join(differing)}", flush=True)
    if is_main:
        run.save_config(cfg)


def fold_split(train: TrainSet, folds_file: Path, fold: int) -> FoldData:
    assignment = read_folds(folds_file)
    if set(assignment) != set(train.ids.tolist()):
        raise PipelineError(f"{folds_file} does not match the prep cache ({len(assignment)} ids vs {len(train.ids)}); rerun `folds --force`")
    fold_of = np.array([assignment[i] for i in train.ids])
    n_folds = int(fold_of.max()) + 1
    if not 0 <= fold < n_folds:
        raise PipelineError(f"fold {fold} is out of range: {folds_file} has folds 0..{n_folds - 1}")
    return FoldData(np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold))


def rank_batch_size(cfg: Config, world_size: int, n_train: int) -> int:
    """train.batch_size is the global batch: each of the ranks takes an equal share of it."""
    if cfg.train.batch_size % world_size:
        raise PipelineError(
            f"config: train.batch_size {cfg.train.batch_size} does not split evenly over {world_size} processes; "
            f"use a multiple of {world_size} (it is the global batch)"
        )
    return min(cfg.train.batch_size // world_size, max(1, n_train // world_size))


def needs_unused_parameter_search(cfg: Config) -> bool:
    """DDP must be told when a trainable parameter can go without a gradient in a step: an aux head whose loss
    weight is 0. (A one-step plastic head marks its gradient-free eta and modulator as not trainable.)"""
    return cfg.model.aux_head and cfg.loss.aux_weight == 0


def _worker_init(_worker_id: int) -> None:
    cv2.setNumThreads(1)  # each loader worker is one thread of augmentation; OpenCV would start one per core


class InterruptTraining(Exception):
    """Raised by a callback to stop a fold after an epoch; last.pt holds that epoch."""


@dataclass
class FoldTraining:
    """Everything one fold's training owns, and one method per concern."""

    cfg: Config
    fold: int
    folder: FoldDir
    ctx: distributed.DistContext
    split: FoldData
    model: torch.nn.Module
    train_set: SaltDataset
    loader: DataLoader | DeviceBatches  # train.augment_on: loader | device
    val_loader: DataLoader
    steps_per_epoch: int
    epochs: int  # this fold's length: train.epochs, or train.steps over steps_per_epoch
    epoch: int = 0  # epochs completed
    best: dict = field(default_factory=lambda: {"score": -1.0, "epoch": -1})
    history: list = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg, device = self.cfg, self.ctx.device
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.steps_per_epoch, self.epochs)
        self.scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, cfg.train.amp))
        self.criterion = SaltLoss(cfg.loss, self.epochs)
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        self.net = (
            DistributedDataParallel(self.model, find_unused_parameters=needs_unused_parameter_search(cfg)) if self.ctx.enabled else self.model
        )
        # DDP broadcasts rank 0's buffers (BatchNorm statistics) each forward; lifetime traces are all-reduced
        # by the heads after each step, so every rank holds the same trace either way
        self.reduce = distributed.all_reduce_mean if self.ctx.enabled else None
        # train.ema: a moving average of the weights and buffers (BatchNorm statistics, lifetime traces)
        self.ema = None if cfg.train.ema is None else AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema), use_buffers=True)

    @property
    def fold_dir(self) -> Path:
        return self.folder.root

    @property
    def last_path(self) -> Path:
        return self.folder.last

    @property
    def best_path(self) -> Path:
        return self.folder.best

    @property
    def ema_path(self) -> Path:
        return self.folder.ema

    # ----- resume -----------------------------------------------------------------------------------
    def resume_state(self) -> dict:
        """This rank's part of last.pt: every rank's RNG state is gathered so each rank resumes its own."""
        rng = distributed.all_gather_objects(rng_state(self.ctx.device), self.ctx)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "epochs": self.epochs,
            "best": self.best,
            "history": self.history,
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": rng,  # one entry per rank
        }

    def resume(self) -> None:
        state = load_checkpoint(self.last_path, self.cfg)
        load_model_state(self.model, state, self.last_path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as error:  # e.g. written before build_model dropped unused encoder blocks
            raise PipelineError(
                f"{self.last_path} holds an optimizer for other parameters than this model's ({error}); finish that run with "
                "the code that started it, or delete the fold's last.pt to train it again"
            ) from None
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])  # else: saved by a disabled scaler (bf16/CPU), start afresh
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        if self.ema is not None:  # a run's config cannot change under it (prepare_run_dir), so last.pt holds the average
            self.ema.load_state_dict(state["ema"])
        saved_rng = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if len(saved_rng) == self.ctx.world_size:
            restore_rng(saved_rng[self.ctx.rank], self.ctx.device)
        else:  # another process count: the data order is still exact (sampler and augmentation are seeded by epoch)
            seed_everything(self.cfg.train.seed + self.fold + 1_000_003 * self.ctx.rank + 7919 * self.epoch)
            if self.ctx.is_main:
                print(f"fold {self.fold}: {self.last_path} was written by {len(saved_rng)} processes, resuming with "
                      f"{self.ctx.world_size}: random generators reseeded (dropout draws differ from an unbroken run)", flush=True)

    # ----- one epoch ----------------------------------------------------------------------------------
    def train_epoch(self) -> dict:
        cfg, device, epoch = self.cfg, self.ctx.device, self.epoch
        plastic.on_epoch_start(self.model)
        if isinstance(self.loader, DeviceBatches):
            self.loader.set_epoch(epoch)
        else:
            self.loader.sampler.set_epoch(epoch)
            self.train_set.set_epoch(epoch)
        self.net.train()
        learning_rate = self.optimizer.param_groups[0]["lr"]  # the rate of the epoch's first step
        started = time.perf_counter()
        # losses stay on the device and are checked every sync_every steps: no GPU->CPU wait per step
        sync_every = cfg.train.sync_every if device.type == "cuda" else 1
        step_losses, seen = [], 0
        progress = tqdm(self.loader, total=self.steps_per_epoch, desc=f"fold {self.fold} epoch {epoch + 1}/{self.epochs}",
                        disable=None if self.ctx.is_main else True, leave=False, mininterval=2)
        for step, batch in enumerate(progress):
            if step >= self.steps_per_epoch:
                break
            images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=self.memory_format)
            masks = batch["mask"].to(device, non_blocking=True)
            with autocast(device, cfg.train.amp):
                logits, empty_logit = self.net(images)
            loss = self.criterion(logits, masks, empty_logit, batch["empty"].to(device, non_blocking=True), epoch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            plastic.on_step_end(self.model, self.reduce)
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            step_losses.append(loss.detach())
            seen += len(images)
            if len(step_losses) % sync_every == 0:
                self._check_finite(step_losses, first=len(step_losses) - sync_every)
                if progress.disable is False:
                    progress.set_postfix(loss=f"{float(torch.stack(step_losses).mean()):.4f}", refresh=False)
        self._check_finite(step_losses, first=len(step_losses) - len(step_losses) % sync_every)
        elapsed = time.perf_counter() - started
        train_loss = float(torch.stack(step_losses).mean()) if step_losses else float("nan")
        return {"lr": learning_rate, "train_loss": train_loss, "train_img_per_s": seen * self.ctx.world_size / max(elapsed, 1e-9), "seconds": elapsed}

    def _check_finite(self, step_losses: list, first: int) -> None:
        """Raise on the first non-finite loss among steps first.. (one device sync)."""
        if first >= len(step_losses):
            return
        finite = torch.isfinite(torch.stack(step_losses[first:]))
        if not bool(finite.all()):
            step = first + int((~finite).nonzero()[0, 0])
            raise PipelineError(
                f"fold {self.fold} epoch {self.epoch + 1} step {step + 1}: loss is {float(step_losses[step])} (plasticity or the learning rate "
                f"diverged); {self.last_path} still holds the last good epoch. Lower optim.lr or model.head.eta_init and --resume"
            )

    def validate(self) -> tuple[float, float]:
        """Mean loss and competition metric over the validation images, at 101x101 against the original masks.

        The lifetime trace is left as training left it (inference_plasticity: adapt would otherwise learn
        from the validation images)."""
        cfg, device = self.cfg, self.ctx.device
        self.net.eval()
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        with torch.no_grad(), lifetime_preserved(self.model):
            for batch in self.val_loader:
                images, masks = batch["image"].to(device), batch["mask"].to(device)
                with autocast(device, cfg.train.amp):
                    logits, empty_logit = self.net(images)
                loss = self.criterion(logits, masks, empty_logit, batch["empty"].to(device), self.epoch)
                probs = to_original_geometry(torch.sigmoid(logits.float()), cfg.data)
                scores = per_image_scores((probs > 0.5).cpu().numpy(), batch["original_mask"].numpy())
                totals += torch.tensor([float(loss) * len(images), len(images), scores.sum()], dtype=torch.float64, device=device)
        distributed.all_reduce_sum(totals)
        loss_sum, count, score_sum = totals.tolist()
        return loss_sum / max(count, 1), score_sum / max(count, 1)

    def run_epoch(self) -> dict:
        started = time.perf_counter()
        row = {"epoch": self.epoch + 1, **self.train_epoch()}
        validated = epoch_due(self.epoch + 1, self.epochs, self.cfg.train.val_every)
        if validated:
            row["val_loss"], row["val_metric"] = self.validate()
        row["epoch_seconds"] = time.perf_counter() - started  # training and validation: what the time left is made of
        row.update(plastic.statistics(self.model))
        self.epoch += 1
        self.history.append(row)
        improved = validated and row["val_metric"] > self.best["score"]
        if improved:
            self.best = {"score": row["val_metric"], "epoch": self.epoch}
        return {**row, "improved": improved}  # the callbacks' view; history keeps numbers only


def epoch_due(epoch: int, epochs: int, every: int) -> bool:
    """Whether epoch (1-based) of a fold of `epochs` takes an every-k-epochs action (train.val_every,
    train.checkpoint_every): every k-th epoch and the last."""
    return epoch % every == 0 or epoch >= epochs


# ----- epoch-end callbacks: (training, row) -> None; rank 0 writes ------------------------------------------
def write_checkpoints(training: FoldTraining, row: dict) -> None:
    cfg = training.cfg
    due = epoch_due(training.epoch, training.epochs, cfg.train.checkpoint_every)
    resume_state = training.resume_state() if due else None  # collective: every rank takes part
    if not training.ctx.is_main:
        return
    if row["improved"]:  # the model alone: best.pt is for prediction, last.pt for resuming
        save_checkpoint(training.best_path, cfg, {"model": training.model.state_dict(), "epoch": training.epoch, "best": training.best})
    if training.ema is not None:  # the average alone, in the model's own keys: predicted from like best.pt
        save_checkpoint(training.ema_path, cfg, {"model": training.ema.module.state_dict(), "epoch": training.epoch})
    if due:
        save_checkpoint(training.last_path, cfg, resume_state)


def write_snapshots(training: FoldTraining, row: dict) -> None:
    """With cosine restarts: the model at the end of each cycle (snapshot_C.pt), for snapshot ensembles."""
    cfg = training.cfg
    if cfg.optim.schedule != "restarts" or not training.ctx.is_main:
        return
    ends = cycle_end_epochs(training.steps_per_epoch, training.epochs, cfg.optim)
    if training.epoch in ends:
        path = training.folder.snapshot(ends.index(training.epoch))
        save_checkpoint(path, cfg, {"model": training.model.state_dict(), "epoch": training.epoch})


def write_metrics(training: FoldTraining, row: dict) -> None:
    if training.ctx.is_main:
        history = training.history
        columns = list(dict.fromkeys(key for entry in history for key in entry))
        write_table(training.folder.metrics, pd.DataFrame(columns=columns, data=[[entry.get(c, "") for c in columns] for entry in history]))


def print_epoch(training: FoldTraining, row: dict) -> None:
    if training.ctx.is_main:
        print(
            f"fold {training.fold} epoch {row['epoch']}/{training.epochs}: train_loss {row['train_loss']:.4f} "
            + (f"val_loss {row['val_loss']:.4f} val_metric {row['val_metric']:.4f}{' *' if row['improved'] else ''} " if "val_metric" in row else "")
            + f"{row['train_img_per_s']:.0f} img/s {row['seconds']:.1f}s{time_left(training.history, training.epochs)}",
            flush=True,
        )


def time_left(history: list[dict], epochs: int) -> str:
    """', about N min left in this fold': the epochs still to run at the mean length of the epochs whose length
    was recorded (epochs restored from an older checkpoint may have none). '' when the fold is done."""
    timed = [row["epoch_seconds"] for row in history if "epoch_seconds" in row]
    remaining = epochs - history[-1]["epoch"] if history else epochs
    if remaining <= 0 or not timed:
        return ""
    return f", about {remaining * sum(timed) / len(timed) / 60:.1f} min left in this fold"


EPOCH_END: tuple[Callable, ...] = (write_checkpoints, write_snapshots, write_metrics, write_tensorboard, print_epoch)


def build_fold_training(cfg: Config, run_dir: Path, fold: int, train: TrainSet, ctx: distributed.DistContext) -> FoldTraining:
    split = fold_split(train, Path(cfg.data.folds_file), fold)
    device = ctx.device
    configure_determinism(device, cfg.train.deterministic)
    seed_everything(cfg.train.seed + fold)  # the same initial weights on every rank (and for every head)
    model = build_model(cfg).to(device)
    model = model.to(memory_format=torch.channels_last if cfg.train.channels_last else torch.contiguous_format)
    # after the weights: a stream that no head's initialisation has consumed (paired studies: every head of a
    # seed then sees the same dropout draws) and that differs by rank (each rank its own dropout masks)
    seed_everything(cfg.train.seed + fold + 1_000_003 * (ctx.rank + 1))
    for note in plastic.notes(model):
        if ctx.is_main and fold == 0:
            print(f"note: {note}", flush=True)
    images, depth, masks = training_arrays(cfg, train, split)
    train_set = SaltDataset(images, depth, cfg, masks, augment=True)
    val_set = SaltDataset(train.images[split.val_index], train.depth[split.val_index], cfg, train.masks[split.val_index], with_original_mask=True)
    sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.train.seed + fold, drop_last=True)
    workers = cfg.train.num_workers
    loader_options = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers:
        loader_options.update(persistent_workers=True, worker_init_fn=_worker_init)
    batch_size = rank_batch_size(cfg, ctx.world_size, len(train_set))
    if augments_on_device(cfg, device):
        loader = DeviceBatches(images, depth, masks, cfg, device, batch_size, seed=cfg.train.seed + fold, rank=ctx.rank, world_size=ctx.world_size)
    else:
        loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler, drop_last=True, **loader_options)
    val_shard = torch.utils.data.Subset(val_set, list(range(ctx.rank, len(val_set), ctx.world_size)))
    val_loader = DataLoader(val_shard, batch_size=cfg.infer.batch_size, shuffle=False, **loader_options)
    steps = len(loader) if cfg.train.max_steps_per_epoch is None else min(len(loader), cfg.train.max_steps_per_epoch)
    return FoldTraining(cfg, fold, RunDir(run_dir).fold(fold), ctx, split, model, train_set, loader, val_loader, steps, fold_epochs(cfg.train, steps))


def augments_on_device(cfg: Config, device: torch.device) -> bool:
    """train.augment_on resolved: auto augments on the device on CUDA and in the DataLoader on CPU."""
    return cfg.train.augment_on == "device" or (cfg.train.augment_on == "auto" and device.type == "cuda")


def training_arrays(cfg: Config, train: TrainSet, split: FoldData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, depth, masks) of a fold's training part: its real images, plus the pseudo-labelled set of
    data.pseudo_dir when one is given. Validation never sees a pseudo label."""
    index = split.train_index
    images, depth, masks = train.images[index], train.depth[index], train.masks[index]
    if cfg.data.pseudo_dir:
        extra = load_pseudo(Path(cfg.data.pseudo_dir))
        shared = sorted(set(extra.ids.tolist()) & set(train.ids.tolist()))
        if shared:
            raise PipelineError(f"{cfg.data.pseudo_dir}: {len(shared)} pseudo-labelled id(s) are also training ids (e.g. {shared[0]}); "
                                "pseudo labels come from test images: make them with `pseudo` from a run on this data")
        images, depth, masks = (np.concatenate([a, b]) for a, b in ((images, extra.images), (depth, extra.depth), (masks, extra.masks)))
    return images, depth, masks


def fold_epochs(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """A fold's epoch count: train.epochs, or with a step budget (train.steps) enough epochs to take that many
    optimizer steps, so the recipe's length follows the data it is given."""
    return cfg.epochs if cfg.steps is None else max(1, math.ceil(cfg.steps / steps_per_epoch))


def train_fold(cfg: Config, run_dir: Path, fold: int, train: TrainSet, ctx: distributed.DistContext, resume: bool = False,
               callbacks: tuple[Callable, ...] = ()) -> dict:
    """Train one fold; returns its best score. `callbacks` run after the built-in ones at each epoch's end."""
    training = build_fold_training(cfg, run_dir, fold, train, ctx)
    if training.last_path.exists():
        if not resume:
            raise PipelineError(f"{training.last_path} exists: pass --resume to continue fold {fold}, or use a new --run NAME")
        training.resume()
    started_at = training.epoch
    while training.epoch < training.epochs:
        row = training.run_epoch()
        for callback in EPOCH_END + tuple(callbacks):
            callback(training, row)
        distributed.barrier(ctx)
    finish_fold(training, train)
    return {"fold": fold, "best_score": training.best["score"], "best_epoch": training.best["epoch"], "epochs_run": training.epochs - started_at}


def finish_fold(training: FoldTraining, train: TrainSet) -> None:
    """Check that every rank holds the same parameters and buffers, then write the OOF predictions."""
    ctx, folder = training.ctx, training.folder
    tensors = list(training.model.parameters()) + list(training.model.buffers())
    checksums = distributed.all_gather_floats(sum(float(t.detach().double().sum()) for t in tensors), ctx)
    if ctx.is_main:
        if len(set(checksums)) != 1:
            raise PipelineError(f"fold {training.fold}: ranks ended with different weights (checksums {checksums}); DDP lost sync")
        write_table(folder.ranks, pd.DataFrame(columns=["rank", "weight_checksum"], data=list(enumerate(checksums))))
        write_oof(training.cfg, folder, training.model, train, training.split, ctx.device)
    distributed.barrier(ctx)


def write_oof(cfg: Config, folder: FoldDir, model, train: TrainSet, split: FoldData, device) -> None:
    """Probabilities of the held-out images from the checkpoint(s) infer.checkpoint names (snapshots: their
    mean), 101x101 float16, with their ids."""
    index = split.val_index
    paths = folder.checkpoints(cfg.infer.checkpoint)
    if not paths:
        raise PipelineError(f"{folder.root} has no checkpoint for infer.checkpoint {cfg.infer.checkpoint}; train the fold first")
    probs, empty = predict_with_checkpoints(model, paths, cfg, train.images[index], train.depth[index], device)
    write_table(folder.oof_ids, pd.DataFrame({"id": train.ids[index]}))
    write_json(folder.oof_choice, prediction_choice(cfg))
    if empty is not None:  # before oof.npy: oof.npy marks a finished fold
        save_npy(folder.oof_empty, empty.astype(np.float32))
    save_npy(folder.oof, probs.astype(np.float16))


def fold_is_finished(cfg: Config, folder: FoldDir) -> bool:
    if not folder.oof.exists() or not folder.last.exists():
        return False
    state = load_checkpoint(folder.last)
    return state["epoch"] >= state.get("epochs", cfg.train.epochs)


def train(cfg: Config, run_dir: Path, folds: list[int] | None = None, resume: bool = False, callbacks: tuple[Callable, ...] = ()) -> list[dict]:
    """Train the given folds (all when None) of a run; finished folds are skipped."""
    cfg = with_absolute_paths(cfg)
    ctx = distributed.setup(cfg.train.device)
    try:
        prepare_run_dir(cfg, run_dir, ctx.is_main)
        distributed.barrier(ctx)
        train_set = load_train_cache(Path(cfg.data.data_dir))
        n_folds = number_of_folds(Path(cfg.data.folds_file))
        if ctx.is_main and n_folds != cfg.data.folds:
            print(f"note: {cfg.data.folds_file} holds {n_folds} folds, the recipe's ./run.sh splits into {cfg.data.folds} (data.folds); to train "
                  f"as ./run.sh does: python -m pipeline folds --data DATA --k {cfg.data.folds} --out {folds_path(cfg.data.folds)}, then "
                  f"--set data.folds_file={folds_path(cfg.data.folds)}", flush=True)
        folds = (cfg.train.folds or list(range(n_folds))) if folds is None else folds
        results = []
        for fold in folds:  # an out-of-range fold is refused by fold_split, before any work
            if fold_is_finished(cfg, RunDir(run_dir).fold(fold)):
                if ctx.is_main:
                    print(f"fold {fold}: already finished in {run_dir}, skipped", flush=True)
                results.append({"fold": fold, "skipped": True})
                continue
            started = time.perf_counter()
            results.append(train_fold(cfg, run_dir, fold, train_set, ctx, resume, callbacks))
            left = len(folds) - 1 - folds.index(fold)
            if ctx.is_main and left:
                took = time.perf_counter() - started
                print(f"fold {fold} took {took / 60:.1f} min; about {left * took / 60:.0f} min for the {left} fold(s) left", flush=True)
        return results
    finally:
        distributed.teardown(ctx)
