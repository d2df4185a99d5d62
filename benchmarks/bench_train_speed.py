"""Training speed of a preset on this machine: what one optimizer step of `cpu-demo` (or --config NAME) costs here,
and so how long its step budget takes. Machines of the same size differ (the instruction set matters: AVX-512
against AVX2 alone), so the CPU preset's 15-minute budget is a property of the machine, measured here.

    .venv/bin/python benchmarks/bench_train_speed.py [--config cpu-demo] [--steps 30] [--set KEY=VALUE --name NAME]

writes benchmarks/results/train-speed-<cpu flags>.json: seconds per step (median of timed steps after warm-up),
images per second, the preset's steps and the minutes they take, the CPU's vector extensions. Every step sees a
real batch of synthetic data through the trainer's loss, with a finite loss checked.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import cpu_extensions, write_result


def run(config: str = "cpu-demo", steps: int = 30, warmup: int = 5, overrides: tuple[str, ...] = ()) -> dict:
    import torch

    from pipeline.config import load_config
    from pipeline.data.dataset import SaltDataset
    from pipeline.data.synth import synthesize
    from pipeline.data.prep import load_train_cache, prep
    from pipeline.models.factory import build_model
    from pipeline.training.losses import SaltLoss
    from pipeline.training.schedule import build_optimizer

    with tempfile.TemporaryDirectory() as work:
        synthesize(Path(work) / "data", 160, 8, seed=0)
        prep(Path(work) / "data")
        train = load_train_cache(Path(work) / "data")
    cfg = load_config(config, list(overrides))
    torch.manual_seed(0)
    model = build_model(cfg).to(memory_format=torch.channels_last if cfg.train.channels_last else torch.contiguous_format).train()
    optimizer = build_optimizer(model, cfg.optim)
    criterion = SaltLoss(cfg.loss, 10)
    dataset = SaltDataset(train.images, train.depth, cfg, train.masks, augment=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True)
    times, seen = [], 0
    batches = iter(())
    for step in range(warmup + steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        started = time.perf_counter()
        images = batch["image"].contiguous(memory_format=torch.channels_last if cfg.train.channels_last else torch.contiguous_format)
        logits, empty_logit = model(images)
        loss = criterion(logits, batch["mask"], empty_logit, batch["empty"], 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss), f"step {step}: loss {float(loss)}"
        if step >= warmup:
            times.append(time.perf_counter() - started)
            seen += len(images)
    step_s = statistics.median(times)
    budget = cfg.train.steps
    return {
        "config": config,
        "overrides": list(overrides),
        "cpu_extensions": cpu_extensions(),
        "batch_size": cfg.train.batch_size,
        "timed_steps": steps,
        "step_s_median": step_s,
        "img_per_s": cfg.train.batch_size / step_s,
        "preset_steps": budget,
        "preset_training_minutes": None if budget is None else budget * step_s / 60,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-demo")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--set", action="append", default=[], help="a config override (KEY=VALUE), repeatable")
    parser.add_argument("--name", help="the result's name (default: train-speed-CONFIG-CPU)")
    args = parser.parse_args()
    result = run(args.config, args.steps, overrides=tuple(args.set))
    tag = "avx512" if any(flag.startswith("avx512") for flag in result["cpu_extensions"]) else "avx2"
    write_result(args.name or f"train-speed-{args.config}-{tag}", result)
