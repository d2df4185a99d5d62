"""Train-step speed of the same U-Net with each head vs the plain head (batch 16, 128 px), and batched
plastic training vs an original-style loop (batch size 1, trace carried from image to image).

Goals: head overhead <= 5%; batched >= 20x the img/s of the batch-1 loop.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import write_result

from pipeline.config import load_config
from pipeline.models.factory import build_model, count_parameters
from pipeline.models.plastic import plastic_heads
from pipeline.study.ablate import HEADS



def bench_config(size: int, extra: list[str]):
    base = [f"data.input_size={size}", "data.resize=false"] if size >= 101 else [f"data.input_size={size}", "data.resize=true"]
    return load_config("cpu-demo", base + extra)


class Stepper:
    """One model, optimizer and batch; `step()` is one full training step."""

    def __init__(self, cfg, batch: int, device):
        torch.manual_seed(0)
        self.model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        size = cfg.data.input_size
        self.images = torch.randn(batch, 1, size, size, device=device).contiguous(memory_format=torch.channels_last)
        self.masks = (torch.rand(batch, 1, size, size, device=device) > 0.5).float()
        self.heads = plastic_heads(self.model)
        self.loss = torch.nn.BCEWithLogitsLoss()
        self.batch = batch
        self.device = device

    def step(self, index: int = 0):
        images = self.images if self.batch == len(self.images) else self.images[index : index + 1]
        logits, _ = self.model(images)
        loss = self.loss(logits, self.masks[: len(images)])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        for head in self.heads:
            head.consolidate()

    def rate(self, steps: int) -> float:
        self.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for i in range(steps):
            self.step(i)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return steps * self.batch / (time.perf_counter() - started)


def run(size: int = 128, batch: int = 16, steps: int = 10, rounds: int = 4) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steppers = {name: Stepper(bench_config(size, overrides), batch, device) for name, overrides in HEADS.items()}
    rates = {name: 0.0 for name in HEADS}
    for _ in range(rounds):  # interleaved rounds, best of each: fair under background load
        for name, stepper in steppers.items():
            rates[name] = max(rates[name], stepper.rate(steps))
    overhead = {name: 1 - rates[name] / rates["none"] for name in HEADS}
    # original style: batch size 1, the rows design, its trace carried from image to image (lifetime episode)
    original = Stepper(bench_config(size, HEADS["original-rows"] + ["model.head.episode=lifetime"]), 1, device)
    original.images = torch.randn(batch, 1, size, size, device=device).contiguous(memory_format=torch.channels_last)
    original_rate = max(original.rate(steps * 4) for _ in range(rounds))
    return {
        "device": str(device),
        "batch": batch,
        "input_px": size,
        "encoder": "tu-resnet10t depth 3, decoder (32,16,8) (cpu-demo U-Net)",
        "train_img_per_s": rates,
        "overhead_vs_none": overhead,
        "parameters": {name: count_parameters(s.model) for name, s in steppers.items()},
        "original_style_batch1_img_per_s": original_rate,
        "batched_hebb_vs_original_speedup": rates["hebb"] / original_rate,
        "goals": {"overhead_vs_none": 0.05, "batched_hebb_vs_original_speedup": 20.0},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    write_result("heads", run(args.size, args.batch, args.steps))
