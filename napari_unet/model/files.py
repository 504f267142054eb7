"""Model files: weights, architecture and model card in one safetensors file.

Loading never unpickles: safetensors holds only tensors plus a JSON string header.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, get_args

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from napari_unet.io import atomic_path
from napari_unet.model.card import ModelCard, check_card
from napari_unet.model.unet import ADDED_FIELDS, Norm, UNet, UNetConfig, Upsample

if TYPE_CHECKING:
    from napari_unet.model.bioimageio import ZooModel

FORMAT = "napari-unet/1"
MODELS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = MODELS_DIR / "nuclei.safetensors"  # the segmentation model napari-unet ships
CLICK_MODEL = MODELS_DIR / "nuclei_click.safetensors"  # ... and its click network
VOLUME_MODEL = MODELS_DIR / "nuclei3d.safetensors"  # ... and its 3D nuclei network, for volumes (axes with a Z)

# What a model file's config may describe. Far wider than anything napari-unet trains (the
# article's network has 64 base channels and depth 4), and narrow enough that a mistyped or
# tampered header is refused by name. Memory is bounded separately: the weights' shapes must
# match the config and fit in the file, so loading never allocates more than the file holds.
CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "in_channels": (1, 64),  # image channels plus click channels
    "out_channels": (1, 256),  # classes
    "base_channels": (1, 512),  # doubles at each level: 512 * 2**8 is already absurd
    "depth": (1, 8),  # 2**8 = 256 px: inputs are padded to a multiple of this
    "spatial_dims": (2, 3),  # images or volumes; absent from 2D files (UNetConfig.to_dict leaves it out)
}
NORMS: tuple[str | None, ...] = (*get_args(get_args(Norm)[0]), None)
UPSAMPLES: tuple[str, ...] = get_args(Upsample)
MAX_HEADER_BYTES = 100_000_000  # safetensors refuses longer headers too
_DTYPE_BYTES = {  # bytes per element of each safetensors dtype
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_REDO = "the file was edited or damaged: save the model again (napari_unet.save_model) or copy it again"


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
    # refuse to write what load_model would refuse: an hour of training must not end unloadable
    try:
        check_card(json.loads(meta["card"]), *_check_config(model.config.to_dict()))
    except ValueError as exc:
        raise ModelFileError(f"{path}: cannot save this model: {exc}; give the model a card "
                             "(model.card = ModelCard(...)) that matches its network") from None
    data = st_save(state, metadata=meta)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def read_header(path: str | os.PathLike) -> dict:
    """The file's metadata (format, config, card), checked, without loading the weights.

    Everything :func:`load_model` relies on is checked here, before any tensor is built:
    the file is complete, the config is within :data:`CONFIG_BOUNDS`, the card's fields
    hold usable values and agree with the config, and the weights are exactly those of a
    :class:`UNet` of that config.

    Raises
    ------
    ModelFileError
        Naming the file, the field that is wrong and what to do.
    """
    path = Path(path)
    header, data_bytes = _safetensors_header(path)
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not a napari-unet model file (no '{FORMAT}' metadata); "
            "save models with napari_unet.save_model or `napari-unet train`"
        )
    _check_layout(path, header, data_bytes)  # first: a truncated file is reported as such
    raw_config, raw_card = _json_field(path, meta, "config"), _json_field(path, meta, "card")
    unknown = sorted(set(raw_config) - {f.name for f in fields(UNetConfig)}) if isinstance(raw_config, dict) else []
    if unknown:  # a newer architecture: building it without that field would be another network
        raise ModelFileError(f"{path}: field 'config.{unknown[0]}' is unknown to this version of "
                             "napari-unet; upgrade napari-unet to load this model")
    try:
        in_channels, out_channels = _check_config(raw_config)
        check_card(raw_card, in_channels, out_channels)
        _check_weights({name: entry["shape"] for name, entry in header.items()}, UNetConfig(**raw_config))
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}; {_REDO}") from None
    return {"format": FORMAT, "config": raw_config, "card": raw_card}


def state_mismatch(expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]) -> str | None:
    """How the tensor shapes ``found`` differ from those ``expected`` (first difference), or None."""
    for name, shape in expected.items():
        if name not in found:
            return f"tensor {name!r} is missing"
        if tuple(found[name]) != tuple(shape):
            return f"tensor {name!r} has shape {list(found[name])} where {list(shape)} is needed"
    extra = sorted(set(found) - set(expected))
    return f"tensor {extra[0]!r} does not belong to this network" if extra else None


# The 3D network's path holds ~100 bytes a voxel (its volume resampled along Z, the tiles' sums
# and probabilities in float32): 20 M voxels (e.g. 80x512x512) is ~2 GB. Larger volumes take the
# 2D model's route, which keeps ~8-16 bytes a voxel (1.5 GB for 200x1024x1024).
VOLUME_MODEL_VOXELS = 20_000_000


def shipped_model(axes: str | None = None, shape: tuple[int, ...] | None = None) -> Path:
    """The shipped segmentation model for images of ``axes`` (letters T Z C Y X) and ``shape``:
    the 3D nuclei network for volumes of one channel (a Z, no C) of at most
    :data:`VOLUME_MODEL_VOXELS` voxels each, the 2D nuclei model for the rest.
    """
    volume = isinstance(axes, str) and "Z" in axes.upper() and "C" not in axes.upper()
    if volume and shape is not None and len(shape) == len(axes):
        volume = math.prod(n for a, n in zip(axes.upper(), shape) if a in "ZYX") <= VOLUME_MODEL_VOXELS
    return VOLUME_MODEL if volume and VOLUME_MODEL.exists() else DEFAULT_MODEL


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> UNet | ZooModel:
    """Load a model file; with no path, the nuclei model shipped with the package.

    A BioImage Model Zoo package (``.zip``, ``rdf.yaml``) that napari-unet exported comes
    back as the same model (:mod:`napari_unet.model.bioimageio`); any other package whose
    output is probabilities or labels comes back as a
    :class:`~napari_unet.model.bioimageio.ZooModel`, which segments but is not
    fine-tunable (:func:`trainable` says so in words).

    Raises
    ------
    ModelFileError
        If the file is missing, corrupt or not a napari-unet model.
    """
    path = Path(path) if path is not None else DEFAULT_MODEL
    if path.suffix.lower() == ".zip" or path.name.lower() in ZOO_FILES:
        return _zoo_package(path, device)
    header = read_header(path)  # checks everything below relies on, before any tensor is built
    config = UNetConfig(**header["config"])
    card = check_card(header["card"], config.in_channels, config.out_channels)
    try:
        with torch.device("meta"):  # no random init of weights the file replaces at once
            model = UNet.from_config(config)
        model.load_state_dict(st_load(_read_bytes(path)), assign=True)
    except (TypeError, KeyError, RuntimeError, SafetensorError) as exc:
        raise ModelFileError(f"{path}: damaged model file ({exc})") from exc
    model.card = card
    return model.to(device).eval()


ZOO_FILES = ("rdf.yaml", "bioimageio.yaml")  # what describes an unpacked Model Zoo package


def _zoo_package(path: Path, device) -> UNet | ZooModel:
    """A Model Zoo package as a model; one that cannot run is one ModelFileError saying why."""
    from napari_unet.model.bioimageio import load_bioimageio  # needs the export extra

    if not path.exists():
        raise ModelFileError(f"{path}: no such file; check the path (a Model Zoo package is a .zip or an rdf.yaml)")
    try:
        return load_bioimageio(path, device)
    except (ValueError, ImportError, OSError) as exc:
        raise ModelFileError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from exc


def trainable(model, doing: str = "fine-tune") -> UNet:
    """``model`` if napari-unet can train it; a Model Zoo model from elsewhere is a ModelFileError."""
    if getattr(model, "fine_tunable", True):
        return model
    raise ModelFileError(
        f"{model.name} is a Model Zoo model that napari-unet did not write: it segments, but napari-unet "
        f"cannot {doing} it; {doing} the shipped model or one napari-unet trained instead"
    )


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


def _safetensors_header(path: Path) -> tuple[dict, int]:
    """A safetensors file's JSON header and how many bytes of tensor data follow it."""
    not_model = f"{path}: not a model file (corrupt, truncated or another format)"
    with _opened(path) as f:
        size = os.fstat(f.fileno()).st_size
        length = int.from_bytes(f.read(8), "little")
        if size < 8 or not 2 <= length <= min(size - 8, MAX_HEADER_BYTES):
            raise ModelFileError(not_model)
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested junk
        raise ModelFileError(not_model) from exc
    if not isinstance(header, dict):
        raise ModelFileError(not_model)
    return header, size - 8 - length


