"""The training objective: BCE + Dice warm-up, then (symmetric) Lovasz hinge, plus BCE on the empty-mask head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch import losses as smp_losses

from pipeline.config import LossConfig


def lovasz_hinge(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Binary Lovasz hinge (Berman et al. 2018) per image, averaged over images; all images in one sort.

    The same value as smp's LovaszLoss(mode='binary', per_image=True), which loops over images in Python
    (thousands of small kernels per step). Shapes: logits and masks (B,...), flattened per image to (B,P)."""
    logits, labels = logits.flatten(1), masks.flatten(1).to(logits.dtype)
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    errors_sorted, order = errors.sort(dim=1, descending=True)
    labels_sorted = labels.gather(1, order)
    positives = labels_sorted.sum(dim=1, keepdim=True)
    intersection = positives - labels_sorted.cumsum(dim=1)
    union = positives + (1.0 - labels_sorted).cumsum(dim=1)  # >= 1 from the first pixel on: never 0
    jaccard = 1.0 - intersection / union
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)  # Alg. 1: the Lovasz gradient
    return (F.relu(errors_sorted) * grad).sum(dim=1).mean()


def lovasz_start_epoch(cfg: LossConfig, epochs: int) -> int:
    """The first epoch (0-based) trained with the Lovasz hinge: loss.lovasz_from of the fold's epochs."""
    return int(cfg.lovasz_from * epochs + 0.5)  # half up: 0.5 of 3 epochs switches at epoch 2


class SaltLoss:
    def __init__(self, cfg: LossConfig, epochs: int):
        self.cfg = cfg
        self.lovasz_epoch = lovasz_start_epoch(cfg, epochs)
        self.bce = smp_losses.SoftBCEWithLogitsLoss()
        self.dice = smp_losses.DiceLoss(mode="binary")

    def segmentation(self, logits: torch.Tensor, masks: torch.Tensor, epoch: int) -> torch.Tensor:
        if epoch < self.lovasz_epoch:
            return self.bce(logits, masks) + self.dice(logits, masks)
        if self.cfg.symmetric_lovasz:  # 0.5 (L(z, m) + L(-z, 1 - m)): both halves in one batched call
            return lovasz_hinge(torch.cat([logits, -logits]), torch.cat([masks, 1 - masks]))
        return lovasz_hinge(logits, masks)

    def __call__(self, logits, masks, empty_logit, empty_target, epoch: int) -> torch.Tensor:
        logits = logits.float()
        loss = self.segmentation(logits, masks, epoch)
        if empty_logit is not None and self.cfg.aux_weight > 0:
            loss = loss + self.cfg.aux_weight * self.bce(empty_logit.float(), empty_target)
        return loss
