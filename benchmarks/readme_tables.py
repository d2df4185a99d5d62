"""The README's result tables, rendered from the committed files that hold their numbers.

In README.md each such table sits between `<!-- table: NAME -->` and `<!-- /table -->`; NAME picks a renderer
and its source file below. `python benchmarks/readme_tables.py` exits 1 and names every table that differs
from its file; `--write` rewrites them. tests/test_readme.py runs the check, so a README figure cannot drift
from its source.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402

from pipeline.inference.postprocess import describe_gate  # noqa: E402

README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _json(path: str) -> dict:
    return json.loads((ROOT / path).read_text())


def benchmarks() -> str:
    from run_all import markdown

    return markdown(_json("benchmarks/results/latest.json"))


def head_overhead() -> str:
    """Per U-Net and rule: plain autograd (before) vs the fused presynaptic path (after), end to end and alone."""
    from bench_heads import PLAIN

    lines = ["| U-Net | head | before (plain autograd): step overhead (paired by round); head alone, its extra cost as a share of a step "
             "| after (fused): step overhead (paired by round); head alone, its extra cost as a share of a step |", "|---|---|---|---|"]
    for network, part in _json("benchmarks/results/latest.json")["heads"]["overhead"].items():
        overhead, alone, share = part["overhead_vs_none"], part["head_alone_s"], part["head_extra_share_of_step"]

        def cell(name: str) -> str:
            return f"{overhead[name]:+.1%}; {alone[name]['median_s'] * 1000:.1f} ms, {share[name]:+.1%}"

        for name in part["step_s"]:
            if name.endswith(PLAIN) or name not in alone or name == "none":
                continue
            lines.append(f"| {network} | {name} | {cell(name + PLAIN)} | {cell(name)} |")
    return "\n".join(lines) + "\n"


def full_size() -> str:
    """`./run.sh` on a competition-sized folder, from benchmarks/results/full-size-cpu.json (benchmarks/full_size.py)."""
    result = _json("benchmarks/results/full-size-cpu.json")
    stages = ", ".join(f"{k} {v / 60:.1f} min" for k, v in result["stage_seconds"].items() if k != "total")
    return ("| data | wall time, fresh clone | stages | commit |\n|---|---|---|---|\n"
            f"| {result['train_images']:,} train + {result['test_images']:,} test images | {result['wall_s'] / 60:.1f} min | {stages} | {result['commit']} |\n")


def _gate(gate) -> str:
    text = describe_gate(gate)
    return f", {text}" if text else ""


def run_cpu_demo() -> str:
    summary = _json("docs/run-cpu-demo.json")
    folds = summary["folds"]
    seconds = summary.get("stage_seconds", {})
    lines = ["| measured | value |", "|---|---|"]
    if seconds:
        lines.append(f"| pipeline stages, synth to evaluate (`total`) | {seconds['total']:.0f} s (" +
                     ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if k != "total") + ") |")
    lines += [
        f"| training speed, mean over epochs and folds | {statistics.mean(f['train_img_per_s'] for f in folds.values()):.0f} img/s |",
        "| validation metric per fold, last epoch (threshold 0.5) | " + ", ".join("%.3f" % f["last_val_metric"] for f in folds.values()) + " |",
        f"| OOF metric, threshold 0.5 / tuned (threshold {summary['oof']['postprocess']['best_threshold']}, min area "
        f"{summary['oof']['postprocess']['best_min_area']}{_gate(summary['oof']['postprocess'].get('best_empty_threshold'))}) "
        f"| {summary['oof']['score_threshold_0.5']:.4f} / {summary['oof']['score_tuned']:.4f} |",
    ]
    if "test" in summary:
        test = summary["test"]
        lines.append(f"| **local test score** ({test['images']:,} synthetic test images) | **{test['score']:.4f}** |")
        lines.append(f"| all-empty submission on the same images | {test['all_empty_score']:.4f} |")
        lines.append("| test score by coverage class (images) | " + ", ".join(
            f"{row['coverage_class']}: {row['score']:.3f} ({row['images']})" for row in test["by_coverage"] if row["coverage_class"] != "all") + " |")
    eta = [f["head_eta"] for f in folds.values() if "head_eta" in f]
    alpha = [f["head_alpha_abs"] for f in folds.values() if "head_alpha_abs" in f]
    if eta:
        lines.append("| head eta, first -> last epoch, per fold | " + ", ".join("%.4f -> %.4f" % (e["first_epoch"], e["last_epoch"]) for e in eta) + " |")
    if alpha:
        lines.append("| head mean abs alpha, first -> last epoch, per fold | " + ", ".join("%.3f -> %.3f" % (a["first_epoch"], a["last_epoch"]) for a in alpha) + " |")
    return "\n".join(lines) + "\n"


def study(name: str):
    """A real-dev study's table, verbatim from docs/real-dev/NAME.md (written by benchmarks/real_dev.py)."""

    def render() -> str:
        text = (ROOT / "docs" / "real-dev" / f"{name}.md").read_text()
        return "\n".join(line for line in text.splitlines() if line.startswith("|")) + "\n"

    return render