def _check_layout(path: Path, tensors: dict, data_bytes: int) -> None:
    """Every tensor entry is well-formed and the entries exactly tile the data the file holds."""
    spans = []
    for name, entry in tensors.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        shape, span = (entry.get("shape"), entry.get("data_offsets")) if dtype else (None, None)
        if not (dtype in _DTYPE_BYTES and _ints(shape) and _ints(span) and len(span) == 2
                and all(n >= 0 for n in (*shape, *span))):
            raise ModelFileError(f"{path}: tensor {name!r} has a malformed entry in the file's header; {_REDO}")
        if span[1] - span[0] != math.prod(shape) * _DTYPE_BYTES[dtype]:
            raise ModelFileError(f"{path}: tensor {name!r} has shape {shape} but {span[1] - span[0]} bytes "
                                 f"of data; {_REDO}")
        spans.append(span)
    end = 0
    for begin, stop in sorted(spans):
        if begin != end:
            raise ModelFileError(f"{path}: the tensors' data overlap or leave gaps; {_REDO}")
        end = stop
    if end > data_bytes:
        raise ModelFileError(f"{path}: truncated: the header lists {end} bytes of weights but only "
                             f"{data_bytes} follow it (an interrupted download or copy?); copy the file again")
    if end < data_bytes:
        raise ModelFileError(f"{path}: {data_bytes - end} unexpected bytes after the weights; {_REDO}")


