"""Does plasticity help where it should? (issue 32) The paired ablation at the CPU preset's scale (`cpu-demo` as
`./run.sh` trains it: its encoder, weights, input size and 1,500 steps) on a real carve, in distribution and
under the shifts a real survey has, against the non-plastic ways to adapt at test time.

    .venv/bin/python benchmarks/plasticity_study.py --dev ../shared/tgs-real-dev --split random --carve 0 --seeds 1
    .venv/bin/python benchmarks/plasticity_study.py --dev ../shared/tgs-real-dev --split depth --carve 0 --seeds 1

One command per study (`--config gpu-full --seeds 5` on a GPU: the scale left untested here). `--split random`:
a 1,000/500 carve drawn at random, each run also scored on the same carve's test images through a contrast curve (`--gain`, an amplitude shift: HEAD@gain05). `--split depth`:
train on the shallower two thirds by depth, test on the deepest third. Every run is also scored with AdaBN
(HEAD+adabn) and without the preset's TTA (HEAD+notta). The tables go to docs/ablation-preset/SPLITCARVE/
(written by `ablate` after every run, image ids hashed), the weights to --work; a later command with more
--seeds or --heads continues from the committed tables (`ablate` keeps the runs they record).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import ROOT

from pipeline.data.folds import make_folds
from pipeline.data.holdout import ContrastCurve, carve_holdout
from pipeline.data.prep import prep
from pipeline.study.ablate import ablate

HEADS = "none,frozen,hebb,oja,lifetime,lifetime-adapt"


def carve(dev: Path, data: Path, split: str, seed: int, gain: float = 1.0, sizes: tuple[int, int] = (1000, 500)) -> Path:
    """The (train, test) = `sizes` carve (its test images through `gain` when not 1), prepared, with its 5 folds."""
    if not (data / "train.csv").exists():
        carve_holdout(dev, data, n_test=sizes[1], seed=seed, n_train=sizes[0], split=split, test_curve=ContrastCurve(gain=gain))
    prep(data)
    if not (data / "folds.csv").exists():
        make_folds(data, data / "folds.csv", k=5, seed=42)
    return data


def study(dev: Path, split: str, carve_seed: int, seeds: int, heads: str, work: Path, gain: float, out: Path | None = None,
          config: str = "cpu-demo", sizes: tuple[int, int] = (1000, 500), overrides: tuple[str, ...] = ()) -> dict:
    name = f"{split}{carve_seed}" + ("" if config == "cpu-demo" else f"-{config}")
    data = carve(dev, work / f"{name}-data", split, carve_seed, sizes=sizes)
    also_test = {}
    if split == "random":
        label = f"gain{str(gain).replace('.', '')}"
        also_test[label] = carve(dev, work / f"{name}-{label}-data", split, carve_seed, gain, sizes)
    overrides = ["train.tensorboard=false", f"data.folds_file={data / 'folds.csv'}", *overrides]
    return ablate(config, heads.split(","), seeds, [0], overrides, out or ROOT / "docs" / "ablation-preset" / name, str(data),
                  allow_mixed_code=True, test_time=["adabn", "notta"], also_test=also_test, runs_dir=work / f"{name}-runs", hash_ids=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", required=True, type=Path, help="the labelled real dev set (never copied into the project)")
    parser.add_argument("--split", choices=("random", "depth"), default="random")
    parser.add_argument("--carve", type=int, default=0, help="the carve's seed")
    parser.add_argument("--seeds", type=int, default=1, help="paired training seeds 0..N-1")
    parser.add_argument("--heads", default=HEADS)
    parser.add_argument("--gain", type=float, default=0.5, help="the contrast gain of the shifted test images (random split)")
    parser.add_argument("--config", default="cpu-demo", help="the preset (gpu-full on a GPU: tables in docs/ablation-preset/SPLITCARVE-gpu-full)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/plastic-salt-study"), help="carves and run folders (weights)")
    args = parser.parse_args()
    outputs = study(args.dev, args.split, args.carve, args.seeds, args.heads, args.work, args.gain, config=args.config)
    print(outputs["markdown"].read_text())
