"""Run every benchmark; write benchmarks/results/latest.json and latest.md with the machine description.

    python benchmarks/run_all.py            (about 5 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import json
import time

import bench_core
import bench_heads
import bench_infer
from common import RESULTS, machine

from pipeline.fileio import write_json, write_text


def markdown(results: dict) -> str:
    core, heads, inf = results["core"], results["heads"], results["infer"]
    m = results["machine"]
    lines = [
        f"# Benchmarks ({results['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), CUDA: {m['cuda'] or 'none'}.",
        "Command: `.venv/bin/python benchmarks/run_all.py`",
        "",
        "| benchmark | measured | goal |",
        "|---|---|---|",
        f"| RLE encode + decode, 18,000 masks | {core['rle_encode_decode_18000_s']:.3f} s | < 1 s |",
        f"| metric, 4,000 images | {core['metric_4000_s']:.3f} s | < 1 s |",
        f"| prep, {core['prep_images']:,} images | {core['prep_s']:.1f} s (re-run: {core['prep_noop_s']:.2f} s) | < 60 s |",
        f"| infer-stage prediction vs bare forward loop | {inf['efficiency']:.2f} ({inf['stage_prediction_img_per_s']:.0f} vs {inf['bare_forward_img_per_s']:.0f} img/s) | >= 0.85 |",
        f"| batched hebb head vs original-style batch-1 loop | {heads['batched_hebb_vs_original_speedup']:.1f}x ({heads['train_img_per_s']['hebb']:.0f} vs {heads['original_style_batch1_img_per_s']:.1f} img/s) | >= 20x |",
        "",
        f"Train step, batch {heads['batch']}, {heads['input_px']} px, {heads['encoder']}, {heads['device']}:",
        "",
        "| head | img/s | overhead vs none (goal <= 5%) | parameters |",
        "|---|---|---|---|",
    ]
    for name, rate in heads["train_img_per_s"].items():
        lines.append(f"| {name} | {rate:.1f} | {heads['overhead_vs_none'][name]:+.1%} | {heads['parameters'][name]:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    args = parser.parse_args()
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    if args.quick:
        results["core"] = bench_core.run(200, 300)
        results["heads"] = bench_heads.run(size=64, steps=2, rounds=1)
        results["infer"] = bench_infer.run(n_test=64, rounds=1)
    else:
        results["core"] = bench_core.run()
        results["heads"] = bench_heads.run()
        results["infer"] = bench_infer.run()
    name = "quick" if args.quick else "latest"
    write_json(RESULTS / f"{name}.json", results)
    write_text(RESULTS / f"{name}.md", markdown(results))
    print(json.dumps(results, indent=2))
    print(f"wrote {RESULTS / (name + '.json')} and {RESULTS / (name + '.md')}")
