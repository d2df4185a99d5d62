"""Pseudo-labelling (round 0 vs round 1) and the mosaic rules, measured on held-out test images with known truth.

Per seed: mosaic -> round 0 (train, infer, submit, evaluate) -> pseudo -> round 1 (train --pseudo, infer,
submit, evaluate), and for round 0 each mosaic rule's effect on OOF (as infer measures it) and on the test
images (the rule forced on, scored against the truth). Paired: both rounds share data, folds and seed.

    .venv/bin/python benchmarks/pseudo_mosaic.py --synthetic --seeds 0,1,2 --config cpu-tiny --set 'train.folds=[0]' --name synthetic
    .venv/bin/python benchmarks/pseudo_mosaic.py --dev ../shared/tgs-real-dev --seeds 0,1,2 --config cpu-tiny --set 'train.folds=[0]' --name real

--synthetic: the embedded default (`./run.sh`'s synth: 1,600 train / 1,600 test, seed 0), training seed = seed.
--dev: a 1,000/500 carve of a labelled folder per seed (carve seed = training seed = seed).
Writes docs/pseudo/NAME.csv (one row per seed, appended as seeds finish) and docs/pseudo/NAME.md.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import numpy as np
from common import ROOT
from real_dev import carve, read_rows

from pipeline.competition.metric import per_image_scores
from pipeline.competition.rle import decode_many
from pipeline.data.folds import make_folds
from pipeline.data.mosaic import mosaic
from pipeline.data.prep import load_test_cache, load_train_cache, prep
from pipeline.data.synth import synthesize
from pipeline.fileio import read_table, write_text
from pipeline.inference.mosaic_rules import RULES, above_map, apply_rule, known_masks
from pipeline.inference.pseudo import make_pseudo
from pipeline.rundir import RunDir
from pipeline.study.stats import seed_tests
from pipeline.workflow import Variant, run_variant

OUT = ROOT / "docs" / "pseudo"
COLUMNS = (["seed", "round0_test", "round1_test", "difference", "pseudo_selected", "pseudo_test_images", "pseudo_oof_selected_score",
            "pseudo_oof_rest_score", "round0_train_s", "round1_train_s", "tiles_in_mosaics", "tiles"]
           + [f"{rule}_{what}" for rule in RULES for what in ("oof_changed", "oof_gain", "test_changed", "test_gain")])


def synthetic_data(work: Path) -> Path:
    data = work / "synthetic-1600-1600-seed0"
    if not (data / "train.csv").exists():
        synthesize(data, 1600, 1600, seed=0)
    prep(data)
    if not (data / "folds.csv").exists():
        make_folds(data, data / "folds.csv", k=5, seed=42)
    return data


def one_round(config: str, overrides: list[str], data: Path, run_dir: Path) -> tuple[float, dict, float, Path]:
    variant = Variant(config, tuple(overrides) + (f"data.data_dir={data}", f"data.folds_file={data / 'folds.csv'}"))
    outcome = run_variant(variant, RunDir(run_dir), refresh=True, allow_partial=False)
    return outcome.test_score, outcome.postprocess, outcome.seconds["train"], outcome.submission


def rules_on_test(data: Path, submission: Path) -> dict:
    """Each rule forced on over the round-0 submission's masks, scored against the held-out truth."""
    table = read_table(submission, ("id", "rle_mask"))
    truth_table = read_table(data / "test_truth.csv", ("id", "rle_mask")).set_index("id").loc[table["id"]]
    ids = table["id"].tolist()
    masks = decode_many(table["rle_mask"].tolist(), ids, (101, 101))
    truth = decode_many(truth_table["rle_mask"].tolist(), ids, (101, 101))
    train = load_train_cache(data)
    known = known_masks(train.ids, train.masks, ids, masks)
    above = above_map(data) or {}
    test = load_test_cache(data)
    constant = dict(zip(test.ids.tolist(), test.is_constant.tolist()))
    constant = np.array([constant[i] for i in ids])
    base = per_image_scores(masks, truth).mean()
    out = {}
    for rule in RULES:
        changed_masks, changed = apply_rule(rule, ids, masks, constant, above, known)
        out[rule] = (changed, float(per_image_scores(changed_masks, truth).mean() - base))
    return out