def _json_field(path: Path, meta: dict, key: str) -> object:
    """The metadata entry ``key``, decoded from JSON."""
    if key not in meta:
        raise ModelFileError(f"{path}: field {key!r} is missing from the header; {_REDO}")
    try:
        return json.loads(meta[key])
    except (TypeError, ValueError, RecursionError):
        raise ModelFileError(f"{path}: field {key!r} is not valid JSON; {_REDO}") from None


def _check_config(raw: object) -> tuple[int, int]:
    """Check every field of a config is present, of its type and within bounds; its (inputs, outputs)."""
    if not isinstance(raw, dict):
        raise ValueError(f"field 'config' is {type(raw).__name__}, not a mapping of the network's fields")
    raw = {**ADDED_FIELDS, **raw}  # added since the first files: absent means 2D, 2x2 pooling (UNetConfig checks pools)
    missing = [f.name for f in fields(UNetConfig) if f.name not in raw]
    if missing:
        raise ValueError(f"field 'config.{missing[0]}' is missing")
    for key, (low, high) in CONFIG_BOUNDS.items():
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"field 'config.{key}' is {value!r}; it must be a whole number from {low} to {high}")
    for key, allowed in (("norm", NORMS), ("upsample", UPSAMPLES)):
        if raw[key] not in allowed:
            raise ValueError(f"field 'config.{key}' is {raw[key]!r}; it must be one of {', '.join(map(repr, allowed))}")
    return raw["in_channels"], raw["out_channels"]


def _check_weights(shapes: dict[str, list[int]], config: UNetConfig) -> None:
    """Check the weights are a UNet's of ``config``: built on the meta device, which allocates nothing."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in UNet.from_config(config).state_dict().items()}
    problem = state_mismatch(expected, shapes)
    if problem:
        raise ValueError(f"the weights do not match field 'config' ({_describe(config)}): {problem}")


def _describe(config: UNetConfig) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.to_dict().items())


def _ints(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _read_bytes(path: Path) -> bytes:
    with _opened(path) as f:
        return f.read()


@contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading; failing to open or read it is one :class:`ModelFileError`."""
    try:
        with path.open("rb") as f:
            yield f
    except FileNotFoundError:
        hint = " (the default model has not been built; run `napari-unet train`)" if path == DEFAULT_MODEL else ""
        raise ModelFileError(f"{path}: no such model file{hint}") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model file ({exc.strerror})") from exc
