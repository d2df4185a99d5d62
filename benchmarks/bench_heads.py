"""What a plastic head costs, and what batching buys, measured so that each row compares like with like.

1. Overhead: one full train step (forward, loss, backward, AdamW step, consolidate) of the same U-Net with each
   head vs the plain head, on the presets' U-Nets at 128 px: cpu-demo's (tu-resnet10t, 5 stages, batch 16),
   cpu-tiny's (tu-resnet10t, 3 stages, batch 16) and gpu-full's (ResNet34, batch 8 on CPU). Goal: <= 5% for every
   rule. Each plastic rule runs twice in the same interleaved rounds: with the fused presynaptic path (the
   default) and with plain autograd (`head.fused = False`, the implementation before it), so before/after
   come from the same benchmark under the same load.
2. Batching: for each head design, B images as one batch vs the same B images one at a time (batch 1 cycling
   over B distinct images): the same head, the same images, the same number of image-steps on both sides.
   The original Plastic-UNet (placement original: its own dynamics, trained at batch size 1) is its own row.

Timings are medians of interleaved rounds (every side once per round), with min and max. The overhead of a head is
paired by round: the median over rounds of t_head / t_none - 1 (with quartiles), both timed in the same round,
so load that drifts between rounds cancels. Every step checks its batch is not empty and its loss is finite, and
fails loudly otherwise.

    .venv/bin/python benchmarks/bench_heads.py       (writes benchmarks/results/heads.json)
"""

from __future__ import annotations

import argparse

import torch
from common import check_batch, check_finite, interleaved, paired_overhead, real_batch, write_result

from pipeline.config import load_config
from pipeline.models.factory import build_model, count_parameters
from pipeline.models.plastic import plastic_heads
from pipeline.study.ablate import HEADS

NETWORKS = {
    # the U-Net cpu-demo trained before issue 28 (now the cpu-scratch preset), as the committed figures measured
    "cpu-demo": {"preset": "cpu-scratch", "batch": 16, "label": "tu-resnet10t depth 5, decoder (64,32,16,16,8), aux head"},
    "cpu-tiny": {"preset": "cpu-tiny", "batch": 16, "label": "tu-resnet10t depth 3, decoder (32,16,8)"},
    # pinned to the ResNet34 the committed figures measured (gpu-full itself now trains a pretrained Lite2)
    "gpu-full": {"preset": "gpu-full", "batch": 8, "label": "ResNet34, decoder (256,128,64,32,16), depth channel, aux head",
                 "set": ["model.encoder=resnet34", "model.encoder_weights=null"]},
}
OVERHEAD_HEADS = [name for name in HEADS if "train.batch_size=1" not in HEADS[name]]  # the batch-1 heads (original): see the batching rows
PLAIN = " (plain autograd)"  # suffix of the rows run without the fused presynaptic path


class Stepper:
    """One model and optimizer; `step(images, masks)` is one full training step."""

    def __init__(self, cfg, fused: bool = True):
        torch.manual_seed(0)
        self.model = build_model(cfg).to(memory_format=torch.channels_last).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.heads = plastic_heads(self.model)
        for head in self.heads:
            head.fused = fused
        self.loss = torch.nn.BCEWithLogitsLoss()
        self.name = cfg.model.head.rule

    def step(self, images, masks):
        check_batch(images, self.name)
        logits, _ = self.model(images)
        loss = self.loss(logits.float(), masks)
        check_finite(loss, self.name)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        for head in self.heads:
            head.consolidate()


class HeadAlone:
    """The head by itself: forward, a loss, backward and consolidate on the decoder output the U-Net gives it
    (the same shape and memory format, post-ReLU values), so its cost is timed without the network's noise."""

    def __init__(self, stepper: Stepper, features: torch.Tensor):
        self.head = stepper.heads[0]  # every head, `none` included, is a PlasticHead
        self.features, self.name = features, stepper.name

    def step(self):
        features = self.features.detach().requires_grad_()
        loss = self.head(features).float().mean()
        check_finite(loss, self.name)
        loss.backward()
        self.head.consolidate()


def head_input(stepper: Stepper, images) -> torch.Tensor:
    """The decoder output the head reads (captured with a forward hook)."""
    captured = []
    handle = stepper.heads[0].register_forward_hook(lambda module, args, out: captured.append(args[0].detach()))
    with torch.no_grad():
        stepper.model(images)
    handle.remove()
    return captured[0]


