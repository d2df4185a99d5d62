"""build_model: an smp U-Net whose segmentation head is a PlasticHead (rule 'none' is the plain baseline)."""

from __future__ import annotations

import os
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from timm.models.efficientnet import EfficientNetFeatures
from torch import nn
from torch.nn import functional as F

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.models.plastic import PlasticHead
from pipeline.models.pretrained import SHIPPED, convert_by_order, load_shipped


def input_channels(cfg: Config) -> int:
    return 1 + int(cfg.data.depth_channel) + int(cfg.data.coord_channel)


class Hypercolumn(nn.Module):
    """Every decoder stage's output, upsampled to the last one's size and concatenated (the hypercolumn of the
    top TGS solutions), fused back to the last stage's width by a 1x1 conv + BN + ReLU so the head stays its size."""

    def __init__(self, widths: list[int]):
        super().__init__()
        self.fuse = nn.Sequential(nn.Conv2d(sum(widths), widths[-1], 1, bias=False), nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True))
        self.stages: list[torch.Tensor] = []  # this forward's decoder stages, filled by record()

    def record(self, _module, _args, output: torch.Tensor) -> None:
        """The decoder blocks' forward hook. A bound method, not a closure: a deep copy of the model (EMA's
        AveragedModel makes one) copies it bound to the copy's Hypercolumn, so the copy fills its own list."""
        self.stages.append(output)

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        size = stages[-1].shape[-2:]
        upsampled = [F.interpolate(s, size=size, mode="bilinear", align_corners=False) for s in stages[:-1]]
        return self.fuse(torch.cat(upsampled + [stages[-1]], dim=1))


class SaltNet(nn.Module):
    """U-Net + plastic head; returns (mask logits (B,1,H,W), empty-mask logit (B,) or None)."""

    def __init__(self, unet: smp.Unet, hypercolumn: Hypercolumn | None = None, freeze_encoder_bn: bool = False,
                 dropped: tuple[str, ...] = ()):
        super().__init__()
        self.unet = unet
        self.dropped = dropped  # state-dict prefixes of encoder blocks build_model cut off (drop_unused_blocks)
        self.hypercolumn = hypercolumn
        self.freeze_encoder_bn = freeze_encoder_bn
        if hypercolumn is not None:
            for block in unet.decoder.blocks:
                block.register_forward_hook(hypercolumn.record)

    def train(self, mode: bool = True):
        """As nn.Module.train; with freeze_encoder_bn the encoder's BatchNorm layers stay in eval mode (their
        ImageNet running statistics are used and kept; their affine weights still learn)."""
        super().train(mode)
        if mode and self.freeze_encoder_bn:
            for module in self.unet.encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, except that tensors of the encoder blocks this network dropped are ignored: a checkpoint
        or bundle written while they were still built (they never reached the output) loads unchanged."""
        kept = {key: value for key, value in state_dict.items() if not key.startswith(self.dropped)} if self.dropped else state_dict
        return super().load_state_dict(kept, strict, assign)

    @property
    def head(self) -> PlasticHead:
        return self.unet.segmentation_head

    def body(self, images: torch.Tensor):
        """Everything before the head: (decoder features (B,C,H,W), empty-mask logit (B,) or None)."""
        self.unet.check_input_shape(images)
        features = self.unet.encoder(images)
        labels = None if self.unet.classification_head is None else self.unet.classification_head(features[-1])[:, 0]
        if self.hypercolumn is None:
            return self.unet.decoder(features), labels
        self.hypercolumn.stages = []  # filled by the decoder blocks' hooks
        self.unet.decoder(features)
        decoded = self.hypercolumn(self.hypercolumn.stages)
        self.hypercolumn.stages = []
        return decoded, labels

    def forward(self, images: torch.Tensor):
        decoded, labels = self.body(images)
        return self.head(decoded), labels


def _hub_weights(model_cfg) -> str | None:
    """'imagenet' goes to smp's own download, unless this process is offline (HF_HUB_OFFLINE=1, which run.sh
    sets by default): then a one-line error names the local-file alternative, and nothing touches the network."""
    if model_cfg.encoder_weights != "imagenet":
        return None
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise PipelineError(
            f"config: model.encoder_weights imagenet needs a download, and this process is offline (HF_HUB_OFFLINE=1). Download the "
            f"'{model_cfg.encoder}' ImageNet weights on a machine with a network, copy the file here and set "
            "model.encoder_weights=path/to/weights.pth (or run with HF_HUB_OFFLINE=0 where the hub is reachable)"
        )
    return "imagenet"


def build_model(cfg: Config) -> SaltNet:
    model_cfg = cfg.model  # checked when the config was built (config.check_config)
    aux = {"classes": 1, "dropout": 0.2} if model_cfg.aux_head else None
    try:
        unet = smp.Unet(
            encoder_name=model_cfg.encoder,
            encoder_depth=model_cfg.encoder_depth,
            encoder_weights=_hub_weights(model_cfg),  # a local file is loaded below
            decoder_channels=list(model_cfg.decoder_channels),
            decoder_attention_type=None if model_cfg.decoder_attention == "none" else model_cfg.decoder_attention,
            in_channels=input_channels(cfg),
            classes=1,
            aux_params=aux,
        )
    except (KeyError, ValueError, RuntimeError) as error:
        raise PipelineError(f"config: cannot build encoder '{model_cfg.encoder}' ({error}); pick an smp/timm encoder name") from None
    except OSError as error:  # the hub download failed
        raise PipelineError(f"model.encoder_weights imagenet: the download failed ({error}); use a local weights file") from None
    if model_cfg.head.input == "preact":
        expose_preactivation(unet.decoder.blocks[-1])
    unet.segmentation_head = PlasticHead(model_cfg.decoder_channels[-1], 1, model_cfg.head, cfg.data.input_size)
    if model_cfg.encoder_weights in SHIPPED:
        load_shipped_weights(unet.encoder, model_cfg.encoder, model_cfg.encoder_weights)
    elif model_cfg.encoder_weights and model_cfg.encoder_weights != "imagenet":
        load_encoder_weights(unet.encoder, Path(model_cfg.encoder_weights))
    dropped = drop_unused_blocks(unet.encoder)  # after the weights: the shipped ones are converted by position
    hypercolumn = Hypercolumn(list(model_cfg.decoder_channels)) if model_cfg.hypercolumn else None
    return SaltNet(unet, hypercolumn, freeze_encoder_bn=model_cfg.freeze_encoder_bn, dropped=dropped)


def drop_unused_blocks(encoder: nn.Module) -> tuple[str, ...]:
    """Cut off the blocks after the deepest feature an EfficientNet encoder returns (model.encoder_depth below 5):
    timm's EfficientNetFeatures builds and runs every block whatever features are asked for, so at stride 16 the
    stride-32 blocks ran forward for nothing (a few percent of a cpu-demo run) and held 76% of the encoder's weights. Returns
    their state-dict prefixes in SaltNet's keys (old checkpoints still hold them), () when nothing was cut."""
    features = getattr(encoder, "model", None)
    if not isinstance(features, EfficientNetFeatures) or features.feature_hooks is not None:
        return ()  # other encoders are left as built
    needed = max(info["stage"] for info in features.feature_info.get_dicts())  # stage s's feature is block s-1's output
    dropped = tuple(f"unet.encoder.model.blocks.{index}." for index in range(needed, len(features.blocks)))
    features.blocks = features.blocks[:needed]
    return dropped


