"""Checkpoints: `last.pt` holds everything needed to continue a fold exactly (every rank's RNG included);
`best.pt` holds the model alone. Both are written atomically."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from pipeline.config import Config, to_dict
from pipeline.fileio import PipelineError, torch_save
from pipeline.models.plastic import lifetime_preserved
from pipeline.models.predict import predict


def rng_state(device: torch.device) -> dict:
    """This process's generators: Python, numpy, torch CPU and, on a GPU, this process's own GPU."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def fold_checkpoints(cfg: Config, fold_dir: Path) -> list[Path]:
    """The checkpoint(s) of a fold that infer.checkpoint names: last.pt, best.pt, ema.pt, or every snapshot_C.pt."""
    if cfg.infer.checkpoint == "snapshots":
        return sorted(Path(fold_dir).glob("snapshot_*.pt"))
    return [Path(fold_dir) / f"{cfg.infer.checkpoint}.pt"]


def save_checkpoint(path: Path, cfg: Config, contents: dict) -> None:
    """`contents` (model state and whatever else resume needs) plus the config that made it."""
    torch_save(path, {**contents, "config": to_dict(cfg)})


def load_checkpoint(path: Path, cfg: Config | None = None) -> dict:
    """Load a checkpoint; with `cfg`, refuse one made for a different model."""
    if not Path(path).is_file():
        raise PipelineError(f"checkpoint {path} is missing; train that fold first (python -m pipeline train ...)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a truncated or foreign file: one clear line
        raise PipelineError(f"checkpoint {path} cannot be read ({error}); delete it and train again") from None
    if cfg is not None:
        theirs, ours = state["config"]["model"], to_dict(cfg)["model"]
        if theirs != ours or state["config"]["data"]["input_size"] != cfg.data.input_size:
            differing = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)) or ["data.input_size"]
            raise PipelineError(
                f"checkpoint {path} was trained with a different model config (differs in: {', '.join(map(str, differing))}); "
                "use the run's own config.yaml or train a new run"
            )
    return state


def load_model_state(model, state: dict, path: Path) -> None:
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise PipelineError(f"checkpoint {path} does not fit this model ({first}); use the run's own config.yaml") from None


def predict_with_checkpoints(model, paths: list[Path], cfg: Config, images: np.ndarray, depth: np.ndarray, device: torch.device):
    """The mean over checkpoints of `predict` (mask probabilities, empty-mask probabilities or None), each
    checkpoint loaded into `model` in turn and predicting from its own lifetime trace (TTA views: infer.tta)."""
    probs, empty = 0.0, 0.0
    for path in paths:
        load_model_state(model, load_checkpoint(path, cfg), path)
        with lifetime_preserved(model):
            one_probs, one_empty = predict(model, images, depth, cfg, device, views=cfg.infer.tta, batch_size=cfg.infer.batch_size)
        probs = probs + one_probs / len(paths)
        empty = None if one_empty is None else empty + one_empty / len(paths)
    return probs, empty
