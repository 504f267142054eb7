"""Model files: weights, architecture and model card in one safetensors file.

Loading never unpickles: safetensors holds only tensors plus a JSON string header.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from napari_unet.io import atomic_path
from napari_unet.model.card import ModelCard
from napari_unet.model.unet import UNet, UNetConfig

FORMAT = "napari-unet/1"
MODELS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = MODELS_DIR / "nuclei.safetensors"  # the segmentation model napari-unet ships
CLICK_MODEL = MODELS_DIR / "nuclei_click.safetensors"  # ... and its click network


class ModelFileError(ValueError):
    """A model file is missing, corrupt, or not a napari-unet model."""


def save_model(model: UNet, path: str | os.PathLike, **provenance) -> Path:
    """Write ``model`` (weights, config and card) to ``path`` atomically.

    Keyword arguments are merged into the card's provenance. The file is written to
    a temporary name in the same folder and renamed, so a crash never leaves a
    half-written model where a good one was.
    """
    path = Path(path)
    card = model_card(model)
    if provenance:
        card = replace(card, provenance={**card.provenance, **provenance})
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "config": json.dumps(model.config.to_dict()),
        "card": json.dumps(card.to_dict(), default=str),
    }
    data = st_save(state, metadata=meta)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def read_header(path: str | os.PathLike) -> dict:
    """The file's metadata (format, config, card) without loading the weights."""
    path = Path(path)
    raw = _read_bytes(path)
    try:
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + header_len])
        meta = header.get("__metadata__") or {}
    except (ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise ModelFileError(f"{path}: not a model file (corrupt or another format)") from exc
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not a napari-unet model file (no '{FORMAT}' metadata); "
            "save models with napari_unet.save_model or `napari-unet train`"
        )
    return {
        "format": meta["format"],
        "config": json.loads(meta["config"]),
        "card": json.loads(meta["card"]),
    }


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> UNet:
    """Load a model file; with no path, the nuclei model shipped with the package.

    Raises
    ------
    ModelFileError
        If the file is missing, corrupt or not a napari-unet model.
    """
    path = Path(path) if path is not None else DEFAULT_MODEL
    header = read_header(path)
    try:
        config = UNetConfig(**header["config"])
        card = ModelCard.from_dict(header["card"])
        model = UNet.from_config(config)
        model.load_state_dict(st_load(_read_bytes(path)))
    except (TypeError, KeyError, RuntimeError, SafetensorError) as exc:
        raise ModelFileError(f"{path}: damaged model file ({exc})") from exc
    model.card = card
    return model.to(device).eval()


def model_card(model: UNet) -> ModelCard:
    """The card attached to ``model``, or one derived from its shape."""
    card = getattr(model, "card", None)
    if card is not None:
        return card
    cfg = model.config
    classes = ("background", "interior", "boundary") if cfg.out_channels == 3 else tuple(
        f"class {i}" for i in range(cfg.out_channels)
    )
    task = "instances" if cfg.out_channels == 3 else "semantic"
    channels = tuple(f"channel {i}" for i in range(cfg.in_channels))
    return ModelCard(task=task, classes=classes, channels=channels)


def image_channels(model: UNet) -> int:
    """Image channels ``model`` takes: its inputs less the click channels of a click network."""
    return model.config.in_channels - model_card(model).click_channels


def click_model_beside(path: str | os.PathLike) -> Path:
    """Where a click network saved with the segmentation model ``path`` goes: ``<name>_click.safetensors``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_click{path.suffix or '.safetensors'}")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        hint = " (the default model has not been built; run `napari-unet train`)" if path == DEFAULT_MODEL else ""
        raise ModelFileError(f"{path}: no such model file{hint}") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model file ({exc.strerror})") from exc
