"""A model checkpoint file: the model's state (and, for `last.pt`, whatever resume needs) plus the config that
made it, written atomically; loading one made for another model config is refused with the keys that differ."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.config import Config, to_dict, weights_config
from pipeline.errors import PipelineError
from pipeline.fileio import torch_save


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
        theirs, ours = weights_config(state["config"]["model"]), weights_config(to_dict(cfg)["model"])
        if theirs != ours or state["config"]["data"]["input_size"] != cfg.data.input_size:
            differing = sorted(k.removeprefix("model.") for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)) or ["data.input_size"]
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
