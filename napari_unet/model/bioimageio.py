"""BioImage Model Zoo packages in: napari-unet's own exports as full models, others to predict.

:func:`load_bioimageio` reads a package (a ``.zip``, or an ``rdf.yaml`` / ``bioimageio.yaml``
beside its files). A package that :func:`napari_unet.model.export.export_model` wrote
carries the network's config and card under ``config.napari_unet``: it comes back as a
:class:`~napari_unet.model.unet.UNet`, fine-tunable like any model file, and no code from
the package runs (napari-unet's own ``UNet`` takes the state dict, loaded with
``weights_only``). Any other package comes back as a :class:`ZooModel` that predicts
through ``bioimageio.core`` with the package's own pre- and post-processing; it cannot be
fine-tuned. Its weights are chosen ONNX first, then TorchScript, then pytorch_state_dict,
the last because it imports the package's architecture source. Needs the ``export`` extra.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_unet.model.card import ModelCard, check_card
from napari_unet.model.unet import UNet, UNetConfig

RUNNABLE = ("onnx", "torchscript", "pytorch_state_dict")  # in the order tried
NEEDS = {  # what each weight format napari-unet does not run would need
    "keras_hdf5": "TensorFlow/Keras",
    "keras_v3": "Keras 3",
    "tensorflow_saved_model_bundle": "TensorFlow",
    "tensorflow_js": "TensorFlow.js",
}
IMAGE_AXES = {"batch", "channel", "z", "y", "x"}  # axes napari-unet can fill from an image


# How napari-unet reads a foreign model's output (see output_kind):
OUTPUTS = {
    "labels": "labels (objects or classes, as integers)",
    "foreground": "a foreground probability",
    "foreground+boundary": "foreground and boundary probabilities",
    "instances": "background, interior and boundary probabilities",
    "classes": "one probability per class",
}
BOUNDARY_WORDS = ("bound", "contour", "edge", "border", "membrane")  # a boundary channel's name has one


@dataclass(frozen=True)
class ZooConfig:
    """The shape facts the widgets and ``segment`` read from any model (as from a UNetConfig)."""

    in_channels: int
    out_channels: int
    spatial_dims: int  # 2: planes (y, x); 3: volumes (z, y, x)


@dataclass(frozen=True)
class ZooModel:
    """A Model Zoo model run by ``bioimageio.core`` with its own processing; not fine-tunable.

    ``segment(image, zoo_model)`` and Segment's model picker take it: its output is read
    as :attr:`output_kind` says (:mod:`napari_unet.inference.zoo`).
    """

    name: str  # the package's name
    weight_format: str  # the weights it runs with (see RUNNABLE)
    input_axes: tuple[str, ...]  # the input tensor's axes, e.g. ("batch", "channel", "y", "x")
    output_axes: tuple[str, ...]  # the output tensor's axes
    classes: tuple[str, ...]  # output channel names ("" for an output without a channel axis)
    descr: Any = field(repr=False, compare=False)  # the bioimageio.spec model description
    output_kind: str = "classes"  # how its output reads: a key of OUTPUTS
    in_channels: int = 1  # image channels it takes
    source: str = ""  # the package it came from
    _pipelines: dict = field(default_factory=dict, repr=False, compare=False)  # per device, made once
    fine_tunable = False  # napari-unet cannot train it (its weights are not a napari-unet UNet)

    @property
    def config(self) -> ZooConfig:
        """Its channels in and out, and whether it takes planes or volumes."""
        spatial = sum(a in ("z", "y", "x") for a in self.input_axes)
        return ZooConfig(self.in_channels, len(self.classes), spatial)

    @property
    def card(self) -> ModelCard:
        """What napari-unet's widgets and CLI show and decide by: objects, or a class map."""
        objects = self.output_kind != "classes"
        return ModelCard(
            name=self.name,
            task="instances" if objects else "semantic",
            classes=("background", "interior", "boundary") if objects else self.classes,
            channels=tuple(f"channel {i}" for i in range(self.in_channels)),
            provenance={"model_zoo": self.source, "output": OUTPUTS[self.output_kind], "weights": self.weight_format},
        )

    def predict(self, image: np.ndarray, device: str = "cpu") -> np.ndarray:
        """The model's output for an image (*spatial) or (C, *spatial): its axes less batch (``output_axes``).

        The package's preprocessing (normalisation) and postprocessing run as it describes them.
        """
        from bioimageio.core import Tensor, predict

        spatial = [a for a in self.input_axes if a in ("z", "y", "x")]
        has_channel = "channel" in self.input_axes
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == len(spatial) and has_channel:
            image = image[None]
        if image.ndim != len(spatial) + has_channel:
            want = ("channel, " if has_channel else "") + ", ".join(spatial)
            raise ValueError(f"{self.name} takes ({want}) images, got shape {image.shape}")
        dims = ["batch"] + (["channel"] if has_channel else []) + spatial
        ipt, out = self.descr.inputs[0], self.descr.outputs[0]
        size = dict(zip(spatial, image.shape[has_channel:]))
        padded = _pad_to_valid(image, {str(a.id): a.size for a in ipt.axes if str(a.id) in size}, has_channel)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates torch.jit.load
            sample = predict(model=self._pipeline(device), inputs={ipt.id: Tensor.from_numpy(padded[None], dims=dims)})
        result = sample.members[out.id].data  # an xarray.DataArray, in the output's axis order
        result = result.isel(batch=0) if "batch" in result.dims else result
        crop = {d: slice(0, size[str(d)]) for d in result.dims if str(d) in size}  # undo the padding
        return np.asarray(result.isel(crop))


    def _pipeline(self, device: str):
        """bioimageio.core's prediction pipeline on ``device``: the weights load once per device."""
        if device not in self._pipelines:
            from bioimageio.core import create_prediction_pipeline

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates torch.jit.load
                self._pipelines[device] = create_prediction_pipeline(
                    self.descr, weight_format=self.weight_format, devices=[device])
        return self._pipelines[device]


