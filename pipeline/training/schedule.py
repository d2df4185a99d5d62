"""Learning-rate schedules as step-wise multipliers: linear warm-up, then cosine (optionally restarting)."""

from __future__ import annotations

import math

import torch

from pipeline.config import OptimConfig
from pipeline.models.plastic import plasticity_parameters


def lr_multiplier(step: int, total_steps: int, warmup_steps: int, cycles: int, min_ratio: float) -> float:
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = max(1, total_steps - warmup_steps)
    cycle_length = max(1, math.ceil(remaining / max(1, cycles)))
    position = ((step - warmup_steps) % cycle_length) / cycle_length
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * position))


ENCODER_PREFIX = "unet.encoder."  # SaltNet's encoder parameters


def parameter_groups(model: torch.nn.Module, cfg: OptimConfig) -> list[dict]:
    """The network (lr, weight decay) first; the encoder in its own group at lr * encoder_lr_scale when that
    is not 1; then the plasticity parameters (lr * plastic_lr_scale, no decay)."""
    network, encoder, plastic = [], [], []
    split_encoder = cfg.encoder_lr_scale != 1.0
    of_plasticity = {id(parameter) for parameter in plasticity_parameters(model)}  # the heads say which are theirs
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if id(parameter) in of_plasticity:
            plastic.append(parameter)
        elif split_encoder and name.startswith(ENCODER_PREFIX):
            encoder.append(parameter)
        else:
            network.append(parameter)
    groups = [{"params": network, "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
    if encoder:
        groups.append({"params": encoder, "lr": cfg.lr * cfg.encoder_lr_scale, "weight_decay": cfg.weight_decay})
    if plastic:
        groups.append({"params": plastic, "lr": cfg.lr * cfg.plastic_lr_scale, "weight_decay": 0.0})
    return groups


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the parameter groups; on CUDA the fused kernels (one launch for all parameters instead
    of a Python loop of per-tensor ops); on CPU torch's default (foreach) path, as before."""
    groups = parameter_groups(model, cfg)
    on_cuda = all(p.is_cuda for group in groups for p in group["params"]) and any(group["params"] for group in groups)
    fused = {"fused": True} if on_cuda else {}
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, **fused)
    return torch.optim.AdamW(groups, lr=cfg.lr, **fused)


def build_scheduler(optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int):
    total = steps_per_epoch * epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    cycles = cfg.cycles if cfg.schedule == "restarts" else 1
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, total, warmup, cycles, cfg.min_lr_ratio)
    )


def cycle_end_epochs(steps_per_epoch: int, epochs: int, cfg: OptimConfig) -> list[int]:
    """Epochs (1-based) after which a cosine cycle has ended: where the next epoch's first step restarts the
    rate, and the last epoch. Snapshot ensembles keep the model at each."""
    total = steps_per_epoch * epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    cycles = cfg.cycles if cfg.schedule == "restarts" else 1
    rate = [lr_multiplier(step, total, warmup, cycles, cfg.min_lr_ratio) for step in range(total)]
    ends = [epoch for epoch in range(1, epochs) if rate[epoch * steps_per_epoch] > rate[epoch * steps_per_epoch - 1]]
    return ends + [epochs]
