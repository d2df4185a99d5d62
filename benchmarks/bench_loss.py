"""The Lovasz phase's cost: one full train step of the cpu-demo U-Net (128 px, batch 16) with the loop-per-image
Lovasz of smp vs the batched one in pipeline/training/losses.py, beside BCE+Dice; plus the aten calls each
loss makes (forward and backward), which is what a fast GPU pays for.

    .venv/bin/python benchmarks/bench_loss.py        (writes benchmarks/results/loss.json)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import check_batch, check_finite, interleaved, real_batch, write_result
from segmentation_models_pytorch.losses import LovaszLoss

from pipeline.config import load_config
from pipeline.models.factory import build_model
from pipeline.training.losses import SaltLoss


def smp_symmetric_lovasz(logits, masks):
    lovasz = LovaszLoss(mode="binary", per_image=True)
    return 0.5 * (lovasz(logits, masks) + lovasz(-logits, 1 - masks))


def aten_calls(loss_fn, logits, masks) -> int:
    logits = logits.detach().clone().requires_grad_()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        loss_fn(logits, masks).backward()
    return sum(1 for event in profile.events() if event.name.startswith("aten::"))


def run(batch: int = 16, size: int = 128, rounds: int = 7) -> dict:
    cfg = load_config("cpu-tiny", [f"data.input_size={size}", "data.resize=false", "model.head.rule=none"])
    torch.manual_seed(0)
    model = build_model(cfg).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images, masks = real_batch(cfg, batch)
    check_batch(images, "loss")
    images = images.contiguous(memory_format=torch.channels_last)
    salt = SaltLoss(cfg.loss, cfg.train.epochs)
    losses = {
        "bce_dice": lambda z, m: salt.segmentation(z, m, epoch=0),
        "lovasz_smp_loop": smp_symmetric_lovasz,
        "lovasz_batched": lambda z, m: salt.segmentation(z, m, epoch=10**6),
    }

    def step(loss_fn):
        def one():
            logits, _ = model(images)
            loss = loss_fn(logits.float(), masks)
            check_finite(loss, "loss")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return one

    logits = model(images)[0].detach().float()
    same = float(losses["lovasz_smp_loop"](logits, masks)), float(losses["lovasz_batched"](logits, masks))
    if not np.isclose(*same, rtol=1e-5):
        raise RuntimeError(f"the two Lovasz implementations disagree ({same}): they would not be doing the same work")
    timings = interleaved({name: step(fn) for name, fn in losses.items()}, rounds=rounds)
    return {
        "device": "cpu",
        "batch": batch,
        "input_px": size,
        "network": "cpu-demo U-Net (tu-resnet10t depth 3, decoder 32,16,8), plain head",
        "train_step_s": timings,
        "aten_calls_forward_backward": {name: aten_calls(fn, logits, masks) for name, fn in losses.items()},
        "lovasz_values_smp_vs_batched": same,
        "batched_vs_loop_step_speedup": timings["lovasz_smp_loop"]["median_s"] / timings["lovasz_batched"]["median_s"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    write_result("loss", run(args.batch, args.size, args.rounds))