def markdown(rows: list[dict], title: str) -> str:
    r0 = [float(r["round0_test"]) for r in rows]
    r1 = [float(r["round1_test"]) for r in rows]
    tests = seed_tests(np.array(r1) - np.array(r0)) if len(rows) > 1 else {}
    lines = [f"# {title}", "", "| seed | round 0 test | round 1 test (pseudo) | difference | pseudo images kept | their OOF score (rest) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {float(r['round0_test']):.4f} | {float(r['round1_test']):.4f} | {float(r['difference']):+.4f} | "
                     f"{r['pseudo_selected']} of {r['pseudo_test_images']} | {r['pseudo_oof_selected_score']} ({r['pseudo_oof_rest_score']}) |")
    mean_text = f"| mean | {statistics.mean(r0):.4f} | {statistics.mean(r1):.4f} | {statistics.mean(r1) - statistics.mean(r0):+.4f} | | |"
    lines.append(mean_text)
    if tests:
        lines += ["", f"Paired over seeds: t-test p = {tests['t_p']:.3f}, Wilcoxon p = {tests['wilcoxon_p']:.3f}."]
    lines += ["", "| seed | tiles in mosaics | " + " | ".join(f"{rule}: OOF changed, gain / test changed, gain" for rule in RULES) + " |",
              "|---|---|" + "---|" * len(RULES)]
    for r in rows:
        cells = [f"{r[f'{rule}_oof_changed']}, {float(r[f'{rule}_oof_gain']):+.4f} / {r[f'{rule}_test_changed']}, {float(r[f'{rule}_test_gain']):+.4f}"
                 for rule in RULES]
        lines.append(f"| {r['seed']} | {r['tiles_in_mosaics']} of {r['tiles']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", action="store_true", help="the embedded synthetic default")
    source.add_argument("--dev", type=Path, help="labelled Kaggle-layout folder to carve 1,000/500 competitions from")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--config", default="cpu-tiny")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    parser.add_argument("--name", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/plastic-salt-pseudo"))
    args = parser.parse_args()
    path = OUT / f"{args.name}.csv"
    rows = read_rows(path)
    done = {r["seed"] for r in rows}
    for seed in [int(s) for s in args.seeds.split(",")]:
        if str(seed) in done:
            continue
        data = synthetic_data(args.work) if args.synthetic else carve(args.dev, args.work, seed, 1000, 500, 5)
        found = mosaic(data)
        base = args.set + [f"train.seed={seed}"]
        runs = args.work / "runs" / f"{args.name}-seed{seed}"
        score0, post0, train0, submission0 = one_round(args.config, base, data, runs / "round0")
        pseudo = make_pseudo(runs / "round0", runs / "pseudo", force=True)
        score1, _, train1, _ = one_round(args.config, base + [f"data.pseudo_dir={runs / 'pseudo'}"], data, runs / "round1")
        row = {"seed": seed, "round0_test": f"{score0:.5f}", "round1_test": f"{score1:.5f}", "difference": f"{score1 - score0:+.5f}",
               "pseudo_selected": pseudo["selected"], "pseudo_test_images": pseudo["test_images"],
               "pseudo_oof_selected_score": f"{pseudo['oof_score_selected']:.4f}" if pseudo["oof_score_selected"] is not None else "",
               "pseudo_oof_rest_score": f"{pseudo['oof_score_rest']:.4f}" if pseudo["oof_score_rest"] is not None else "",
               "round0_train_s": f"{train0:.0f}", "round1_train_s": f"{train1:.0f}",
               "tiles_in_mosaics": found["tiles_in_mosaics"], "tiles": found["tiles"]}
        on_test = rules_on_test(data, submission0)
        for rule in RULES:
            measured = post0.get("mosaic_rules", {}).get(rule, {})
            row[f"{rule}_oof_changed"] = measured.get("oof_images_changed", 0)
            row[f"{rule}_oof_gain"] = f"{measured.get('oof_gain', 0.0):+.5f}"
            row[f"{rule}_test_changed"], gain = on_test[rule]
            row[f"{rule}_test_gain"] = f"{gain:+.5f}"
        rows.append({k: str(v) for k, v in row.items()})
        OUT.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"seed {seed}: round 0 {score0:.4f} -> round 1 {score1:.4f}", flush=True)
    overrides = "".join(" --set '" + o + "'" for o in args.set)
    where = "synthetic default (1,600 train / 1,600 test, data seed 0)" if args.synthetic else "real TGS dev set (2,000 labelled images), 1,000/500 carves"
    write_text(OUT / f"{args.name}.md", markdown(rows, f"Pseudo-labels and mosaic rules: {where}, preset {args.config}") +
               f"\nCommand: `.venv/bin/python benchmarks/pseudo_mosaic.py {'--synthetic' if args.synthetic else '--dev DEV'} "
               f"--seeds {args.seeds} --config {args.config}{overrides} --name {args.name}`\n")


if __name__ == "__main__":
    main()