def overhead(network: str, size: int, rounds: int) -> dict:
    spec = NETWORKS[network]
    base = [f"data.input_size={size}", "data.resize=false"] + spec.get("set", [])
    steppers = {name: Stepper(load_config(spec["preset"], base + HEADS[name])) for name in OVERHEAD_HEADS}
    for name in OVERHEAD_HEADS:
        if name not in ("none", "original-rows"):  # the rows placement and `none` have no fused path
            steppers[name + PLAIN] = Stepper(load_config(spec["preset"], base + HEADS[name]), fused=False)
    cfg = load_config(spec["preset"], base)
    images, masks = real_batch(cfg, spec["batch"])
    timings = interleaved({name: (lambda s=s: s.step(images, masks)) for name, s in steppers.items()}, rounds=rounds)
    none = timings["none"]["median_s"]
    paired = paired_overhead(timings, "none")
    features = head_input(steppers["hebb"], images)
    alone = {name: HeadAlone(s, features) for name, s in steppers.items() if name != "original-rows"}
    head_timings = interleaved({name: h.step for name, h in alone.items()}, rounds=4 * rounds)
    return {
        "network": f"{spec['label']} ({network} U-Net)",
        "batch": spec["batch"],
        "input_px": size,
        "step_s": timings,
        # paired by round (median of per-round ratios, with quartiles); the ratio of medians is kept for reference
        "overhead_vs_none": {name: o["median"] for name, o in paired.items()},
        "overhead_vs_none_rounds": paired,
        "overhead_of_medians": {name: t["median_s"] / none - 1 for name, t in timings.items()},
        "head_alone_s": head_timings,
        "head_input_shape": list(features.shape),
        # the head's own extra cost over the plain head, as a share of the plain network's whole step: the
        # component the end-to-end overhead is made of, measured without the network's run-to-run noise
        "head_extra_share_of_step": {name: (t["median_s"] - head_timings["none"]["median_s"]) / none for name, t in head_timings.items()},
        "parameters": {name: count_parameters(s.model) for name, s in steppers.items()},
    }


def batching(size: int, batch: int, rounds: int) -> dict:
    """Per design: one batch of B vs B batches of 1 over the same B images (cpu-demo U-Net)."""
    base = [f"data.input_size={size}", "data.resize=false"]
    cfg = load_config("cpu-tiny", base)  # the batching rows stay on the small U-Net, where the head weighs most
    images, masks = real_batch(cfg, batch)
    rows = {}
    for name in ("none", "hebb", "original-rows"):
        batched, single = Stepper(load_config("cpu-tiny", base + HEADS[name])), Stepper(load_config("cpu-tiny", base + HEADS[name]))
        timings = interleaved({
            "batch": lambda: batched.step(images, masks),
            "batch1": lambda: [single.step(images[i : i + 1], masks[i : i + 1]) for i in range(batch)],
        }, rounds=rounds)
        rows[name] = {"batch_img_per_s": batch / timings["batch"]["median_s"], "batch1_img_per_s": batch / timings["batch1"]["median_s"],
                      "timings": timings}
        rows[name]["batching_speedup"] = rows[name]["batch_img_per_s"] / rows[name]["batch1_img_per_s"]
    original = Stepper(load_config("cpu-tiny", base + [o for o in HEADS["original"] if not o.startswith("train.batch_size")]))
    timing = interleaved({"batch1": lambda: [original.step(images[i : i + 1], masks[i : i + 1]) for i in range(batch)]}, rounds=rounds)
    rows["original (Plastic-UNet dynamics, batch 1)"] = {"batch1_img_per_s": batch / timing["batch1"]["median_s"], "timings": timing}
    return {"network": NETWORKS["cpu-tiny"]["label"] + " (cpu-tiny U-Net)", "input_px": size, "images": batch, "designs": rows}


def run(size: int = 128, rounds: int = 15, networks: tuple[str, ...] = tuple(NETWORKS), with_batching: bool = True) -> dict:
    result = {
        "device": "cpu",
        "overhead": {network: overhead(network, size, rounds) for network in networks},
        "goals": {"overhead_vs_none": 0.05},
    }
    if with_batching:
        result["batching"] = batching(size, NETWORKS["cpu-tiny"]["batch"], rounds)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--networks", default=",".join(NETWORKS), help="U-Nets to measure the overhead on")
    parser.add_argument("--no-batching", action="store_true", help="skip the batching rows")
    parser.add_argument("--name", default="heads", help="results file benchmarks/results/NAME.json")
    args = parser.parse_args()
    write_result(args.name, run(args.size, args.rounds, tuple(args.networks.split(",")), not args.no_batching))
