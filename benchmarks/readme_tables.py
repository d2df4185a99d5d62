"""The result tables of the README and docs/, rendered from the committed files that hold their numbers.

In README.md and docs/*.md each such table sits between `<!-- table: NAME -->` and `<!-- /table -->`; NAME picks a
renderer and its source file below (each renderer's table appears exactly once). `python benchmarks/readme_tables.py`
exits 1 and names every table that differs from its file; `--write` rewrites them. tests/test_readme.py runs the
check, so a figure cannot drift from its source. The config reference (docs/config.md) is rendered the same way,
from pipeline/config.py itself.
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
DOCUMENTS = [README, ROOT / "docs" / "results.md", ROOT / "docs" / "config.md"]
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
    first = seeds[:3]  # the three carves every version ran: the means compare like with like
    lines = ["| code | " + " | ".join(f"carve seed {s}" for s in seeds) + f" | mean of carves {', '.join(first)} | mean of all its carves |",
             "|---|" + "---|" * (len(seeds) + 2)]
    for version in versions:
        scores = {row["seed"]: float(row["test_score"]) for row in rows if row["code"] == version}
        cells = [f"{scores[s]:.4f}" if s in scores else "-" for s in seeds]
        common = f"{statistics.mean(scores[s] for s in first):.4f}" if all(s in scores for s in first) else "-"
        lines.append(f"| {version} | " + " | ".join(cells) + f" | {common} | {statistics.mean(scores.values()):.4f} ({len(scores)}) |")
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


def _comparisons(folder: str) -> dict[tuple[str, str], dict]:
    with open(ROOT / "docs" / folder / "comparisons.csv", newline="") as handle:
        return {(row["head"], row["reference"]): row for row in csv.DictReader(handle)}


def plasticity_headline() -> str:
    """The honest answer first: each plastic rule against its frozen control, per image, on real and synthetic data."""
    # oja - hebb on the real carve: a rerun of those two heads with per-image scores (ablation-real-ojahebb)
    real = {**_comparisons("ablation-real"), **_comparisons("ablation-real-ojahebb")}
    synthetic = _comparisons("ablation-synthetic")

    def cell(row: dict | None) -> str:
        if row is None:
            return "-"
        return (f"{float(row['image_mean']):+.4f} [{float(row['image_ci_low']):+.4f}, {float(row['image_ci_high']):+.4f}], "
                f"Holm p {float(row['image_p_holm']):.2g}")

    lines = ["| comparison (per-image score difference, 95% CI) | real TGS carve | synthetic default |", "|---|---|---|"]
    for pair in real:
        lines.append(f"| {pair[0]} - {pair[1]} | {cell(real.get(pair))} | {cell(synthetic.get(pair))} |")
    return "\n".join(lines) + "\n"


PRESET_STUDY = {"random": "ablation-preset/random0", "depth": "ablation-preset/depth0"}


def _runs(folder: str) -> list[dict]:
    path = ROOT / "docs" / folder / "runs.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def plasticity_preset() -> str:
    """The preset-scale study (issue 32): the key pairs in distribution, under a contrast shift of the same
    carve's test images, and on a carve whose test images lie deeper than its training images."""
    random, depth = PRESET_STUDY["random"], PRESET_STUDY["depth"]
    columns = [(f"in distribution ({random})", random, ""), (f"test contrast x0.5 ({random}, @gain05)", random, "@gain05"),
               (f"deeper test images ({depth})", depth, "")]
    pairs = [("hebb", "frozen"), ("oja", "frozen"), ("lifetime", "frozen"), ("lifetime-adapt", "lifetime"), ("oja", "hebb"),
             ("frozen", "none"), ("none+adabn", "none"), ("lifetime-adapt", "none+adabn"), ("none+notta", "none")]
    found = {folder: _comparisons(folder) if (ROOT / "docs" / folder / "comparisons.csv").exists() else {} for folder in (random, depth)}

    def cell(row: dict | None) -> str:
        if row is None:
            return "-"
        return (f"{float(row['image_mean']):+.4f} [{float(row['image_ci_low']):+.4f}, {float(row['image_ci_high']):+.4f}], "
                f"{row['seed_better']}/{row['seed_seeds']} seeds, Holm p {float(row['image_p_holm']):.2g}")

    def split(name: str) -> tuple[str, str]:  # "lifetime-adapt+adabn" -> ("lifetime-adapt", "+adabn")
        head, plus, rest = name.partition("+")
        return head, plus + rest

    lines = ["| per-image score difference [95% CI] | " + " | ".join(label for label, _, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for head, reference in pairs:
        cells = []
        for _, folder, suffix in columns:
            (h, ha), (r, ra) = split(head), split(reference)
            cells.append(cell(found[folder].get((h + ha + suffix, r + ra + suffix))))
        lines.append(f"| {head} - {reference} | " + " | ".join(cells) + " |")
    seeds = {folder: sorted({row["seed"] for row in _runs(folder)}) for folder in (random, depth)}
    lines.append("")
    lines.append("Seeds: " + "; ".join(f"{folder}: {len(s)} ({', '.join(s)})" for folder, s in seeds.items() if s) + ".")
    return "\n".join(lines) + "\n"


# the label of the shipped `cpu-demo`'s fresh-clone runs in docs/real-dev/fresh-clone.csv (benchmarks/fresh_clone.sh
# LABEL ...): other labels there are tries beside it. Change it with the preset.
PRESET_RUNS = "cpu-demo-enclr15-epyc-avx2"
# the fresh-clone runs of `cpu-demo` at the plain script's step count (docs/real-dev/plain-baseline.csv, 1,500
# steps): the pipeline's machinery against the plain script at equal steps, encoder and weights
PLAIN_PAIRED_RUNS = "cpu-demo-lite0-real"


def scores_headline() -> str:
    """What `./run.sh` scores with the CPU preset: the synthetic default, the real carves, the plain script beside it."""
    synthetic = _json("docs/run-cpu-demo.json")
    with open(ROOT / "docs" / "real-dev" / "fresh-clone.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    latest = PRESET_RUNS
    if not any(row["code"] == latest for row in rows):
        raise SystemExit(f"docs/real-dev/fresh-clone.csv has no rows labelled {latest}: run benchmarks/fresh_clone.sh {latest} HEAD CARVE SEED or set PRESET_RUNS")
    real = {row["seed"]: float(row["test_score"]) for row in rows if row["code"] == latest}
    walls = [int(row["wall_s"]) for row in rows if row["code"] == latest]
    cpus = {row.get("cpu") or "an unrecorded CPU" for row in rows if row["code"] == latest}  # a wall time needs its machine
    at_plain_steps = {row["seed"]: float(row["test_score"]) for row in rows if row["code"] == PLAIN_PAIRED_RUNS}
    with open(ROOT / "docs" / "real-dev" / "plain-baseline.csv", newline="") as handle:
        plain_rows = list(csv.DictReader(handle))
    plain = {row["seed"]: float(row["test_score"]) for row in plain_rows}
    steps = {int(row["steps"]) for row in plain_rows}
    carves = ", ".join(f"{real[s]:.4f}" for s in sorted(real, key=int))
    paired = sorted(set(plain) & set(at_plain_steps), key=int)
    plain_text = ", ".join(f"{plain[s]:.4f}" for s in paired)
    return "\n".join([
        "| `./run.sh` with `cpu-demo` (2 CPU cores) | local test score | wall time |", "|---|---|---|",
        f"| synthetic default (1,600 train / 1,600 test) | {synthetic['test']['score']:.4f} | {synthetic['stage_seconds']['total']:.0f} s"
        f"{' on ' + synthetic['cpu'] if synthetic.get('cpu') else ''} |",
        f"| real TGS images, {len(real)} carves of 1,000 train / 500 test ({latest}) | {carves}; mean **{statistics.mean(real.values()):.4f}** | {min(walls)}-{max(walls)} s on {' / '.join(sorted(cpus))} |",
        f"| the plain one-file pretrained script on carves {', '.join(paired)} (same encoder, {'/'.join(f'{n:,}' for n in sorted(steps))} steps) "
        f"| {plain_text} (cpu-demo at the same steps, {PLAIN_PAIRED_RUNS}: {', '.join(f'{at_plain_steps[s]:.4f}' for s in paired)}) | |",
    ]) + "\n"


def config_reference() -> str:
    """Every config key: section, name, type, default and the comment beside it in pipeline/config.py."""
    from config_reference import reference_table

    return reference_table()


RENDERERS = {
    "plasticity-headline": plasticity_headline,
    "plasticity-preset": plasticity_preset,
    "ablation-preset-random0": ablation("ablation-preset/random0"),
    "ablation-preset-depth0": ablation("ablation-preset/depth0"),
    "scores-headline": scores_headline,
    "config-reference": config_reference,
    "benchmarks": benchmarks,
    "head-overhead": head_overhead,
    "run-cpu-demo": run_cpu_demo,
    "fresh-clone": fresh_clone,
    "head-design": study("head-design"),
    "options-cpu-scale": study("options-cpu-scale"),
    "full-size": full_size,
    "ablation-real": ablation("ablation-real"),
    "ablation-real-ojahebb": ablation("ablation-real-ojahebb"),
    "ablation-real-original": ablation("ablation-real-original"),
    "ablation-synthetic": ablation("ablation-synthetic"),
    "mosaics": mosaics,
    "pseudo-synthetic": pseudo("synthetic"),
    "pseudo-real": pseudo("real"),
}


def differences(text: str) -> tuple[str, list[str]]:
    """(a document's text with every table re-rendered, names of the tables that changed)."""
    changed = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"unknown table '{name}' (known: {', '.join(RENDERERS)})")
        body = RENDERERS[name]()
        if body != match.group("body"):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, text), changed


def check_all(write: bool = False) -> list[str]:
    """'DOCUMENT: TABLE' for every table that differs from its file (rewritten when `write`)."""
    changed = []
    for document in DOCUMENTS:
        new_text, names = differences(document.read_text())
        changed += [f"{document.relative_to(ROOT)}: {name}" for name in names]
        if write and names:
            document.write_text(new_text)
    return changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the tables from their files")
    args = parser.parse_args()
    changed = check_all(args.write)
    if args.write:
        print(f"rewrote {len(changed)} table(s): {', '.join(changed) or 'none changed'}")
    elif changed:
        print(f"tables differ from their files: {', '.join(changed)}; run benchmarks/readme_tables.py --write")
        sys.exit(1)