def fresh_clone() -> str:
    with open(ROOT / "docs" / "real-dev" / "fresh-clone.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle)]
    versions = list(dict.fromkeys(row["code"] for row in rows))
    seeds = sorted({row["seed"] for row in rows}, key=int)
    lines = ["| code | " + " | ".join(f"carve seed {s}" for s in seeds) + " | mean |", "|---|" + "---|" * (len(seeds) + 1)]
    for version in versions:
        scores = {row["seed"]: float(row["test_score"]) for row in rows if row["code"] == version}
        cells = [f"{scores[s]:.4f}" if s in scores else "-" for s in seeds]
        lines.append(f"| {version} | " + " | ".join(cells) + f" | {statistics.mean(scores.values()):.4f} |")
    return "\n".join(lines) + "\n"


def _tables(path: Path) -> str:
    """Every table of a markdown file, verbatim, separated by blank lines."""
    blocks, block = [], []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            blocks.append("\n".join(block))
            block = []
    return "\n\n".join(blocks) + "\n"


def ablation(folder: str):
    """An ablation's tables, verbatim from docs/FOLDER/ablation.md (written by `python -m pipeline ablate`)."""
    return lambda: _tables(ROOT / "docs" / folder / "ablation.md")


def pseudo(name: str):
    """A pseudo-label study's tables, verbatim from docs/pseudo/NAME.md (written by benchmarks/pseudo_mosaic.py)."""
    return lambda: _tables(ROOT / "docs" / "pseudo" / f"{name}.md")


def mosaics() -> str:
    """Mosaic recovery on the synthetic default and the real dev set, from docs/mosaic/*.json (`mosaic.json`)."""
    rows = [("synthetic, 500 train + 500 test tiles (seed 0)", "synthetic-500-500.json"),
            ("real TGS dev set, 2,000 labelled tiles (1,500/500 carve, seed 0)", "real-dev-2000.json")]
    lines = ["| data | tiles in mosaics | mosaics (largest) | neighbour pairs kept | precision | recall |", "|---|---|---|---|---|---|"]
    for label, name in rows:
        m = _json(f"docs/mosaic/{name}")
        q = m.get("neighbours", {})
        precision = f"{q['precision']:.3f} ({q['pairs_correct']} of {q['pairs_found']})" if q else "no truth"
        recall = f"{q['recall']:.3f} (of {q['true_pairs']})" if q else "no truth"
        lines.append(f"| {label} | {m['tiles_in_mosaics']:,} of {m['tiles']:,} | {m['mosaics']} ({', '.join(map(str, m['largest_mosaics'][:3]))}) "
                     f"| {m['pairs_kept']} | {precision} | {recall} |")
    return "\n".join(lines) + "\n"


RENDERERS = {
    "benchmarks": benchmarks,
    "head-overhead": head_overhead,
    "run-cpu-demo": run_cpu_demo,
    "fresh-clone": fresh_clone,
    "head-design": study("head-design"),
    "options-cpu-scale": study("options-cpu-scale"),
    "full-size": full_size,
    "ablation-real": ablation("ablation-real"),
    "ablation-synthetic": ablation("ablation-synthetic"),
    "mosaics": mosaics,
    "pseudo-synthetic": pseudo("synthetic"),
    "pseudo-real": pseudo("real"),
}


def differences(text: str) -> tuple[str, list[str]]:
    """(README text with every table re-rendered, names of the tables that changed)."""
    changed = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"README.md: unknown table '{name}' (known: {', '.join(RENDERERS)})")
        body = RENDERERS[name]()
        if body != match.group("body"):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, text), changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the README's tables from their files")
    args = parser.parse_args()
    new_text, changed = differences(README.read_text())
    if args.write:
        README.write_text(new_text)
        print(f"rewrote {len(changed)} table(s): {', '.join(changed) or 'none changed'}")
    elif changed:
        print(f"README.md tables differ from their files: {', '.join(changed)}; run benchmarks/readme_tables.py --write")
        sys.exit(1)
