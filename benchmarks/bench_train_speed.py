"""Training speed of a preset on this machine: what one optimizer step of `cpu-demo` (or --config NAME) costs here,
and so how long its step budget takes. Machines of the same size differ (the instruction set matters: AVX-512
against AVX2 alone), so the CPU preset's 15-minute budget is a property of the machine, measured here.

    .venv/bin/python benchmarks/bench_train_speed.py [--config cpu-demo] [--steps 30] [--set KEY=VALUE --name NAME]
    .venv/bin/python benchmarks/bench_train_speed.py --vs KEY=VALUE [--vs ...] --name NAME   (two settings, paired)

writes benchmarks/results/train-speed-<cpu flags>.json (or NAME.json): seconds per step (median of timed steps
after warm-up), images per second, the preset's steps and the minutes they take, the CPU's vector extensions.
With --vs, side "a" (the preset with --set) and side "b" (the same plus --vs) take their steps in turn in one
process, and the result is the median over rounds of t_b / t_a: this machine's speed drifts by tens of percent
within an hour, which two separate runs compare as if it were the settings' difference; a round's two steps,
seconds apart, see the same machine. Every step sees a real batch of synthetic data through the trainer's loss,
with a finite loss checked; the batches are drawn before the clock starts (a step of the model, not of the loader).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import check_batch, check_finite, cpu_extensions, interleaved, paired_overhead, write_result


def _synthetic_train():
    from pipeline.data.prep import load_train_cache, prep
    from pipeline.data.synth import synthesize

    with tempfile.TemporaryDirectory() as work:
        synthesize(Path(work) / "data", 160, 8, seed=0)
        prep(Path(work) / "data")
        return load_train_cache(Path(work) / "data")


def _stepper(config: str, overrides: tuple[str, ...], train, count: int):
    """(the config, a function that makes one optimizer step of it on the next of `count` real batches of `train`,
    drawn here through the training augmentation so that the timed call is the step alone)."""
    import torch

    from pipeline.config import load_config
    from pipeline.data.dataset import SaltDataset
    from pipeline.models.factory import build_model
    from pipeline.training.losses import SaltLoss
    from pipeline.training.schedule import build_optimizer

    what = " ".join((config, *overrides))
    cfg = load_config(config, list(overrides))
    torch.manual_seed(0)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = build_model(cfg).to(memory_format=memory_format).train()
    optimizer = build_optimizer(model, cfg.optim)
    criterion = SaltLoss(cfg.loss, 10)
    dataset = SaltDataset(train.images, train.depth, cfg, train.masks, augment=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True)
    batches = []
    while len(batches) < count:
        batches += list(loader)
    batches = batches[:count]
    for batch in batches:
        check_batch(batch["image"], what)
        batch["image"] = batch["image"].contiguous(memory_format=memory_format)
    remaining = iter(batches)

    def step() -> None:
        batch = next(remaining)
        logits, empty_logit = model(batch["image"])
        loss = criterion(logits, batch["mask"], empty_logit, batch["empty"], 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        check_finite(loss.detach(), f"train step of {what}")

    return cfg, step


def run(config: str = "cpu-demo", steps: int = 30, warmup: int = 5, overrides: tuple[str, ...] = ()) -> dict:
    cfg, step = _stepper(config, overrides, _synthetic_train(), warmup + steps)
    times = []
    for index in range(warmup + steps):
        started = time.perf_counter()
        step()
        if index >= warmup:
            times.append(time.perf_counter() - started)
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


def run_paired(config: str = "cpu-demo", steps: int = 30, warmup: int = 5, shared: tuple[str, ...] = (),
               versus: tuple[str, ...] = ()) -> dict:
    """Side "a" (`config` with `shared`) and side "b" (the same plus `versus`), one step of each per round in a
    seeded random order; b's cost relative to a is the median over rounds of t_b / t_a (common.paired_overhead)."""
    train = _synthetic_train()
    cfg_a, step_a = _stepper(config, shared, train, warmup + steps)
    cfg_b, step_b = _stepper(config, shared + versus, train, warmup + steps)
    timings = interleaved({"a": step_a, "b": step_b}, rounds=steps, warmup=warmup)
    ratio = paired_overhead(timings, "a")["b"]
    budget = cfg_a.train.steps
    return {
        "config": config,
        "overrides": list(shared),
        "b_overrides": list(versus),
        "cpu_extensions": cpu_extensions(),
        "batch_size": {"a": cfg_a.train.batch_size, "b": cfg_b.train.batch_size},
        "timed_steps": steps,
        "step_s_median": {side: timings[side]["median_s"] for side in ("a", "b")},
        "b_over_a": {key: 1 + value for key, value in ratio.items()},  # median, quartiles, min, max of t_b / t_a
        "preset_steps": budget,
        "b_steps_in_a_budget_minutes": None if budget is None else budget / (1 + ratio["median"]),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-demo")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--set", action="append", default=[], help="a config override (KEY=VALUE), repeatable")
    parser.add_argument("--vs", action="append", default=[], help="side b's extra override (KEY=VALUE), repeatable: time the two paired")
    parser.add_argument("--name", help="the result's name (default: train-speed-CONFIG-CPU)")
    args = parser.parse_args()
    if args.vs and not args.name:
        parser.error("--vs needs --name (the result names what was compared)")
    if args.vs:
        result = run_paired(args.config, args.steps, shared=tuple(args.set), versus=tuple(args.vs))
    else:
        result = run(args.config, args.steps, overrides=tuple(args.set))
    tag = "avx512" if any(flag.startswith("avx512") for flag in result["cpu_extensions"]) else "avx2"
    write_result(args.name or f"train-speed-{args.config}-{tag}", result)
