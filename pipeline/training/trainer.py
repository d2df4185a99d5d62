"""`train`: per-fold training with validation on the competition metric, best/last checkpoints, exact
resume, OOF predictions from the best checkpoint, AMP on CUDA and DDP under torchrun."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from pipeline.competition.metric import per_image_scores
from pipeline.config import Config, load_run_config, save_config, to_dict
from pipeline.data.dataset import SaltDataset, to_original_geometry
from pipeline.data.folds import read_folds
from pipeline.data.prep import TrainSet, load_train_cache
from pipeline.fileio import PipelineError, save_npy, write_csv
from pipeline.models.factory import build_model
from pipeline.models.plastic import plastic_heads
from pipeline.models.predict import autocast_for, predict_probs
from pipeline.training import distributed
from pipeline.training.checkpoint import load_checkpoint, load_model_state, restore_rng, save_checkpoint
from pipeline.training.losses import SaltLoss
from pipeline.training.schedule import build_optimizer, build_scheduler


@dataclass
class FoldData:
    train_index: np.ndarray
    val_index: np.ndarray


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_run_dir(cfg: Config, run_dir: Path, is_main: bool) -> None:
    """A run folder belongs to one config: refuse to mix two in it."""
    saved = run_dir / "config.yaml"
    if saved.exists():
        if to_dict(load_run_config(run_dir)) != to_dict(cfg):
            raise PipelineError(f"{saved} holds a different config; pick a new --run NAME, or pass the same config to continue this run")
    elif is_main:
        save_config(cfg, saved)


def fold_split(train: TrainSet, folds_file: Path, fold: int) -> FoldData:
    assignment = read_folds(folds_file)
    if set(assignment) != set(train.ids.tolist()):
        raise PipelineError(f"{folds_file} does not match the prep cache ({len(assignment)} ids vs {len(train.ids)}); rerun `folds --force`")
    fold_of = np.array([assignment[i] for i in train.ids])
    n_folds = int(fold_of.max()) + 1
    if not 0 <= fold < n_folds:
        raise PipelineError(f"fold {fold} is out of range: {folds_file} has folds 0..{n_folds - 1}")
    return FoldData(np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold))


def number_of_folds(folds_file: Path) -> int:
    return max(read_folds(folds_file).values()) + 1


def _validate(model, loader, criterion, cfg: Config, epoch: int, device, ctx):
    """Sum of loss, count, and per-image metric sum over this rank's shard, reduced over ranks."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    with torch.no_grad():
        for batch in loader:
            images, masks = batch["image"].to(device), batch["mask"].to(device)
            with autocast_for(device, cfg):
                logits, empty_logit = model(images)
            loss = criterion(logits, masks, empty_logit, batch["empty"].to(device), epoch)
            probs = to_original_geometry(torch.sigmoid(logits.float()), cfg.data)
            truth = to_original_geometry(masks, cfg.data) > 0.5
            scores = per_image_scores((probs > 0.5).cpu().numpy(), truth.cpu().numpy())
            totals += torch.tensor([float(loss) * len(images), len(images), scores.sum()], dtype=torch.float64, device=device)
    distributed.all_reduce_sum(totals)
    loss_sum, count, score_sum = totals.tolist()
    return loss_sum / max(count, 1), score_sum / max(count, 1)


