"""Batched prediction with test-time augmentation: probabilities in the original 101x101 geometry."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.config import Config
from pipeline.data.dataset import batch_inputs, to_original_geometry
from pipeline.devices import autocast
from pipeline.fileio import PipelineError

TTA_VIEWS = ("none", "hflip")  # config.py checks infer.tta against these


def _apply_view(batch: torch.Tensor, view: str) -> torch.Tensor:
    if view == "none":
        return batch
    if view == "hflip":
        return torch.flip(batch, dims=[-1])
    raise ValueError(f"unknown TTA view {view!r}; choose from {TTA_VIEWS}")


@torch.no_grad()
def predict_probs(model, images: np.ndarray, depth: np.ndarray, cfg: Config, device: torch.device, views=("none",), batch_size: int = 64):
    """Mean over TTA views of sigmoid probabilities, (N,101,101) float32, in the images' order."""
    if not views:
        raise PipelineError("infer.tta is empty: list at least the view 'none'")
    model.eval()
    out = np.empty((len(images),) + images.shape[1:], np.float32)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        inputs = batch_inputs(images[start:stop], depth[start:stop], cfg.data).to(device, non_blocking=True)
        inputs = inputs.contiguous(memory_format=memory_format)
        total = None
        for view in views:
            with autocast(device, cfg.train.amp):
                logits, _ = model(_apply_view(inputs, view))
            probs = _apply_view(torch.sigmoid(logits.float()), view)
            total = probs if total is None else total + probs
        out[start:stop] = to_original_geometry(total / len(views), cfg.data).cpu().numpy()
    return out
