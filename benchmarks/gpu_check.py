"""The prepared GPU check (issue 29): one command that anyone with a GPU runs as is, in about 8 minutes on one GPU.

    .venv/bin/python benchmarks/gpu_check.py --out /tmp/gpu-check          # on the GPU machine
    .venv/bin/python benchmarks/gpu_check.py --out /tmp/gpu-check --cpu    # dry mode: every section, tiny, on CPU

writes OUT/gpu-check.json after every section (a time-out keeps what ran; a section that fails records its error
and the next one runs) and, without --cpu, benchmarks/results/gpu-check.json. Sections:

- environment: torch, CUDA, cuDNN, the GPU, its compute capability, the precision the pipeline picks (bf16 with
  no scaler where native, fp16 with a GradScaler on older GPUs).
- correctness: the fused plastic head against the plain autograd path on the device (fp32, within 1e-5); the
  preset's loss and gradients in fp32 against mixed precision; real training steps under
  torch.cuda.set_sync_debug_mode("error") (a step that waits for the GPU is reported with its line); every
  convolution's weight in channels_last.
- step: the preset's training step with the batch already on the GPU, at several batch sizes: GPU ms per step
  (CUDA events), CPU enqueue ms per step, the GPU's busy fraction, images per second; every loss finite.
- feed: training batches per second from the DataLoader (albumentations on the CPU, the preset's workers) against
  DeviceBatches (train.augment_on: device, the fold held and augmented on the GPU), same images and transforms.
- trainer: the real trainer on synthetic data for two epochs: its epoch broken into training, validation and the
  rest (checkpoints, metrics, TensorBoard), last.pt's bytes and write time, and the projected gpu-full wall time.
- inference: the infer stage's images per second against a bare forward of the same model.
- compile: torch.compile of the model (the plastic head on its plain path under compile): gradients against
  eager, compile seconds, step time against eager.
- cli: the whole path as a user runs it (`python -m pipeline run` with the smoke preset, then a two-epoch
  gpu-full), in a scratch folder.
- multi_gpu: with two or more GPUs, a two-rank torchrun training whose ranks must end with equal weights.

Dry mode (--cpu) runs the same sections with tiny sizes on the CPU (the smoke preset, batch 2-4, the compile
check with the eager backend): the test suite runs it, so the check cannot rot before a GPU is at hand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, RESULTS, machine

from pipeline.fileio import write_json


@dataclass
class Check:
    out: Path
    cpu: bool  # dry mode

    @property
    def preset(self) -> str:
        return "smoke" if self.cpu else "gpu-full"

    @property
    def device(self):
        import torch

        return torch.device("cpu" if self.cpu else "cuda")

    @property
    def overrides(self) -> list[str]:
        return ["data.input_size=128", "data.resize=false", "train.device=cpu"] if self.cpu else []

    def config(self, extra: list[str] = ()):
        from pipeline.config import load_config

        return load_config(self.preset, self.overrides + list(extra))

    def synthetic(self, name: str, n_train: int, n_test: int) -> Path:
        from pipeline.data.folds import make_folds
        from pipeline.data.prep import prep
        from pipeline.data.synth import synthesize

        root = self.out / "work" / name
        if not (root / "data" / "train.csv").exists():
            synthesize(root / "data", n_train, n_test, seed=0)
        prep(root / "data")
        make_folds(root / "data", root / "folds.csv", k=5, seed=42, force=True)
        return root


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batches_on_device(check: Check, cfg, batch_size: int, count: int) -> list[dict]:
    """`count` real augmented batches of synthetic images, moved to the device once (a GPU-resident feed)."""
    import torch

    from pipeline.data.dataset import SaltDataset
    from pipeline.data.prep import load_train_cache

    train = load_train_cache(check.synthetic("feed", max(64, batch_size * 2), 8) / "data")
    dataset = SaltDataset(train.images, train.depth, cfg, train.masks, augment=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=False)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    out = []
    while len(out) < count:
        for batch in loader:
            if len(batch["image"]) < batch_size:
                continue
            out.append({"image": batch["image"].to(check.device).contiguous(memory_format=memory_format), "mask": batch["mask"].to(check.device),
                        "empty": batch["empty"].to(check.device)})
            if len(out) == count:
                break
    return out


def model_and_step(check: Check, cfg):
    """The preset's model, optimizer, loss and one training step as the trainer runs it."""
    import torch

    from pipeline.devices import autocast, needs_grad_scaler
    from pipeline.models import plastic
    from pipeline.models.factory import build_model
    from pipeline.training.losses import SaltLoss
    from pipeline.training.schedule import build_optimizer

    torch.manual_seed(0)
    model = build_model(cfg).to(check.device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model, cfg.optim)
    scaler = torch.amp.GradScaler(check.device.type, enabled=needs_grad_scaler(check.device, cfg.train.amp))
    criterion = SaltLoss(cfg.loss, 10)

    def step(batch) -> torch.Tensor:
        with autocast(check.device, cfg.train.amp):
            logits, empty_logit = model(batch["image"])
        loss = criterion(logits, batch["mask"], empty_logit, batch["empty"], 0)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        plastic.on_step_end(model, lambda tensor: tensor)
        return loss.detach()

    return model, step