def train_fold(cfg: Config, run_dir: Path, fold: int, train: TrainSet, ctx: distributed.DistContext, resume: bool = False, stop_after_epoch: int | None = None) -> dict:
    """Train one fold; returns its best score. `stop_after_epoch` simulates an interruption (tests)."""
    fold_dir = run_dir / f"fold_{fold}"
    last_path, best_path = fold_dir / "last.pt", fold_dir / "best.pt"
    split = fold_split(train, Path(cfg.data.folds_file), fold)
    device = ctx.device
    seed_everything(cfg.train.seed + fold)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model = build_model(cfg).to(device)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    train_set = SaltDataset(train.images[split.train_index], train.depth[split.train_index], cfg, train.masks[split.train_index], augment=True)
    val_images, val_depth, val_masks = train.images[split.val_index], train.depth[split.val_index], train.masks[split.val_index]
    val_set = SaltDataset(val_images, val_depth, cfg, val_masks)
    sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.train.seed + fold, drop_last=True)
    batch_size = min(cfg.train.batch_size, len(train_set) // ctx.world_size)
    loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=cfg.train.num_workers, pin_memory=device.type == "cuda")
    val_shard = torch.utils.data.Subset(val_set, list(range(ctx.rank, len(val_set), ctx.world_size)))
    val_loader = DataLoader(val_shard, batch_size=cfg.infer.batch_size, shuffle=False, num_workers=cfg.train.num_workers)
    steps_per_epoch = len(loader) if cfg.train.max_steps_per_epoch is None else min(len(loader), cfg.train.max_steps_per_epoch)

    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, steps_per_epoch, cfg.train.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and cfg.train.amp and not torch.cuda.is_bf16_supported())
    criterion = SaltLoss(cfg.loss)
    start_epoch, best, history = 0, {"score": -1.0, "epoch": -1}, []
    if resume and last_path.exists():
        state = load_checkpoint(last_path, cfg)
        load_model_state(model, state, last_path)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best, history = state["epoch"], state["best"], state["history"]
        restore_rng(state["rng"])
    elif last_path.exists() and not resume:
        raise PipelineError(f"{last_path} exists: pass --resume to continue fold {fold}, or use a new --run NAME")

    # DDP broadcasts rank 0's buffers (BatchNorm statistics) each forward; lifetime traces are all-reduced
    # by the heads after each step, so every rank holds the same trace either way
    # with one plastic step, eta only shapes the lifetime trace (under no_grad): DDP must expect it unused
    single_step = cfg.model.head.rule != "none" and cfg.model.head.steps == 1
    net = DistributedDataParallel(model, find_unused_parameters=single_step) if ctx.enabled else model
    heads = plastic_heads(model)
    reduce = distributed.all_reduce_mean if ctx.enabled else None
    for epoch in range(start_epoch, cfg.train.epochs):
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return {"fold": fold, "stopped_at": epoch}
        if epoch > 0 and cfg.model.head.lifetime_reset_each_epoch:
            for head in heads:
                head.reset_lifetime()
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        net.train()
        started, loss_sum, seen = time.perf_counter(), 0.0, 0
        # disable=None: a bar on a terminal, nothing in a log file
        progress = tqdm(loader, total=steps_per_epoch, desc=f"fold {fold} epoch {epoch + 1}/{cfg.train.epochs}",
                        disable=None if ctx.is_main else True, leave=False, mininterval=2)
        for step, batch in enumerate(progress):
            if step >= steps_per_epoch:
                break
            images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
            masks = batch["mask"].to(device, non_blocking=True)
            with autocast_for(device, cfg):
                logits, empty_logit = net(images)
            loss = criterion(logits, masks, empty_logit, batch["empty"].to(device), epoch)
            if not torch.isfinite(loss):
                raise PipelineError(
                    f"fold {fold} epoch {epoch + 1} step {step + 1}: loss is {float(loss.detach())} (plasticity or the learning rate diverged); "
                    f"{last_path} still holds the last good epoch. Lower optim.lr or model.head.eta_init and --resume"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            for head in heads:
                head.consolidate(reduce)
            loss_sum += float(loss.detach()) * len(images)
            seen += len(images)
            progress.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
        elapsed = time.perf_counter() - started
        val_loss, val_metric = _validate(net, val_loader, criterion, cfg, epoch, device, ctx)
        row = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / max(seen, 1),
            "val_loss": val_loss,
            "val_metric": val_metric,
            "train_img_per_s": seen * ctx.world_size / max(elapsed, 1e-9),
            "seconds": elapsed,
        }
        for head in heads:
            row.update(head.statistics())
        history.append(row)
        improved = val_metric > best["score"]
        if improved:
            best = {"score": val_metric, "epoch": epoch + 1}
        if ctx.is_main:
            if improved:
                save_checkpoint(best_path, cfg, model, optimizer, scheduler, scaler, epoch + 1, best, history)
            save_checkpoint(last_path, cfg, model, optimizer, scheduler, scaler, epoch + 1, best, history)
            columns = list(dict.fromkeys(key for entry in history for key in entry))
            write_csv(fold_dir / "metrics.csv", columns, [[entry.get(c, "") for c in columns] for entry in history])
            print(
                f"fold {fold} epoch {epoch + 1}/{cfg.train.epochs}: train_loss {row['train_loss']:.4f} val_loss {val_loss:.4f} "
                f"val_metric {val_metric:.4f}{' *' if improved else ''} {row['train_img_per_s']:.0f} img/s {elapsed:.1f}s",
                flush=True,
            )
        distributed.barrier(ctx)

    checksums = distributed.all_gather_floats(sum(float(p.detach().double().sum()) for p in model.parameters()), ctx)
    if ctx.is_main:
        if len(set(checksums)) != 1:
            raise PipelineError(f"fold {fold}: ranks ended with different weights (checksums {checksums}); DDP lost sync")
        write_csv(fold_dir / "ranks.csv", ["rank", "weight_checksum"], list(enumerate(checksums)))
        write_oof(cfg, fold_dir, model, train, split, device)
    distributed.barrier(ctx)
    return {"fold": fold, "best_score": best["score"], "best_epoch": best["epoch"]}


def write_oof(cfg: Config, fold_dir: Path, model, train: TrainSet, split: FoldData, device) -> None:
    """Probabilities of the held-out images from the best checkpoint, 101x101 float16, with their ids."""
    best_path = fold_dir / "best.pt"
    state = load_checkpoint(best_path, cfg)
    load_model_state(model, state, best_path)
    index = split.val_index
    probs = predict_probs(model, train.images[index], train.depth[index], cfg, device, views=cfg.infer.tta, batch_size=cfg.infer.batch_size)
    write_csv(fold_dir / "oof_ids.csv", ["id"], [[i] for i in train.ids[index]])
    save_npy(fold_dir / "oof.npy", probs.astype(np.float16))


def fold_is_finished(cfg: Config, fold_dir: Path) -> bool:
    if not (fold_dir / "oof.npy").exists() or not (fold_dir / "last.pt").exists():
        return False
    return load_checkpoint(fold_dir / "last.pt")["epoch"] >= cfg.train.epochs


def train(cfg: Config, run_dir: Path, folds: list[int] | None = None, resume: bool = False, stop_after_epoch: int | None = None) -> list[dict]:
    """Train the given folds (all when None) of a run; finished folds are skipped."""
    ctx = distributed.setup()
    try:
        prepare_run_dir(cfg, run_dir, ctx.is_main)
        distributed.barrier(ctx)
        train_set = load_train_cache(Path(cfg.data.data_dir))
        n_folds = number_of_folds(Path(cfg.data.folds_file))
        folds = list(range(n_folds)) if folds is None else folds
        results = []
        for fold in folds:  # an out-of-range fold is refused by fold_split, before any work
            if fold_is_finished(cfg, run_dir / f"fold_{fold}"):
                if ctx.is_main:
                    print(f"fold {fold}: already finished in {run_dir}, skipped", flush=True)
                results.append({"fold": fold, "skipped": True})
                continue
            results.append(train_fold(cfg, run_dir, fold, train_set, ctx, resume, stop_after_epoch))
        return results
    finally:
        distributed.teardown(ctx)
