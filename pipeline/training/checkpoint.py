"""Resume state beyond the model file (models/checkpoints.py): every process's random generators, so `last.pt`
continues a fold exactly (every rank's RNG included)."""

from __future__ import annotations

import random

import numpy as np
import torch


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
