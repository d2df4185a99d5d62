"""How fast a model bundle predicts on this CPU: 101x101 tiles per second with torch and with onnxruntime (the
same fold ensemble, the same TTA views, checked to agree within 1e-4), and a whole 2,000 x 1,000-sample
section, tiled, blended and post-processed (issue 31's goal: under a minute on 2 cores with the CPU preset).

    .venv/bin/python benchmarks/bench_predict.py [--preset cpu-demo] [--tiles 256]

The bundle is the preset's network as built (one model, ImageNet encoder, random decoder): the speed of a
forward pass does not depend on what the weights learned. Writes benchmarks/results/predict-cpu.json."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (sys.path, offline hub)
import numpy as np
import torch
from common import write_result

from pipeline.config import load_config
from pipeline.data.synth import make_sample
from pipeline.models.factory import build_model
from pipeline.serving.bundle import Bundle, PostProcess
from pipeline.serving.onnx_graph import OnnxRunner, export_onnx
from pipeline.serving.tiling import cut_tiles, predict_section


def section(height: int, width: int) -> np.ndarray:
    """A synthetic seismic section with salt, height x width, uint8."""
    rows = []
    for r in range(0, height, 500):
        rows.append(np.concatenate([make_sample(3, 100 * r + c, has_salt=True, constant=False, size=500).image
                                    for c in range(0, width, 500)], axis=1))
    return np.concatenate(rows)[:height, :width]


def timed(function, repeats: int = 3) -> float:
    function()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu-demo")
    parser.add_argument("--tiles", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = load_config(args.preset)
    model = build_model(cfg).eval()
    bundle = Bundle(Path("."), cfg, PostProcess(0.5, 10, 1.0 if cfg.model.aux_head else None), [model.state_dict()], {})
    tiles = np.stack([make_sample(7, i, has_salt=i % 2 == 0, constant=False).image for i in range(args.tiles)])
    with tempfile.TemporaryDirectory() as tmp:
        runner = OnnxRunner(bundle, export_onnx(bundle, Path(tmp) / "model.onnx"))
        torch_probs, _ = bundle.predict_tiles(tiles[:64])
        onnx_probs, _ = runner.predict_tiles(tiles[:64])
        difference = float(np.abs(torch_probs - onnx_probs).max())
        if not difference < 1e-4:
            raise RuntimeError(f"torch and onnxruntime disagree by {difference}; the timings would compare different work")
        if not np.isfinite(torch_probs).all() or torch_probs.std() == 0:
            raise RuntimeError("the predictions are constant or not finite: the benchmark would time nothing real")
        seconds = {name: timed(lambda p=p: p.predict_tiles(tiles)) for name, p in (("torch", bundle), ("onnxruntime", runner))}
        image = section(1000, 2000)  # 1,000 samples (rows) x 2,000 traces
        count = len(cut_tiles(image, 25)[0])
        section_seconds = {name: timed(lambda p=p: predict_section(p, image, overlap=25), repeats=1)
                           for name, p in (("torch", bundle), ("onnxruntime", runner))}
    views = len(cfg.infer.tta)
    write_result("predict-cpu", {
        "command": f".venv/bin/python benchmarks/bench_predict.py --preset {args.preset} --tiles {args.tiles}",
        "preset": args.preset, "encoder": cfg.model.encoder, "tta_views": views, "torch_threads": torch.get_num_threads(),
        "tiles": args.tiles, "max_abs_difference_torch_onnx": difference,
        "tiles_per_s": {name: args.tiles / s for name, s in seconds.items()},
        "section": {"samples": image.shape[0], "traces": image.shape[1], "tiles": count, "overlap": 25,
                    "seconds": section_seconds},
    })


if __name__ == "__main__":
    main()
