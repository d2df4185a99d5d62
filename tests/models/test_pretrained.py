"""The shipped ImageNet weights are real and their conversion right: timm's classifier, loaded through
convert_by_order, labels sklearn's sample photographs as ImageNet does; the U-Net's stem keeps that response."""

import numpy as np
import pytest
import timm
import torch
from sklearn.datasets import load_sample_image

from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.models import factory
from pipeline.models.factory import build_model
from pipeline.models.pretrained import SHIPPED, convert_by_order, load_shipped

DAISY = 985
CHURCH_LIKE = {442, 497, 663, 832}  # bell cote, church, monastery, stupa


def _imagenet_input(name: str) -> torch.Tensor:
    """A 224 px centre crop of sklearn's sample image, scaled to [-1, 1] as the TF Lite weights expect."""
    image = load_sample_image(name)
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    crop = torch.from_numpy(image[top : top + side, left : left + side].copy()).permute(2, 0, 1).float()[None] / 255.0
    crop = torch.nn.functional.interpolate(crop, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return (crop - 0.5) / 0.5


@pytest.fixture(scope="module")
def lite0_classifier():
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(convert_by_order(load_shipped("efficientnet-lite0"), model.state_dict(), "efficientnet-lite0"))
    return model.eval()


def test_converted_lite0_weights_label_sklearn_photographs_as_imagenet_does(lite0_classifier):
    with torch.no_grad():
        flower = lite0_classifier(_imagenet_input("flower.jpg"))[0]
        china = lite0_classifier(_imagenet_input("china.jpg"))[0]
    assert int(flower.argmax()) == DAISY
    assert set(china.topk(5).indices.tolist()) & CHURCH_LIKE
    assert float(flower.softmax(0)[DAISY]) > 0.1  # 0.21 measured: far from chance (0.001), not a lucky argmax


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_file_converts_onto_its_encoder_by_count_order_and_shape(name):
    model = build_model(load_config("smoke", [f"model.encoder={SHIPPED[name].encoder}", f"model.encoder_weights={name}"]))
    source = load_shipped(name)
    stem = next(iter(source.values()))
    # the grey stem filter is R + G + B, halved: the pipeline's input is twice the [-1, 1] scaling of the weights
    torch.testing.assert_close(model.unet.encoder.state_dict()["model.conv_stem.weight"][:, 0], stem.sum(dim=1) * 0.5)


def test_extra_channels_start_at_zero_and_the_stem_keeps_the_imagenet_response(lite0_classifier):
    cfg = load_config("smoke", ["model.encoder=tu-tf_efficientnet_lite0", "model.encoder_weights=efficientnet-lite0", "data.depth_channel=true", "data.coord_channel=true"])
    stem = build_model(cfg).unet.encoder.model.conv_stem
    assert stem.weight.shape[1] == 3 and torch.count_nonzero(stem.weight[:, 1:]) == 0
    grey = torch.rand(1, 1, 64, 64)
    pipeline_input = torch.cat([(grey - 0.5) / 0.25, torch.randn(1, 2, 64, 64)], dim=1)  # depth and row channels: any values
    imagenet_input = ((grey - 0.5) / 0.5).expand(1, 3, 64, 64)  # the same grey image, in RGB at [-1, 1]
    with torch.no_grad():
        torch.testing.assert_close(stem(pipeline_input), lite0_classifier.conv_stem(imagenet_input), atol=1e-4, rtol=1e-4)


def test_shipped_weights_refuse_a_foreign_encoder():
    with pytest.raises(PipelineError, match="fits model.encoder tu-tf_efficientnet_lite0, not"):
        build_model(load_config("smoke", ["model.encoder_weights=efficientnet-lite0"]))
    lite0 = build_model(load_config("smoke", ["model.encoder=tu-tf_efficientnet_lite0", "model.encoder_depth=5", "model.decoder_channels=[16,8,8,8,8]"]))
    with pytest.raises(PipelineError, match="'_blocks.3._depthwise_conv.weight' .* does not fit"):  # lite1 has one block more
        convert_by_order(load_shipped("efficientnet-lite1"), lite0.unet.encoder.state_dict(), "efficientnet-lite1")
    lite2 = build_model(load_config("smoke", ["model.encoder=tu-tf_efficientnet_lite2", "model.encoder_depth=5", "model.decoder_channels=[16,8,8,8,8]"]))
    with pytest.raises(PipelineError, match="247 tensors, the encoder needs"):
        convert_by_order(load_shipped("efficientnet-lite0"), lite2.unet.encoder.state_dict(), "efficientnet-lite0")


def test_the_cpu_preset_encoder_is_the_imagenet_network_down_to_stride_16_and_no_further():
    """cpu-demo uses Lite0 down to stride 16. timm's EfficientNetFeatures builds (and runs forward) every block
    whatever features are asked for; build_model cuts the stride-32 blocks off after loading the package's weights,
    so what remains is the package's network, tensor for tensor (the stem aside, which adapt_stem turns grey), to
    the last block the decoder reads, and every block left gets a gradient."""
    model = build_model(load_config("cpu-demo"))
    encoder = model.unet.encoder
    built = [(key, value) for key, value in encoder.state_dict().items() if not key.endswith("num_batches_tracked")]
    package = [value for key, value in load_shipped("efficientnet-lite0").items() if not key.endswith("num_batches_tracked")]
    assert len(built) == 165  # of the package's 247: blocks 5-6 (75), conv_head, its BatchNorm and the classifier are not kept
    for (key, value), original in zip(built[1:], package[1:]):
        assert torch.equal(value, original), key
    assert len(encoder.model.blocks) == 5 and model.dropped == ("unet.encoder.model.blocks.5.", "unet.encoder.model.blocks.6.")
    logits, empty_logit = model.train()(torch.randn(2, 1, 128, 128))
    assert encoder(torch.zeros(1, 1, 128, 128))[-1].shape == (1, 112, 8, 8)
    (logits.mean() + empty_logit.mean()).backward()
    reached = {name.split(".")[2] for name, p in encoder.named_parameters() if name.startswith("model.blocks.") and p.grad is not None}
    assert reached == {"0", "1", "2", "3", "4"}


def test_dropping_the_unused_blocks_changes_no_number_and_old_checkpoints_still_load(monkeypatch):
    """The cut network computes what the whole one did, bit for bit, forward and backward (the stride-32 blocks
    never reached the output), and a state dict that still holds those blocks (checkpoints and bundles written
    before the cut) loads into it; five-stage presets lose nothing."""
    cfg = load_config("cpu-demo")
    torch.manual_seed(0)
    cut = build_model(cfg).train()
    with monkeypatch.context() as before_the_cut:
        before_the_cut.setattr(factory, "drop_unused_blocks", lambda encoder: ())
        torch.manual_seed(0)
        whole = build_model(cfg).train()
    assert len(whole.unet.encoder.model.blocks) == 7
    images = torch.randn(3, 1, 128, 128)
    outputs = []
    for model in (cut, whole):
        torch.manual_seed(1)  # the empty-mask head's dropout draws the same
        logits, empty_logit = model(images)
        (logits.square().mean() + empty_logit.mean()).backward()
        outputs.append((logits, empty_logit, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])
    assert outputs[0][2].keys() == outputs[1][2].keys()
    assert all(torch.equal(grad, outputs[1][2][name]) for name, grad in outputs[0][2].items())
    fresh = build_model(cfg)
    fresh.load_state_dict(whole.state_dict())  # strict: every kept tensor present, the dropped ones ignored
    assert torch.equal(fresh.unet.encoder.model.blocks[4][0].conv_pw.weight, whole.unet.encoder.model.blocks[4][0].conv_pw.weight)
    assert build_model(load_config("cpu-demo", ["model.encoder_depth=5", "model.decoder_channels=[128,64,32,16,8]"])).dropped == ()
