"""Typed run configuration: dataclasses filled from a YAML preset plus `section.key=value` overrides.

Unknown keys are errors naming the key; the resolved config is saved beside every run.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.fileio import PipelineError, write_text

PRESET_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    data_dir: str = "data"
    folds_file: str = "folds/folds.csv"
    input_size: int = 128  # network input side; 101 px images are padded (or resized) to it
    resize: bool = False  # False: reflect-101 padding (the default); True: bilinear resize
    depth_channel: bool = False  # extra input channel holding depth z / 1000
    coord_channel: bool = False  # extra input channel holding the row coordinate (depth within the image)


@dataclass
class AugmentConfig:
    hflip: float = 0.5  # no vertical flip: depth has a direction
    affine: float = 0.5
    shift: float = 0.05
    scale: float = 0.1
    rotate: float = 5.0
    brightness_contrast: float = 0.3
    brightness_limit: float = 0.1
    contrast_limit: float = 0.1


@dataclass
class HeadConfig:
    rule: str = "none"  # none | hebb | oja | neuromod | eligibility
    placement: str = "pixels"  # pixels (ours) | rows (the original Plastic-UNet design)
    alpha: str = "free"  # free (C,K) | yoked (scalar)
    steps: int = 3  # plastic iterations per image episode (step 0 uses Hebb_0; T=2 cannot tell hebb from oja)
    episode: str = "image"  # image (Hebb_0 = 0) | lifetime (Hebb_0 = the lifetime trace)
    clip: str = "hard"  # neuromod/eligibility bound: hard | decay | oja
    eta_init: float = 0.01
    alpha_init: float = 0.1
    modulation: str = "image"  # neuromod M per image | per output channel
    lifetime_reset_each_epoch: bool = False
    inference_plasticity: str = "frozen"  # frozen | adapt (lifetime trace keeps learning, fixed order)


@dataclass
class ModelConfig:
    encoder: str = "resnet34"
    encoder_depth: int = 5
    decoder_channels: list[int] = field(default_factory=lambda: [256, 128, 64, 32, 16])
    encoder_weights: str | None = None  # None, or a local weights file (never downloaded)
    aux_head: bool = False  # empty-mask classification head on the deepest encoder features
    head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class LossConfig:
    lovasz_from_epoch: int = 10  # BCE+Dice before this epoch, Lovasz hinge from it on
    symmetric_lovasz: bool = True
    aux_weight: float = 0.05


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "cosine"  # cosine | restarts
    warmup_epochs: float = 1.0
    cycles: int = 1  # cosine restarts (snapshot ensembles) when schedule = restarts
    min_lr_ratio: float = 0.01


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 32  # global: split evenly over DDP ranks, so N GPUs run the same recipe as one
    num_workers: int = 0
    seed: int = 42
    device: str = "auto"  # auto (a GPU when torch sees one) | cpu | cuda
    amp: bool = True  # CUDA only: bf16 on GPUs with native bf16 (compute capability >= 8.0), fp16 + GradScaler before
    channels_last: bool = True
    deterministic: bool = False  # CUDA: deterministic kernels, no cudnn.benchmark (bit-exact resume; slower)
    checkpoint_every: int = 1  # write last.pt every k epochs (and after the last one)
    sync_every: int = 25  # CUDA: check the loss for NaN/inf every k steps (each check waits for the GPU)
    max_steps_per_epoch: int | None = None


@dataclass
class InferConfig:
    batch_size: int = 64
    tta: list[str] = field(default_factory=lambda: ["none", "hflip"])
    thresholds: list[float] = field(default_factory=lambda: [round(0.2 + 0.025 * i, 3) for i in range(25)])
    min_areas: list[int] = field(default_factory=lambda: [0, 10, 20, 40, 60, 80, 120, 160])


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)


CHOICES = {
    "model.head.rule": {"none", "hebb", "oja", "neuromod", "eligibility"},
    "model.head.placement": {"pixels", "rows"},
    "model.head.alpha": {"free", "yoked"},
    "model.head.episode": {"image", "lifetime"},
    "model.head.clip": {"hard", "decay", "oja"},
    "model.head.modulation": {"image", "channel"},
    "model.head.inference_plasticity": {"frozen", "adapt"},
    "optim.name": {"adamw", "sgd"},
    "train.device": {"auto", "cpu", "cuda"},
    "optim.schedule": {"cosine", "restarts"},
    "infer.tta": {"none", "hflip"},  # each listed view (pipeline/models/predict.py)
}


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise PipelineError(f"config: '{where or 'top level'}' must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise PipelineError(f"config: unknown key '{key}' (known here: {', '.join(sorted(known))}); fix the YAML or the override")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        path = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, path)
        else:
            kwargs[name] = _coerce(hint, value, path)
    return cls(**kwargs)


def _coerce(hint, value, path):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise PipelineError(f"config: '{path}' must be a list, got {value!r}")
        return [_coerce(args[0], item, path) for item in value]
    if args and type(None) in args:  # Optional[X]
        hint = next(a for a in args if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise PipelineError(f"config: '{path}' must be true or false, got {value!r}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        if path in CHOICES and value not in CHOICES[path]:
            raise PipelineError(f"config: '{path}' is {value!r}; choose one of {sorted(CHOICES[path])}")
        return value
    raise PipelineError(f"config: '{path}' must be {getattr(hint, '__name__', hint)}, got {value!r}")


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def resolve_preset(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if preset.exists():
        return preset
    presets = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
    raise PipelineError(f"config: no file or preset named '{name_or_path}' (presets: {presets})")


def apply_override(values: dict, override: str) -> None:
    """Set `section.key=value` (value parsed as YAML) in a nested dict."""
    if "=" not in override:
        raise PipelineError(f"config: override '{override}' must look like section.key=value")
    dotted, raw = override.split("=", 1)
    keys = dotted.strip().split(".")
    node = values
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise PipelineError(f"config: override '{override}': '{key}' is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def load_config(name_or_path: str | None = None, overrides: list[str] | tuple = ()) -> Config:
    values: dict = {}
    if name_or_path:
        path = resolve_preset(name_or_path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise PipelineError(f"config: {path} is not valid YAML: {error}") from None
    for override in overrides:
        apply_override(values, override)
    return _build(Config, values, "")


def config_from_dict(values: dict) -> Config:
    return _build(Config, values, "")


def save_config(config: Config, target) -> None:
    write_text(target, yaml.safe_dump(to_dict(config), sort_keys=False))


def load_run_config(run_dir) -> Config:
    """The resolved config a run was trained with (runs/NAME/config.yaml)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise PipelineError(f"{path} is missing: no run named '{Path(run_dir).name}' was trained (python -m pipeline train --run NAME)")
    return config_from_dict(yaml.safe_load(path.read_text()) or {})
