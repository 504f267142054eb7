"""Resume state of a training run: last weights, optimiser, RNG states and counters.

The best model goes to the checkpoint's model file (``save_model``, loadable by
``load_model``); this state file sits beside it as ``<name>.state.pt`` and is written
atomically at every evaluation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from napari_unet.io import atomic_path

STATE_SUFFIX = ".state.pt"


def state_path(checkpoint: str | os.PathLike) -> Path:
    """The resume-state file that belongs to a checkpoint (model file or state file)."""
    path = Path(checkpoint)
    if path.name.endswith(STATE_SUFFIX):
        return path
    return path.with_name(path.stem + STATE_SUFFIX)


def model_path(checkpoint: str | os.PathLike) -> Path:
    """The best-model file that belongs to a checkpoint (model file or state file)."""
    path = Path(checkpoint)
    if path.name.endswith(STATE_SUFFIX):
        return path.with_name(path.name.removesuffix(STATE_SUFFIX) + ".safetensors")
    return path


def save_state(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, rng: np.random.Generator, **info
) -> None:
    """Write the resume state atomically (temporary file + rename)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
        "info": info,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(
    checkpoint: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> dict:
    """Restore model, optimiser and RNG states in place; return the saved counters."""
    path = state_path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no resume state; resume from a checkpoint written by a training run "
            "that had a checkpoint path"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: the checkpoint is for a different network ({exc})") from None
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    return state["info"]
