"""Batched prediction with test-time augmentation: probabilities in the original 101x101 geometry."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.config import TTA_VIEWS, Config
from pipeline.data.dataset import batch_inputs, to_original_geometry
from pipeline.devices import autocast
from pipeline.fileio import PipelineError
from pipeline.models.plastic import plastic_heads



def _apply_view(batch: torch.Tensor, view: str) -> torch.Tensor:
    if view == "none":
        return batch
    if view == "hflip":
        return torch.flip(batch, dims=[-1])
    raise ValueError(f"unknown TTA view {view!r}; choose from {TTA_VIEWS}")


@torch.no_grad()
def predict_probs(model, images: np.ndarray, depth: np.ndarray, cfg: Config, device: torch.device, views=("none",), batch_size: int = 64):
    """Mean over TTA views of sigmoid probabilities, (N,101,101) float32, in the images' order.

    With a head whose lifetime trace adapts at inference, the trace learns from each image in this order:
    the same result for any batch size."""
    if not views:
        raise PipelineError("infer.tta is empty: list at least the view 'none'")
    model.eval()
    adapting = any(head.adapts_at_inference for head in plastic_heads(model))
    out = np.empty((len(images),) + images.shape[1:], np.float32)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        inputs = batch_inputs(images[start:stop], depth[start:stop], cfg.data).to(device, non_blocking=True)
        inputs = inputs.contiguous(memory_format=memory_format)
        if adapting:  # the body batched, the head image by image in order (the trace learns from each image)
            with autocast(device, cfg.train.amp):
                decoded = [model.body(_apply_view(inputs, view))[0] for view in views]
            view_logits = model.head.adapt_sequentially(decoded)
        else:
            view_logits = []
            for view in views:
                with autocast(device, cfg.train.amp):
                    view_logits.append(model(_apply_view(inputs, view))[0])
        total = None
        for view, logits in zip(views, view_logits):
            probs = _apply_view(torch.sigmoid(logits.float()), view)
            total = probs if total is None else total + probs
        out[start:stop] = to_original_geometry(total / len(views), cfg.data).cpu().numpy()
    return out
