"""The plain pretrained one-file baseline beside ./run.sh: what do the pipeline's folds, Lovasz phase, empty gate,
post-processing, TTA and plastic head add over a short script on the same carve and the same encoder?

The script (issue 28's reference): smp U-Net on tu-tf_efficientnet_lite0 from the shipped ImageNet weights,
decoder (128,64,32,16,8), 101 px reflect-padded to 128, hflip augmentation, BCE+Dice, AdamW with a one-cycle
schedule, STEPS steps of batch 16 on 80% of the carve's train ids, the binarisation threshold chosen on the
other 20%, hflip TTA; the carve's held-out test ids scored with the competition metric. Appends a row to
docs/real-dev/plain-baseline.csv (carve seed, steps, score, threshold, wall seconds).

    python benchmarks/plain_baseline.py CARVE_DIR --seed S [--steps 1000]
    e.g. python -m pipeline holdout --data ../shared/tgs-real-dev --out /tmp/real/seed0 --test 500 --train 1000 --seed 0
         python benchmarks/plain_baseline.py /tmp/real/seed0 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import math
import time

import common  # noqa: F401  (sys.path, offline hub)
import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch.nn import functional as F

from pipeline.competition.metric import competition_score
from pipeline.competition.rle import decode_many
from pipeline.data.layout import Layout, read_depths
from pipeline.data.prep import load_test, load_train
from pipeline.fileio import read_table
from pipeline.models.factory import load_shipped_weights

ENCODER, WEIGHTS = "tu-tf_efficientnet_lite0", "efficientnet-lite0"
PAD = (13, 14)  # 101 + 27 = 128
THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.05), 2)
OUT = common.ROOT / "docs" / "real-dev" / "plain-baseline.csv"


def to_input(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    return (F.pad(x, PAD + PAD, mode="reflect") - 0.5) / 0.25  # the pipeline's scaling: the stem folds in the rest


def build() -> torch.nn.Module:
    model = smp.Unet(ENCODER, encoder_weights=None, in_channels=1, classes=1, decoder_channels=[128, 64, 32, 16, 8])
    load_shipped_weights(model.encoder, ENCODER, WEIGHTS)
    return model


def predict(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Probabilities (N,101,101), the mean of the image and its horizontal flip."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), 64):
            x = to_input(images[start : start + 64])
            p = (torch.sigmoid(model(x)) + torch.sigmoid(model(x.flip(-1))).flip(-1)) / 2
            out.append(p[:, 0, PAD[0] : PAD[0] + 101, PAD[0] : PAD[0] + 101].numpy())
    return np.concatenate(out)


def train(model, images: np.ndarray, masks: np.ndarray, steps: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    dice = smp.losses.DiceLoss("binary")
    losses = []
    model.train()
    for _ in range(steps):
        batch = rng.choice(len(images), 16, replace=False)
        x, y = to_input(images[batch]), F.pad(torch.from_numpy(masks[batch].astype(np.float32))[:, None], PAD + PAD, mode="reflect")
        flip = torch.from_numpy(rng.random(16) < 0.5)
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, y) + dice(logits, y)
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"non-finite loss {loss.item()} at step {len(losses)}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("carve", help="a `pipeline holdout` folder with test_truth.csv")
    parser.add_argument("--seed", type=int, required=True, help="the carve's seed (recorded) and the split/training seed")
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    layout = Layout(common.Path(args.carve))
    depths = read_depths(layout.depths_csv)
    train_set, test_set = load_train(layout, depths), load_test(layout, depths)
    truth_table = read_table(layout.test_truth, ("id", "rle_mask"))
    truth = decode_many(truth_table["rle_mask"].tolist(), truth_table["id"].tolist())
    order = {image_id: i for i, image_id in enumerate(truth_table["id"].tolist())}
    truth = truth[[order[i] for i in test_set.ids]]
    split = np.random.default_rng(args.seed).permutation(len(train_set.ids))
    cut = int(0.8 * len(split))
    fit, hold = split[:cut], split[cut:]
    started = time.perf_counter()
    model = build()
    losses = train(model, train_set.images[fit], train_set.masks[fit], args.steps, args.seed)
    hold_probs = predict(model, train_set.images[hold])
    hold_scores = {float(t): competition_score(hold_probs > t, train_set.masks[hold]) for t in THRESHOLDS}
    threshold = max(hold_scores, key=hold_scores.get)
    score = competition_score(predict(model, test_set.images) > threshold, truth)
    wall = time.perf_counter() - started
    row = {"seed": args.seed, "steps": args.steps, "test_score": f"{score:.4f}", "threshold": threshold,
           "holdout_score": f"{hold_scores[threshold]:.4f}", "final_loss": f"{np.mean(losses[-50:]):.4f}", "wall_s": round(wall)}
    new = not OUT.is_file()
    with OUT.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(row)


if __name__ == "__main__":
    main()
