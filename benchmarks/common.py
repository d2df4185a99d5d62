"""Shared benchmark plumbing: machine description, timing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
RESULTS = ROOT / "benchmarks" / "results"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_extensions(cpuinfo: str | None = None) -> list[str]:
    """The CPU's wide vector extensions (AVX2, AVX-512, AMX flags) from /proc/cpuinfo's first `flags` line."""
    lines = (cpuinfo if cpuinfo is not None else _cpuinfo()).splitlines()
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return sorted(flag for flag in flags if flag.startswith(("avx512", "avx2", "amx")))


def cpu_label(cpuinfo: str | None = None) -> str:
    """The CPU's model name without trademarks or commas, and its widest vector extension: the `cpu` field of
    docs/real-dev/fresh-clone.csv and docs/run-cpu-demo.json, e.g. 'Intel Xeon Processor AVX-512', 'AMD EPYC AVX2'."""
    text = cpuinfo if cpuinfo is not None else _cpuinfo()
    name = next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("model name")), "")
    name = re.sub(r"\([RT]M*\)", "", name).replace(",", "").strip() or "unknown"
    extensions = cpu_extensions(text)
    isa = "AVX-512" if "avx512f" in extensions else "AVX2" if "avx2" in extensions else "no-AVX2"
    return f"{name} {isa}"


def machine() -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        with open("/proc/cpuinfo") as handle:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def best_of(function, repeats: int = 3) -> float:
    """Fastest wall time of `repeats` calls (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def write_result(name: str, result: dict) -> Path:
    from pipeline.fileio import write_json

    path = RESULTS / f"{name}.json"
    write_json(path, {"machine": machine(), **result})
    print(json.dumps(result, indent=2))
    # the README's and docs' tables rendered from results follow them, so committing a result commits a matching
    # table (tests/test_readme.py checks each table against its file)
    import readme_tables

    try:
        changed = readme_tables.check_all(write=True)
    except (Exception, SystemExit) as error:  # the result is written either way; say how to render by hand
        print(f"note: tables not re-rendered ({error}); run .venv/bin/python benchmarks/readme_tables.py --write")
    else:
        if changed:
            print(f"re-rendered {', '.join(changed)}")
    return path


def interleaved(functions: dict, rounds: int = 5, warmup: int = 1, shuffle: bool = True) -> dict:
    """Wall time of each function over `rounds` interleaved rounds (A B C, C A B, ...): background load hits
    every side alike, and with `shuffle` each round runs the sides in a new random order (seeded), so no side
    always follows the same neighbour. Returns {name: {median_s, min_s, max_s, rounds}}."""
    import random
    import statistics

    order = random.Random(0)
    for function in functions.values():
        for _ in range(warmup):
            function()
    times: dict = {name: [] for name in functions}
    names = list(functions)
    for _ in range(rounds):
        if shuffle:
            order.shuffle(names)
        for name in names:
            function = functions[name]
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "rounds": rounds, "samples_s": t}
            for name, t in times.items()}


def paired_overhead(timings: dict, reference: str) -> dict:
    """Each side's extra time over `reference`, paired by round: the median (and quartiles, min, max) over rounds of
    t_side[r] / t_reference[r] - 1. Both ran in the same round, seconds apart, so load that drifts between rounds
    cancels in the ratio, which a ratio of the two medians (taken over different rounds) does not do."""
    import numpy as np

    base = np.asarray(timings[reference]["samples_s"], dtype=float)
    result = {}
    for name, timing in timings.items():
        ratios = np.asarray(timing["samples_s"], dtype=float) / base - 1
        q1, median, q3 = np.percentile(ratios, [25, 50, 75])
        result[name] = {"median": float(median), "q1": float(q1), "q3": float(q3), "min": float(ratios.min()), "max": float(ratios.max())}
    return result


def check_finite(loss, what: str) -> None:
    """A benchmark that times NaN measures nothing: stop it loudly."""
    import torch

    if not torch.isfinite(loss).all():
        raise RuntimeError(f"benchmark {what}: loss is {loss} (not finite); the timing would be meaningless")


def check_batch(images, what: str) -> None:
    if len(images) == 0:
        raise RuntimeError(f"benchmark {what}: empty batch; the timing would count images that were never processed")


def real_batch(cfg, batch: int, seed: int = 11):
    """Synthetic seismic images and masks (salt in every other one) as network inputs (channels_last) and masks."""
    import numpy as np
    import torch

    from pipeline.data.dataset import batch_inputs, to_input_geometry
    from pipeline.data.synth import make_sample

    samples = [make_sample(seed=seed, index=i, has_salt=i % 2 == 0, constant=False) for i in range(batch)]
    images = np.stack([s.image for s in samples])
    depth = np.array([s.depth for s in samples], np.float32)
    masks = np.stack([to_input_geometry(s.mask, cfg.data, is_mask=True) for s in samples]).astype(np.float32)
    return batch_inputs(images, depth, cfg.data).contiguous(memory_format=torch.channels_last), torch.from_numpy(masks[:, None])
