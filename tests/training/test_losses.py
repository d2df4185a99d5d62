import pytest
import torch
from segmentation_models_pytorch.losses import LovaszLoss

from pipeline.config import LossConfig
from pipeline.training.losses import SaltLoss, lovasz_hinge


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 1, 16, 16, generator=generator) * 3
    masks = (torch.rand(6, 1, 16, 16, generator=generator) > 0.6).float()
    masks[0] = 0  # an empty mask
    masks[1] = 1  # a full one
    return logits, masks


def test_batched_lovasz_equals_smp_per_image_loop_in_value_and_gradient():
    logits, masks = _batch()
    ours_input = logits.clone().requires_grad_()
    theirs_input = logits.clone().requires_grad_()
    ours = lovasz_hinge(ours_input, masks)
    theirs = LovaszLoss(mode="binary", per_image=True)(theirs_input, masks)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours_input.grad, theirs_input.grad, rtol=1e-5, atol=1e-6)


def test_symmetric_lovasz_is_the_mean_of_both_sides():
    logits, masks = _batch(1)
    smp_lovasz = LovaszLoss(mode="binary", per_image=True)
    expected = 0.5 * (smp_lovasz(logits, masks) + smp_lovasz(-logits, 1 - masks))
    loss = SaltLoss(LossConfig(lovasz_from=0.0, symmetric_lovasz=True), epochs=1)
    assert float(loss.segmentation(logits, masks, epoch=0)) == pytest.approx(float(expected), rel=1e-5)
