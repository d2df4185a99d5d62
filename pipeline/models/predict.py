"""Batched prediction with test-time augmentation, and the ensemble over checkpoints: probabilities in the original
101x101 geometry. The one place that averages views and models (infer, OOF, export all come here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.config import TTA_VIEWS, Config
from pipeline.data.dataset import batch_inputs, to_original_geometry
from pipeline.devices import autocast
from pipeline.errors import PipelineError
from pipeline.models.checkpoints import load_checkpoint, load_model_state
from pipeline.models.plastic import lifetime_preserved, plastic_heads



def apply_view(images, view: str):
    """A TTA view of 101x101 images (numpy (N,H,W)) or of probabilities (torch (N,H,W)); hflip is its own inverse.

    Views act in the original 101 px geometry, before padding: flipping the padded input instead would move
    the image by a pixel whenever the padding is uneven (101 -> 128 pads 13 and 14)."""
    if view == "none":
        return images
    if view == "hflip":
        return torch.flip(images, dims=[-1]) if isinstance(images, torch.Tensor) else np.ascontiguousarray(images[..., ::-1])
    raise ValueError(f"unknown TTA view {view!r}; choose from {TTA_VIEWS}")


def tta_views(cfg: Config) -> list[tuple[str, int]]:
    """The (view, shift) pairs a prediction averages: infer.tta's views at the usual placement, then, with
    infer.tta_shift, the same views again with the image that many px lower and further right in the canvas."""
    shifts = (0, cfg.infer.tta_shift) if cfg.infer.tta_shift else (0,)
    return [(view, shift) for shift in shifts for view in cfg.infer.tta]


def _as_pairs(views) -> list[tuple[str, int]]:
    return [(view, 0) if isinstance(view, str) else (view[0], int(view[1])) for view in views]


def view_inputs(images: np.ndarray, depth: np.ndarray, cfg: Config, view: tuple[str, int]) -> torch.Tensor:
    """The network inputs of a (view, shift) of 101x101 uint8 images (N,H,W): flipped, then placed in the canvas."""
    name, shift = view
    return batch_inputs(apply_view(images, name), depth, cfg.data, shift)


def view_probs(probs: torch.Tensor, cfg: Config, view: tuple[str, int]) -> torch.Tensor:
    """Network-geometry probabilities (N,1,S,S) of a (view, shift) back to the images' own 101x101 frame."""
    name, shift = view
    return apply_view(to_original_geometry(probs, cfg.data, shift), name)


def predict_probs(model, images: np.ndarray, depth: np.ndarray, cfg: Config, device: torch.device, views=("none",), batch_size: int = 64):
    """Mean over TTA views of sigmoid probabilities, (N,101,101) float32, in the images' order."""
    return predict(model, images, depth, cfg, device, views, batch_size)[0]


@torch.no_grad()
def predict(model, images: np.ndarray, depth: np.ndarray, cfg: Config, device: torch.device, views=("none",), batch_size: int = 64):
    """(mask probabilities (N,101,101) float32, empty-mask probabilities (N,) float32 or None without an
    empty-mask head), each the mean over TTA views, in the images' order. `views`: view names (at the usual
    placement) or (view, shift) pairs (tta_views).

    With a head whose lifetime trace adapts at inference, the trace learns from each image in this order:
    the same result for any batch size."""
    if not views:
        raise PipelineError("infer.tta is empty: list at least the view 'none'")
    views = _as_pairs(views)
    model.eval()
    adapting = any(head.adapts_at_inference for head in plastic_heads(model))
    out = np.empty((len(images),) + images.shape[1:], np.float32)
    empty = np.empty(len(images), np.float32)
    has_empty_head = model.unet.classification_head is not None
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    # a progress bar with the time left on a terminal (disable=None: none when output is not a terminal)
    for start in tqdm(range(0, len(images), batch_size), desc=f"predict {len(images)} images x {len(views)} views", unit="batch",
                      disable=None, leave=False, mininterval=2):
        stop = start + batch_size
        inputs_by_view = [
            view_inputs(images[start:stop], depth[start:stop], cfg, view).to(device, non_blocking=True).contiguous(memory_format=memory_format)
            for view in views
        ]
        if adapting:  # the body batched, the head image by image in order (the trace learns from each image)
            with autocast(device, cfg.train.amp):
                bodies = [model.body(inputs) for inputs in inputs_by_view]
            view_logits = model.head.adapt_sequentially([decoded for decoded, _ in bodies])
            view_labels = [labels for _, labels in bodies]
        else:
            view_logits, view_labels = [], []
            for inputs in inputs_by_view:
                with autocast(device, cfg.train.amp):
                    logits, labels = model(inputs)
                view_logits.append(logits)
                view_labels.append(labels)
        total = None
        for view, logits in zip(views, view_logits):
            probs = view_probs(torch.sigmoid(logits.float()), cfg, view)
            total = probs if total is None else total + probs
        out[start:stop] = (total / len(views)).cpu().numpy()
        if has_empty_head:  # the head's logit is P(mask empty)
            empty[start:stop] = torch.stack([torch.sigmoid(labels.float()) for labels in view_labels]).mean(0).cpu().numpy()
    return out, (empty if has_empty_head else None)


@torch.no_grad()
def adapt_batchnorm(model, images: np.ndarray, depth: np.ndarray, cfg: Config, device: torch.device, views=("none",), batch_size: int = 64) -> int:
    """AdaBN (Li et al. 2016): every BatchNorm layer's running statistics re-estimated on `images` (each TTA view
    of each image; a cumulative average over batches, BatchNorm's momentum=None), weights untouched; the rest of
    the model stays in eval mode, the lifetime trace as it was. Returns the number of layers adapted.

    Not torch.optim.swa_utils.update_bn: it puts the whole model in train mode, which would let a plastic head
    train its trace and leave the encoder's layers under model.freeze_encoder_bn reset but never updated."""
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    momenta = [norm.momentum for norm in norms]
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
            norm.train()
        with lifetime_preserved(model):
            for start in range(0, len(images), batch_size):
                for view in _as_pairs(views):
                    inputs = view_inputs(images[start : start + batch_size], depth[start : start + batch_size], cfg, view)
                    with autocast(device, cfg.train.amp):
                        model(inputs.to(device).contiguous(memory_format=memory_format))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
            norm.eval()
    return len(norms)


def predict_with_checkpoints(model, paths: list[Path], cfg: Config, images: np.ndarray, depth: np.ndarray, device: torch.device,
                             adapt_bn: bool = False):
    """The mean over checkpoints of `predict` (mask probabilities, empty-mask probabilities or None), each
    checkpoint loaded into `model` in turn and predicting from its own lifetime trace (TTA views: infer.tta).
    `adapt_bn`: each checkpoint's BatchNorm statistics re-estimated on these images first (adapt_batchnorm)."""
    probs, empty = 0.0, 0.0
    for path in paths:
        load_model_state(model, load_checkpoint(path, cfg), path)
        if adapt_bn:
            adapt_batchnorm(model, images, depth, cfg, device, tta_views(cfg), cfg.infer.batch_size)
        with lifetime_preserved(model):
            one_probs, one_empty = predict(model, images, depth, cfg, device, views=tta_views(cfg), batch_size=cfg.infer.batch_size)
        probs = probs + one_probs / len(paths)
        empty = None if one_empty is None else empty + one_empty / len(paths)
    return probs, empty