# ----- sections --------------------------------------------------------------------------------------------
def environment(check: Check) -> dict:
    import torch

    from pipeline.devices import amp_dtype, has_native_bf16, needs_grad_scaler

    info = {"machine": machine(), "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "gpus": torch.cuda.device_count(),
            "dry_mode": check.cpu, "preset": check.preset}
    device = check.device
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update({"gpu": props.name, "capability": list(torch.cuda.get_device_capability(device)), "memory_gib": props.total_memory / 2**30,
                     "native_bf16": has_native_bf16(device)})
    dtype = amp_dtype(device, True)
    info["amp_dtype"] = None if dtype is None else str(dtype).removeprefix("torch.")
    info["grad_scaler"] = needs_grad_scaler(device, True)
    return info


def correctness(check: Check) -> dict:
    import torch

    from pipeline.config import RULES, HeadConfig
    from pipeline.models.plastic import PlasticHead, fused_against_plain

    device, result = check.device, {}
    # the fused head against the plain autograd path, fp32 on the device
    worst = 0.0
    for rule in ["frozen", *RULES]:
        torch.manual_seed(0)
        head = PlasticHead(16, 1, HeadConfig(rule=rule)).to(device).train()
        features = torch.randn(4, 16, 64, 64, device=device).to(memory_format=torch.channels_last)
        weights = torch.randn(4, 1, 64, 64, device=device)
        for plain, fused in fused_against_plain(head, features, weights):
            worst = max(worst, float((plain - fused).abs().max() / plain.abs().max().clamp_min(1e-12)))
    result["fused_vs_plain_max_rel_diff"] = worst
    result["fused_vs_plain_ok"] = worst < 1e-5

    # fp32 against mixed precision: the preset's loss and gradients on one batch
    cfg = check.config()
    model, _ = model_and_step(check, cfg)
    from pipeline.training.losses import SaltLoss

    criterion = SaltLoss(cfg.loss, 10)
    batch = batches_on_device(check, cfg, 4, 1)[0]
    dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    grads, losses = [], []
    for mixed in (False, True):
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=mixed):
            logits, empty_logit = model(batch["image"])
        loss = criterion(logits, batch["mask"], empty_logit, batch["empty"], 0)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None]))
    result["mixed_dtype"] = str(dtype).removeprefix("torch.")
    result["loss_fp32"], result["loss_mixed"] = losses
    result["loss_rel_diff"] = abs(losses[1] - losses[0]) / max(abs(losses[0]), 1e-12)
    result["grad_cosine"] = float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0))
    result["mixed_ok"] = result["loss_rel_diff"] < 2e-2 and result["grad_cosine"] > 0.98

    # every convolution in channels_last
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    result["convs"] = len(convs)
    result["convs_not_channels_last"] = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)
                                         and m.weight.shape[-1] > 1 and not m.weight.is_contiguous(memory_format=torch.channels_last)]

    # real training steps with any GPU->CPU wait an error
    model, step = model_and_step(check, cfg)
    feed = batches_on_device(check, cfg, 4, 3)
    step(feed[0])  # the first step allocates and may sync legitimately (cudnn autotuning, lazy init)
    sync(device)
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in feed[1:]:
            step(batch)
        result["sync_free_steps"] = True
    except RuntimeError as error:
        result["sync_free_steps"] = False
        result["sync_error"] = "".join(traceback.format_exception_only(error)).strip()[-600:]
        result["sync_where"] = traceback.format_exc()[-1500:]
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode(0)
    return result