def load_bioimageio(source: str | os.PathLike, device: str | torch.device = "cpu") -> UNet | ZooModel:
    """A Model Zoo package as a napari-unet model (our own exports) or a :class:`ZooModel`.

    Raises
    ------
    ValueError
        If the package is invalid, or needs what napari-unet cannot run (one line saying what).
    ImportError
        If bioimageio.spec is not installed (the ``export`` extra).
    """
    try:
        from bioimageio.spec import InvalidDescr, load_model_description
    except ImportError as exc:
        raise ImportError(
            f"Model Zoo packages need bioimageio.spec ({exc.name} is missing); "
            "install the export extra: pip install 'napari-unet[export]'"
        ) from exc
    try:
        descr = load_model_description(Path(source), perform_io_checks=False)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise ValueError(f"{source}: not a valid Model Zoo model package ({_first_line(exc)})") from exc
    if isinstance(descr, InvalidDescr):
        raise ValueError(f"{source}: not a valid Model Zoo model package")
    ours = (descr.config.model_extra or {}).get("napari_unet")
    if ours and descr.weights.pytorch_state_dict is not None:
        return _our_model(descr, ours, source).to(device).eval()
    return _zoo_model(descr, source)


def _our_model(descr, ours: dict, source) -> UNet:
    """Rebuild the exported UNet from its config, card and state dict (no package code runs)."""
    from bioimageio.spec.utils import get_reader

    try:
        config = UNetConfig(**ours["unet"])
        card = check_card(ours["card"], config.in_channels, config.out_channels)
        model = UNet.from_config(config)
        data = get_reader(descr.weights.pytorch_state_dict.source).read()
        model.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{source}: a napari-unet export, but damaged ({_first_line(exc)})") from exc
    model.card = card
    return model


