"""Run every benchmark; write benchmarks/results/latest.json and latest.md with the machine description.

    .venv/bin/python benchmarks/run_all.py            (about 10 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import json
import time

import bench_core
import bench_heads
import bench_infer
import bench_loss
from common import RESULTS, machine

from pipeline.fileio import write_json, write_text


def _span(timing: dict) -> str:
    return f"{timing['median_s'] * 1000:.0f} ms ({timing['min_s'] * 1000:.0f}-{timing['max_s'] * 1000:.0f})"


def _overhead(part: dict, name: str) -> str:
    rounds = part.get("overhead_vs_none_rounds", {}).get(name)
    median = f"{part['overhead_vs_none'][name]:+.1%}"
    return f"{median} ({rounds['q1']:+.1%} to {rounds['q3']:+.1%})" if rounds else median


def markdown(results: dict) -> str:
    core, heads, inf, loss = results["core"], results["heads"], results["infer"], results["loss"]
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), CUDA: {m['cuda'] or 'none'}. "
        f"Timings: median of interleaved rounds (min-max).",
        "",
        "| benchmark | measured | goal |",
        "|---|---|---|",
        f"| RLE encode + decode, 18,000 masks | {core['rle_encode_decode_18000_s']:.3f} s | < 1 s |",
        f"| metric, 4,000 images | {core['metric_4000_s']:.3f} s | < 1 s |",
        f"| prep, {core['prep_images']:,} images | {core['prep_s']:.1f} s (re-run: {core['prep_noop_s']:.2f} s) | < 60 s |",
        f"| infer-stage prediction vs bare forward loop | {inf['efficiency']:.2f} ({inf['stage_prediction_img_per_s']:.0f} vs "
        f"{inf['bare_forward_img_per_s']:.0f} img/s) | >= 0.85 |",
        f"| train step, symmetric Lovasz, batched vs smp's per-image loop ({loss['network'].split(' (')[0]}, batch {loss['batch']}, "
        f"{loss['input_px']} px) | {_span(loss['train_step_s']['lovasz_batched'])} vs {_span(loss['train_step_s']['lovasz_smp_loop'])}; "
        f"aten calls {loss['aten_calls_forward_backward']['lovasz_batched']} vs {loss['aten_calls_forward_backward']['lovasz_smp_loop']} "
        f"(BCE+Dice: {loss['aten_calls_forward_backward']['bce_dice']}) | fewer kernels |",
        "",
    ]
    for network, part in heads["overhead"].items():
        alone = part.get("head_alone_s", {})
        lines += [f"Train step with each head, {part['network']}, batch {part['batch']}, {part['input_px']} px, CPU "
                  f"({part['step_s']['none']['rounds']} rounds; head alone: the head's forward + backward on the decoder output "
                  f"{tuple(part.get('head_input_shape', ()))}, {4 * part['step_s']['none']['rounds']} rounds):", "",
                  "| head | step time | overhead vs none, paired by round: median (quartiles) (goal <= 5%) | head alone | head's extra cost over none, share of a step | parameters |",
                  "|---|---|---|---|---|---|"]
        for name, timing in part["step_s"].items():
            own = f"{alone[name]['median_s'] * 1000:.1f} ms" if name in alone else "-"
            share = f"{part['head_extra_share_of_step'][name]:+.1%}" if name in alone else "-"
            lines.append(f"| {name} | {_span(timing)} | {_overhead(part, name)} | {own} | {share} | {part['parameters'][name]:,} |")
        lines.append("")
    batching = heads["batching"]
    lines += [f"Batching, same head on both sides: {batching['images']} images as one batch vs one at a time, {batching['network']}, "
              f"{batching['input_px']} px, CPU:", "", "| head design | batch of {0} img/s | batch 1 img/s | batching speed-up |".format(batching["images"]),
              "|---|---|---|---|"]
    for name, row in batching["designs"].items():
        batched = f"{row['batch_img_per_s']:.1f}" if "batch_img_per_s" in row else "- (batch 1 only)"
        speedup = f"{row['batching_speedup']:.2f}x" if "batching_speedup" in row else "-"
        lines.append(f"| {name} | {batched} | {row['batch1_img_per_s']:.1f} | {speedup} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument("--only", help="comma-separated parts (core,heads,infer,loss) to re-run; the others are kept from latest.json")
    args = parser.parse_args()
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    if args.only:
        results = json.loads((RESULTS / "latest.json").read_text())
        results.setdefault("dates", {part: results["date"] for part in ("core", "heads", "infer", "loss")})
        runners = {"core": bench_core.run, "heads": bench_heads.run, "infer": bench_infer.run, "loss": bench_loss.run}
        for part in args.only.split(","):
            results[part] = runners[part]()
            results["dates"][part] = time.strftime("%Y-%m-%d %H:%M")
        results["date"] = time.strftime("%Y-%m-%d %H:%M")
    elif args.quick:
        results["core"] = bench_core.run(200, 300)
        results["heads"] = bench_heads.run(size=128, rounds=1)
        results["infer"] = bench_infer.run(n_test=64, rounds=1)
        results["loss"] = bench_loss.run(batch=4, rounds=1)
    else:
        results["core"] = bench_core.run()
        results["heads"] = bench_heads.run()
        results["infer"] = bench_infer.run()
        results["loss"] = bench_loss.run()
    name = "quick" if args.quick else "latest"
    write_json(RESULTS / f"{name}.json", results)
    command = ".venv/bin/python benchmarks/run_all.py" + (f" --only {args.only}" if args.only else "")
    dates = ", ".join(f"{part} {date}" for part, date in results.get("dates", {}).items())
    write_text(RESULTS / f"{name}.md", f"# Benchmarks ({results['date']})\n\nCommand: `{command}`" + (f" (parts last run: {dates})" if dates else "")
               + "\n\n" + markdown(results))
    print(json.dumps(results, indent=2))
    print(f"wrote {RESULTS / (name + '.json')} and {RESULTS / (name + '.md')}")