def step_benchmark(check: Check) -> dict:
    import torch

    cfg = check.config()
    sizes = [2, 4] if check.cpu else [32, 64, 128, 256]
    warmup, timed = (1, 2) if check.cpu else (5, 20)
    rows = []
    for batch_size in sizes:
        model, step = model_and_step(check, cfg)
        feed = batches_on_device(check, cfg, batch_size, 4)
        for i in range(warmup):
            step(feed[i % len(feed)])
        sync(check.device)
        losses, enqueue = [], []
        if check.device.type == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        began = time.perf_counter()
        for i in range(timed):
            tick = time.perf_counter()
            losses.append(step(feed[i % len(feed)]))
            enqueue.append(time.perf_counter() - tick)
        if check.device.type == "cuda":
            stop.record()
        sync(check.device)
        wall_ms = (time.perf_counter() - began) * 1000 / timed
        gpu_ms = start.elapsed_time(stop) / timed if check.device.type == "cuda" else None
        finite = bool(torch.isfinite(torch.stack(losses)).all())
        rows.append({"batch_size": batch_size, "wall_ms_per_step": wall_ms, "gpu_ms_per_step": gpu_ms,
                     "cpu_enqueue_ms_per_step": 1000 * sum(enqueue) / timed, "busy_fraction": None if gpu_ms is None else min(1.0, gpu_ms / wall_ms),
                     "img_per_s": batch_size * 1000 / wall_ms, "losses_finite": finite,
                     "max_memory_gib": torch.cuda.max_memory_allocated(check.device) / 2**30 if check.device.type == "cuda" else None})
        del model, step, feed
        if check.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(check.device)
    return {"preset": check.preset, "steps_timed": timed, "rows": rows}


