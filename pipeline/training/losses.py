"""The training objective: BCE + Dice warm-up, then (symmetric) Lovasz hinge, plus BCE on the empty-mask head."""

from __future__ import annotations

import torch
from segmentation_models_pytorch import losses as smp_losses

from pipeline.config import LossConfig


class SaltLoss:
    def __init__(self, cfg: LossConfig):
        self.cfg = cfg
        self.bce = smp_losses.SoftBCEWithLogitsLoss()
        self.dice = smp_losses.DiceLoss(mode="binary")
        self.lovasz = smp_losses.LovaszLoss(mode="binary", per_image=True)

    def segmentation(self, logits: torch.Tensor, masks: torch.Tensor, epoch: int) -> torch.Tensor:
        if epoch < self.cfg.lovasz_from_epoch:
            return self.bce(logits, masks) + self.dice(logits, masks)
        loss = self.lovasz(logits, masks)
        if self.cfg.symmetric_lovasz:
            loss = 0.5 * (loss + self.lovasz(-logits, 1 - masks))
        return loss

    def __call__(self, logits, masks, empty_logit, empty_target, epoch: int) -> torch.Tensor:
        logits = logits.float()
        loss = self.segmentation(logits, masks, epoch)
        if empty_logit is not None and self.cfg.aux_weight > 0:
            loss = loss + self.cfg.aux_weight * self.bce(empty_logit.float(), empty_target)
        return loss
