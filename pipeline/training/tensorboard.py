"""TensorBoard event files for each fold (`train.tensorboard`, on by default): every number of the epoch's
metrics row (losses, validation metric, learning rate, the plastic head's eta/alpha/trace norms) and an
overlay of a few validation images (image | truth | prediction). For watching a run while it trains:
`tensorboard --logdir runs/NAME`. metrics.csv stays the source for the report and every table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.models.plastic import lifetime_preserved
from pipeline.models.predict import predict_probs

OVERLAY_IMAGES = 4
GROUPS = {"train_loss": "loss/train", "val_loss": "loss/val", "val_metric": "metric/val", "lr": "optim/lr"}


def scalar_tag(key: str) -> str:
    if key in GROUPS:
        return GROUPS[key]
    return f"head/{key.removeprefix('head_')}" if key.startswith("head_") else f"speed/{key}"


def overlay(images: np.ndarray, masks: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(N, 3, 101, 3*101) float in [0, 1]: the image in grey, the true mask, the predicted probability, side by side."""
    grey = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    panels = np.concatenate([grey, masks.astype(np.float32), probs.astype(np.float32)], axis=2)
    return np.repeat(panels[:, None], 3, axis=1)


class TensorBoardLog:
    """An epoch-end callback; one SummaryWriter per fold folder, closed after the fold's last epoch."""

    def __init__(self) -> None:
        self.writers: dict[Path, object] = {}

    def __call__(self, training, row: dict) -> None:
        cfg = training.cfg
        if not cfg.train.tensorboard or not training.ctx.is_main:
            return
        from torch.utils.tensorboard import SummaryWriter

        writer = self.writers.get(training.fold_dir)
        if writer is None:
            writer = self.writers[training.fold_dir] = SummaryWriter(str(training.folder.tensorboard))
        epoch = row["epoch"]
        for key, value in row.items():
            if key not in ("epoch", "improved") and isinstance(value, (int, float)):
                writer.add_scalar(scalar_tag(key), value, epoch)
        val = training.val_loader.dataset.dataset  # the fold's validation SaltDataset (unsharded)
        count = min(OVERLAY_IMAGES, len(val))
        with torch.no_grad(), lifetime_preserved(training.model):
            probs = predict_probs(training.model, val.images[:count], val.depth[:count], cfg, training.ctx.device, views=("none",))
        writer.add_images("validation/image_truth_prediction", overlay(val.images[:count], val.masks[:count], probs), epoch)
        writer.flush()
        if training.epoch >= training.epochs:
            writer.close()
            del self.writers[training.fold_dir]


write_tensorboard = TensorBoardLog()