def trainer_epoch(check: Check) -> dict:
    import pandas as pd
    import torch

    from pipeline.config import load_config
    from pipeline.fileio import torch_save
    from pipeline.rundir import RunDir
    from pipeline.training.trainer import augments_on_device, train

    n_train = 120 if check.cpu else 3200  # gpu-full's fold: 4/5 of the 4,000 competition images
    root = check.synthetic("trainer", n_train + n_train // 4, 100 if check.cpu else 2000)
    cfg = check.config([f"data.data_dir={root / 'data'}", f"data.folds_file={root / 'folds.csv'}", "train.epochs=2", "train.tensorboard=true"])
    run = RunDir(root / "run")
    started = time.perf_counter()
    train(cfg, run.root, [0])
    seconds = time.perf_counter() - started
    metrics = pd.read_csv(run.fold(0).metrics)
    last = run.fold(0).last
    state = torch.load(last, map_location="cpu", weights_only=False)
    with tempfile.TemporaryDirectory() as scratch:
        tick = time.perf_counter()
        torch_save(Path(scratch) / "last.pt", state)
        write_s = time.perf_counter() - tick
    rows = metrics.to_dict("records")
    epoch = rows[-1]  # the second epoch: warm (cudnn autotuned, workers started)
    train_s, epoch_s = float(epoch["seconds"]) if "seconds" in epoch else None, float(epoch["epoch_seconds"])
    full = load_config("gpu-full")
    per_image_s = epoch_s / n_train  # fold 0 holds out a fifth: the other n_train images train
    projected = per_image_s * 3200 * full.train.epochs * 5 + write_s * full.train.epochs * 5 / full.train.checkpoint_every
    return {"train_images": n_train, "augment_on": "device" if augments_on_device(cfg, check.device) else "loader", "epochs": rows,
            "wall_s": seconds, "train_s": train_s, "epoch_s": epoch_s,
            "validation_and_rest_s": None if train_s is None else epoch_s - train_s, "last_pt_bytes": last.stat().st_size,
            "last_pt_write_s": write_s, "checkpoint_every": cfg.train.checkpoint_every,
            "projected_gpu_full_minutes": projected / 60 if not check.cpu else None, "run": str(run.root)}


def feed(check: Check) -> dict:
    """Training batches per second on the device from the two feeds (train.augment_on): the DataLoader with the
    preset's workers (albumentations on the CPU, then a copy) against DeviceBatches (the fold held on the device,
    augmented there), the same images, batch size and transforms; what a training step has to beat."""
    import torch

    from pipeline.data.dataset import SaltDataset
    from pipeline.data.device_batches import DeviceBatches
    from pipeline.data.prep import load_train_cache

    cfg = check.config()
    n, batch_size, count = (64, 4, 6) if check.cpu else (3200, cfg.train.batch_size, 60)
    train = load_train_cache(check.synthetic("feed-paths", n, 8) / "data")
    workers = 0 if check.cpu else cfg.train.num_workers
    dataset = SaltDataset(train.images, train.depth, cfg, train.masks, augment=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
                                         pin_memory=not check.cpu, persistent_workers=bool(workers))
    on_device = DeviceBatches(train.images, train.depth, train.masks, cfg, check.device, batch_size, seed=0)

    def rate(batches) -> dict:
        means, seen, tick = [], 0, None
        for index, batch in enumerate(batches):
            if index == 2:  # after warm-up (workers started, kernels loaded)
                sync(check.device)
                tick, seen = time.perf_counter(), 0
            image = batch["image"].to(check.device, non_blocking=True)
            means.append(image.mean())
            seen += len(image)
            if index + 1 == count:
                break
        sync(check.device)
        return {"img_per_s": seen / (time.perf_counter() - tick), "mean_input": float(torch.stack(means).mean()), "batches": len(means)}

    result = {"batch_size": batch_size, "loader_workers": workers, "loader": rate(loader), "device": rate(on_device)}
    result["device_over_loader"] = result["device"]["img_per_s"] / result["loader"]["img_per_s"]
    return result


def inference(check: Check) -> dict:
    import numpy as np
    import torch

    from pipeline.data.dataset import batch_inputs
    from pipeline.data.prep import load_test_cache
    from pipeline.devices import autocast
    from pipeline.inference.infer import infer
    from pipeline.models.factory import build_model
    from pipeline.rundir import RunDir

    run = RunDir(check.out / "work" / "trainer" / "run")
    post = infer(run.root, force=True, allow_partial=True)
    cfg = run.load_config()
    test = load_test_cache(Path(cfg.data.data_dir))
    model = build_model(cfg).to(check.device).eval()
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    inputs = [batch_inputs(test.images[i : i + cfg.infer.batch_size], test.depth[i : i + cfg.infer.batch_size], cfg.data).to(check.device).contiguous(
        memory_format=memory_format) for i in range(0, len(test.images), cfg.infer.batch_size)]
    with torch.no_grad():
        for batch in inputs[:1]:
            with autocast(check.device, cfg.train.amp):
                model(batch)
        sync(check.device)
        tick = time.perf_counter()
        for batch in inputs:
            with autocast(check.device, cfg.train.amp):
                model(batch)
        sync(check.device)
        bare_s = time.perf_counter() - tick
    views = len(cfg.infer.tta)
    stage = post["test_img_per_s"]
    bare = len(test.images) / bare_s
    return {"test_images": int(len(test.images)), "tta_views": views, "stage_img_per_s": stage, "bare_forward_img_per_s": bare,
            "stage_share_of_bare_per_view": stage * views / bare, "finite": bool(np.isfinite(np.load(run.test_probs).astype(np.float32)).all())}


def compile_check(check: Check) -> dict:
    import torch

    from pipeline.models.plastic import PlasticHead

    cfg = check.config()
    feed = batches_on_device(check, cfg, 4, 1)
    model, _ = model_and_step(check, cfg)
    for module in model.modules():  # the plain autograd path: compile traces through it (the fused Functions are opaque)
        if isinstance(module, PlasticHead):
            module.fused = False
    from pipeline.training.losses import SaltLoss

    criterion = SaltLoss(cfg.loss, 10)

    def gradients(net):
        model.zero_grad(set_to_none=True)
        logits, empty_logit = net(feed[0]["image"])
        criterion(logits, feed[0]["mask"], empty_logit, feed[0]["empty"], 0).backward()
        return torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])

    eager = gradients(model)
    backend = "eager" if check.cpu else "inductor"
    compiled = torch.compile(model, backend=backend)
    tick = time.perf_counter()
    traced = gradients(compiled)
    compile_s = time.perf_counter() - tick
    timings = {}
    for name, net in (("eager", model), ("compiled", compiled)):
        sync(check.device)
        tick = time.perf_counter()
        for _ in range(3):
            gradients(net)
        sync(check.device)
        timings[name] = (time.perf_counter() - tick) / 3 * 1000
    rel = float((eager - traced).abs().max() / eager.abs().max())
    return {"backend": backend, "compile_s": compile_s, "grad_max_rel_diff": rel, "grad_ok": rel < 1e-3,
            "eager_ms_per_fwd_bwd": timings["eager"], "compiled_ms_per_fwd_bwd": timings["compiled"]}