def expose_preactivation(block: nn.Module) -> None:
    """model.head.input preact: the last decoder block's output is taken before its final ReLU (after that ReLU's
    normalisation), by replacing the ReLU with an identity. smp's blocks expose no pre-activation output, and a
    forward hook cannot read one: their ReLU runs in place and overwrites the tensor the hook would hold."""
    relus = [(parent, name) for parent in block.modules() for name, child in parent.named_children() if isinstance(child, nn.ReLU)]
    if not relus:
        raise PipelineError(f"config: model.head.input preact needs a decoder block with a ReLU, found none in {block.__class__.__name__}")
    parent, name = relus[-1]
    setattr(parent, name, nn.Identity())


def adapt_first_conv(weight: torch.Tensor, in_channels: int, scale: float = 1.0) -> torch.Tensor:
    """An RGB first-convolution weight for `in_channels` inputs that keeps the ImageNet response: the grey
    channel gets R + G + B (smp's rule for one channel: a grey image looks to the stem as the same grey in RGB),
    extra channels (depth, row coordinate) start at zero, so adding them leaves the pretrained stem as it was
    until training gives them a use. `scale` folds the weights' own input scaling into the filters."""
    adapted = weight.new_zeros((weight.shape[0], in_channels, *weight.shape[2:]))
    adapted[:, 0] = weight.sum(dim=1) * scale
    return adapted


def _load_into(encoder: nn.Module, state: dict[str, torch.Tensor], source: str, scale: float = 1.0) -> None:
    """Load an encoder state dict whose 3-channel first convolutions are adapted to the model's input channels
    (adapt_first_conv); every other tensor must match in shape."""
    own = encoder.state_dict()
    # the stem is the encoder's first convolution; adapted even at 3 inputs (grey, depth, row), which are no RGB
    stem = next(key for key, value in own.items() if value.ndim == 4)
    adapted = {}
    for key, value in state.items():
        if key not in own:
            continue
        target = own[key]
        if key == stem and value.ndim == 4 and value.shape[1] == 3 and value.shape[0] == target.shape[0]:
            value = adapt_first_conv(value, target.shape[1], scale)
        if value.shape != target.shape:
            raise PipelineError(f"encoder weights {source}: '{key}' has shape {tuple(value.shape)}, the encoder needs {tuple(target.shape)}")
        adapted[key] = value
    missing = sorted(set(own) - set(adapted))
    if missing:
        raise PipelineError(f"encoder weights {source} lack {len(missing)} encoder tensors (first: {missing[0]}); is it for '{encoder.__class__.__name__}'?")
    encoder.load_state_dict(adapted)


def load_encoder_weights(encoder: nn.Module, path: Path) -> None:
    """Load a local encoder state dict (torch or safetensors), adapted to the input channels (adapt_first_conv)."""
    if not path.is_file():
        raise PipelineError(f"encoder weights file {path} does not exist; set model.encoder_weights to a local file, a shipped name ({', '.join(SHIPPED)}) or null")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file gets the same one-line answer
        raise PipelineError(f"encoder weights file {path} cannot be read ({error}); re-download it elsewhere and copy it here") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    _load_into(encoder, state, str(path))


def load_shipped_weights(encoder: nn.Module, encoder_name: str, name: str) -> None:
    """ImageNet weights from an installed package (pipeline.models.pretrained), keys converted by position."""
    spec = SHIPPED[name]
    if encoder_name != spec.encoder:
        raise PipelineError(f"config: model.encoder_weights {name} fits model.encoder {spec.encoder}, not {encoder_name}; set model.encoder={spec.encoder}")
    state = convert_by_order(load_shipped(name), encoder.state_dict(), name)
    _load_into(encoder, state, name, spec.input_scale)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
