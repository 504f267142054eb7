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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_unet.model.card import check_card
from napari_unet.model.unet import UNet, UNetConfig

RUNNABLE = ("onnx", "torchscript", "pytorch_state_dict")  # in the order tried
NEEDS = {  # what each weight format napari-unet does not run would need
    "keras_hdf5": "TensorFlow/Keras",
    "keras_v3": "Keras 3",
    "tensorflow_saved_model_bundle": "TensorFlow",
    "tensorflow_js": "TensorFlow.js",
}
IMAGE_AXES = {"batch", "channel", "z", "y", "x"}  # axes napari-unet can fill from an image


@dataclass(frozen=True)
class ZooModel:
    """A Model Zoo model run by ``bioimageio.core`` with its own processing; not fine-tunable."""

    name: str  # the package's name
    weight_format: str  # the weights it runs with (see RUNNABLE)
    input_axes: tuple[str, ...]  # the input tensor's axes, e.g. ("batch", "channel", "y", "x")
    output_axes: tuple[str, ...]  # the output tensor's axes
    classes: tuple[str, ...]  # output channel names ("" for an output without a channel axis)
    descr: Any = field(repr=False, compare=False)  # the bioimageio.spec model description

    def predict(self, image: np.ndarray, device: str = "cpu") -> np.ndarray:
        """The model's output for an image (*spatial) or (C, *spatial): its axes less batch (``output_axes``).

        The package's preprocessing (normalisation) and postprocessing run as it describes them.
        """
        from bioimageio.core import Tensor, create_prediction_pipeline, predict

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
        pipeline = create_prediction_pipeline(self.descr, weight_format=self.weight_format, devices=[device])
        sample = predict(model=pipeline, inputs={ipt.id: Tensor.from_numpy(padded[None], dims=dims)})
        result = sample.members[out.id].data  # an xarray.DataArray, in the output's axis order
        result = result.isel(batch=0) if "batch" in result.dims else result
        crop = {d: slice(0, size[str(d)]) for d in result.dims if str(d) in size}  # undo the padding
        return np.asarray(result.isel(crop))


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
    classes = tuple(getattr(channel, "channel_names", None) or ("",))
    return ZooModel(
        name=descr.name, weight_format=runnable[0], input_axes=input_axes,
        output_axes=tuple(str(a.id) for a in out.axes), classes=tuple(map(str, classes)), descr=descr,
    )  # fmt: skip


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
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