def cli(check: Check) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    scratch = check.out / "work" / "cli"
    scratch.mkdir(parents=True, exist_ok=True)
    jobs = [["run", "--preset", "smoke", "--demo-train", "60" if check.cpu else "400", "--demo-test", "20" if check.cpu else "200"]]
    if check.cpu:
        jobs[0] += ["--set", "train.device=cpu"]
    else:
        jobs.append(["run", "--preset", "gpu-full", "--run", "gpu-full-short", "--set", "train.epochs=2"])
    results = []
    for job in jobs:
        tick = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pipeline", *job], cwd=scratch, env=env, capture_output=True, text=True)
        results.append({"command": "python -m pipeline " + " ".join(job), "rc": done.returncode, "seconds": time.perf_counter() - tick,
                        "tail": (done.stdout + done.stderr)[-800:]})
    return {"jobs": results, "ok": all(r["rc"] == 0 for r in results)}


def multi_gpu(check: Check) -> dict:
    import torch

    if check.cpu or torch.cuda.device_count() < 2:
        return {"skipped": f"{0 if check.cpu else torch.cuda.device_count()} GPU(s): the two-rank check needs two"}
    import pandas as pd

    root = check.synthetic("ddp", 200, 20)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "pipeline", "--", "train",
               "--config", "smoke", "--run", "ddp", "--fold", "0", "--set", f"data.data_dir={root / 'data'}", "--set", f"data.folds_file={root / 'folds.csv'}"]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    ranks = root / "runs" / "ddp" / "fold_0" / "ranks.csv"
    checksums = pd.read_csv(ranks).to_dict("records") if ranks.exists() else []
    return {"rc": done.returncode, "ranks": checksums, "equal": len({json.dumps({k: v for k, v in r.items() if k != "rank"}) for r in checksums}) == 1,
            "tail": (done.stdout + done.stderr)[-800:]}


SECTIONS = {"environment": environment, "correctness": correctness, "step": step_benchmark, "feed": feed, "trainer": trainer_epoch,
            "inference": inference, "compile": compile_check, "cli": cli, "multi_gpu": multi_gpu}


def run(out: Path, cpu: bool = False, sections: list[str] | None = None) -> dict:
    """Every section in order (or those named), OUT/gpu-check.json rewritten after each."""
    import torch

    if not cpu and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no GPU; run it on the GPU machine, or pass --cpu for the dry mode")
    out.mkdir(parents=True, exist_ok=True)
    check = Check(out, cpu)
    report = {"command": "benchmarks/gpu_check.py" + (" --cpu" if cpu else ""), "sections": {}}
    for name in sections or SECTIONS:
        tick = time.perf_counter()
        try:
            result = SECTIONS[name](check)
        except Exception as error:  # a section that fails is recorded, and the next one runs
            result = {"error": "".join(traceback.format_exception_only(error)).strip()[-800:], "traceback": traceback.format_exc()[-2000:]}
        result["section_seconds"] = time.perf_counter() - tick
        report["sections"][name] = result
        write_json(out / "gpu-check.json", report)
        print(f"gpu_check: {name} done in {result['section_seconds']:.1f} s" + (f" (error: {result['error']})" if "error" in result else ""), flush=True)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu-check.json and the scratch data")
    parser.add_argument("--cpu", action="store_true", help="dry mode: every section, tiny, on the CPU")
    parser.add_argument("--sections", help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = parser.parse_args()
    result = run(args.out, args.cpu, args.sections.split(",") if args.sections else None)
    if not args.cpu:
        write_json(RESULTS / "gpu-check.json", result)