def _zoo_model(descr, source) -> ZooModel:
    """Check that napari-unet can feed and run ``descr``; say what is missing if not."""
    present = [name for name in RUNNABLE + tuple(NEEDS) if getattr(descr.weights, name, None) is not None]
    runnable = [f for f in RUNNABLE if f in present and (f != "onnx" or _has("onnxruntime"))]
    if not runnable:
        missing = sorted({NEEDS.get(f, "onnxruntime" if f == "onnx" else f) for f in present})
        raise ValueError(
            f"{source}: {descr.name} has only {', '.join(present)} weights, which need {' and '.join(missing)}; "
            "napari-unet runs pytorch_state_dict, torchscript and onnx weights"
        )
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise ValueError(f"{source}: {descr.name} has {len(descr.inputs)} inputs and {len(descr.outputs)} "
                         "outputs; napari-unet runs models with one image in and one output")  # fmt: skip
    input_axes = tuple(str(a.id) for a in descr.inputs[0].axes)
    if not {"y", "x"} <= set(input_axes) or not set(input_axes) <= IMAGE_AXES:
        raise ValueError(f"{source}: {descr.name}'s input has axes {input_axes}; napari-unet feeds images "
                         "with y and x and optionally z, channel and batch")  # fmt: skip
    out = descr.outputs[0]
    channel = next((a for a in out.axes if str(a.id) == "channel"), None)
    classes = tuple(map(str, getattr(channel, "channel_names", None) or ("",)))
    in_channel = next((a for a in descr.inputs[0].axes if str(a.id) == "channel"), None)
    in_channels = len(getattr(in_channel, "channel_names", None) or ("",))
    return ZooModel(
        name=descr.name, weight_format=runnable[0], input_axes=input_axes,
        output_axes=tuple(str(a.id) for a in out.axes), classes=classes, descr=descr,
        output_kind=output_kind(classes, _data_type(out)), in_channels=in_channels, source=str(source),
    )  # fmt: skip


def output_kind(classes: tuple[str, ...], data_type: str) -> str:
    """How a model's output reads, from its channel names and data type (a key of OUTPUTS).

    Integers are labels; one channel is a foreground probability; two are foreground and
    boundary when one's name says boundary (contour, edge, ...), or background and
    foreground when the first is named background; three named background, ..., boundary
    are napari-unet's own; anything else is one probability per class.
    """
    if data_type.startswith(("int", "uint", "bool")):
        return "labels"
    names = [c.lower() for c in classes]
    boundary = [any(w in n for w in BOUNDARY_WORDS) for n in names]
    if len(names) == 1:
        return "foreground"
    if len(names) == 2 and any(boundary) and not all(boundary):
        return "foreground+boundary"
    if len(names) == 2 and "background" in names[0]:
        return "foreground"
    if len(names) == 3 and "background" in names[0] and boundary[2] and not boundary[1]:
        return "instances"
    return "classes"


def _data_type(tensor) -> str:
    data = tensor.data[0] if isinstance(tensor.data, (list, tuple)) else tensor.data
    return str(getattr(data, "type", "float32"))


def _pad_to_valid(image: np.ndarray, sizes: dict, has_channel: bool) -> np.ndarray:
    """Pad the spatial axes at their end to the next size the input allows (min + n * step).

    The package's own normalisation then sees the padded image: mirrored pixels, so its
    percentiles barely move.
    """
    pads = [(0, 0)] * has_channel
    for axis, n in zip(sizes, image.shape[has_channel:]):
        size = sizes[axis]
        if isinstance(size, int):
            if n != size:
                raise ValueError(f"this model takes exactly {size} pixels along {axis}, the image has {n}")
            want = n
        elif hasattr(size, "step"):  # ParameterizedSize
            want = size.min + max(0, -(-(n - size.min) // size.step)) * size.step if size.step else size.min
        else:
            want = n  # a size given by reference: any
        pads.append((0, want - n))
    if not any(after for _, after in pads):
        return image
    mode = "reflect" if all(after < n for (_, after), n in zip(pads, image.shape)) else "edge"
    return np.pad(image, pads, mode=mode)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _first_line(exc: Exception) -> str:
    """The message's first line; a heading (ending in ':') with the line that follows it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
