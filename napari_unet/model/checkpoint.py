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
from napari_unet.model.files import ModelFileError, state_mismatch

STATE_SUFFIX = ".state.pt"
_STATE_KEYS = {"model", "optimizer", "torch_rng", "numpy_rng", "info"}  # what save_state writes


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
    """Restore model, optimiser and RNG states in place; return the saved counters.

    Raises
    ------
    ModelFileError
        If the state file is missing, damaged, not one :func:`save_state` wrote, or for
        another network or optimiser; the message names the file and what to do.
    """
    path = state_path(checkpoint)
    if not path.is_file():
        raise ModelFileError(
            f"{path}: no resume state; resume from a checkpoint written by a training run "
            "that had a checkpoint path"
        )
    unusable = (f"{path}: not a resume state written by napari-unet (damaged, truncated or another "
                "program's file); resume from the .state.pt beside a checkpoint, or train without --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    # torch.load fails in many ways (zip, pickle, EOF, OS errors); its messages advise
    # weights_only=False, which would run code from the file: never show them
    except Exception:
        raise ModelFileError(unusable) from None
    if not (isinstance(state, dict) and _STATE_KEYS <= set(state) and isinstance(state["model"], dict)
            and all(isinstance(v, torch.Tensor) for v in state["model"].values())
            and isinstance(state["info"], dict)):
        raise ModelFileError(unusable)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = state_mismatch(expected, {k: tuple(v.shape) for k, v in state["model"].items()})
    if problem:
        raise ModelFileError(f"{path}: the resume state is for a different network ({problem}); resume with "
                             "the settings (channels, base channels, depth) of the run that wrote it")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]  # torch's messages run to pages
        raise ModelFileError(f"{path}: the resume state does not fit this run ({first_line}); resume with "
                             "the settings of the run that wrote it, or train without --resume") from None
    return state["info"]
