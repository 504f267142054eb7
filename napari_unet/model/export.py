"""Models that travel: ONNX, TorchScript, or a BioImage Model Zoo package (spec 0.5).

``export_model(model, "nuclei.zip")`` writes a BMZ package that deepImageJ, ilastik,
QuPath or ``bioimageio.core`` run with their own pre- and post-processing; ``"onnx"`` and
``"torchscript"`` write the bare network. Every exported network takes a
(batch, channels, *spatial) float32 tensor, spatial (y, x) or, for 3D networks, (z, y, x),
whose sizes are multiples of the network's ``multiple`` (``2**depth`` per axis, 16 for the
shipped models): the U-Net's internal padding is not part of the exported graph, because
the exporters fix its "pad or not" branch at the example's size. Tile or pad images to such
sizes first (napari-unet's own tiles, 512², already are).

Export needs the ``export`` extra (``pip install 'napari-unet[export]'``): onnx, onnxscript
and onnxruntime for ONNX, bioimageio.core (with bioimageio.spec) for BMZ packages.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from napari_unet.io import atomic_path
from napari_unet.model.card import ModelCard
from napari_unet.model.files import model_card
from napari_unet.model.unet import UNet

Format = Literal["bioimageio", "onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("bioimageio", "onnx", "torchscript")
# Opset 18: the lowest that torch's (dynamo) ONNX exporter writes without converting, and
# one that every ONNX Runtime since 1.14 (2023) runs, as do deepImageJ's and QuPath's.
ONNX_OPSET = 18
SAMPLE_SIZE = 256  # edge of the generated test image in BMZ packages (cut to a multiple of 2**depth)
LICENSE = "CC-BY-4.0"  # the Model Zoo's usual licence for weights; change it in the rdf.yaml if needed
UNET_CITATION = (
    "Ronneberger, Fischer & Brox (2015). U-Net: Convolutional Networks for Biomedical Image Segmentation.",
    "10.1007/978-3-319-24574-4_28",
)
EXTRA_HINT = "install the export extra: pip install 'napari-unet[export]'"
_INSTANCES_NOTE = (
    "- Instances: napari-unet turns interior and boundary probabilities into labelled objects;\n"
    "  its settings for this model are in `config.napari_unet.card.postprocess`."
)


def export_model(
    model: UNet, path: str | os.PathLike, format: Format = "bioimageio", sample: np.ndarray | None = None
) -> Path:
    """Write ``model`` to ``path`` in another format; the file is written atomically.

    Parameters
    ----------
    model
        The network; its card (classes, normalisation, provenance) goes into BMZ packages.
        It is not changed (export works on a copy, on the CPU, in eval mode).
    path
        The file to write: ``.zip`` for ``"bioimageio"``, ``.onnx``, ``.pt`` for TorchScript.
    format
        ``"bioimageio"`` (a BioImage Model Zoo package), ``"onnx"`` or ``"torchscript"``.
    sample
        BMZ only: the image (Y, X) or (C, Y, X), or for a 3D network the volume (Z, Y, X)
        or (C, Z, Y, X), raw intensities, from which the package's test tensors and cover
        are made; default: a generated nuclei image (in 3D, stacked into a stand-in volume).

    Returns
    -------
    Path
        ``path``.
    """
    if format == "onnx":
        return export_onnx(model, path)
    if format == "torchscript":
        return export_torchscript(model, path)
    if format == "bioimageio":
        return export_bioimageio(model, path, sample=sample)
    raise ValueError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")


def export_onnx(model: UNet, path: str | os.PathLike, opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` as an ONNX graph with dynamic batch and spatial sizes.

    Input ``input`` and output ``output`` (logits) are (batch, C, y, x), or (batch, C, z,
    y, x) for a 3D network; the graph names each spatial size ``{m}*y_blocks`` (and so on)
    with ``m`` the network's multiple along that axis (``2**depth``): other sizes fail in
    the runtime, so tile or pad to multiples first.
    """
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it; say so before it does)
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({exc.name} is missing); {EXTRA_HINT}") from exc
    from napari_unet import _gl_guard

    _gl_guard.block_triton()  # torch.export imports torch._dynamo; see _gl_guard (napari may have drawn)
    from torch.export import Dim

    net = _frozen(model)
    # Derived dims (m * blocks) make the multiple part of the graph's declared shape; a
    # plain Dim exports too, but the graph then fails inside at sizes that aren't multiples.
    spatial = {2 + i: m * Dim(f"{a}_blocks", min=1) for i, (a, m) in enumerate(zip(_axes(net), _multiples(net)))}
    shapes = {"x": {0: Dim("batch", min=1), **spatial}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(
            net, (_example(net),), None, input_names=["input"], output_names=["output"],
            opset_version=opset, dynamic_shapes=shapes, dynamo=True, external_data=False, verbose=False,
        )  # fmt: skip
    with atomic_path(path) as tmp:
        program.save(str(tmp))
    return Path(path)


def export_torchscript(model: UNet, path: str | os.PathLike) -> Path:
    """Write ``model`` as TorchScript, traced (``torch.jit.script`` is deprecated in torch 2.14).

    Batch and spatial sizes stay free, but as in ONNX the spatial sizes must be multiples
    of the network's ``multiple``: tracing fixes the padding branch at the example's size.
    """
    net = _frozen(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about the shape check in forward: known, fixed there
        traced = torch.jit.trace(net, _example(net), check_trace=False)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates all of TorchScript; still read widely
        torch.jit.save(traced, str(tmp))
    return Path(path)


def export_bioimageio(model: UNet, path: str | os.PathLike, sample: np.ndarray | None = None) -> Path:
    """Write a BioImage Model Zoo package (spec 0.5, a zip) that ``bioimageio.core`` tests clean.

    It holds pytorch_state_dict weights with the architecture's source (``unet.py``, which
    needs only torch), TorchScript and ONNX weights converted from them, a test input (raw
    intensities) and output (class probabilities) made from ``sample``, a cover, a README,
    the card's classes as output channel names, its normalisation percentiles as
    ``scale_range`` preprocessing, softmax postprocessing, and the card and provenance under
    ``config.napari_unet`` (from which napari-unet can rebuild the full model).
    """
    card = model_card(model)
    if card.click_channels:
        raise ValueError(
            f"{card.name!r} is a click network ({card.click_channels} click channels) that Model Zoo tools "
            "cannot feed; export its segmentation model, or use format='onnx' or 'torchscript'"
        )
    try:
        from bioimageio.spec import save_bioimageio_package
    except ImportError as exc:
        raise ImportError(f"Model Zoo export needs bioimageio.spec ({exc.name} is missing); {EXTRA_HINT}") from exc
    net = _frozen(model)
    image = _test_image(sample, net)
    with torch.inference_mode():
        x = torch.from_numpy(scale_range(image, *card.normalization))[None]
        probs = torch.softmax(net(x), dim=1).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = _write_package_files(net, card, image[None], probs, folder)
        descr = _describe(net, card, files)
        zipped = save_bioimageio_package(descr, output_path=folder / "package.zip")
        with atomic_path(path) as out:
            shutil.copyfile(zipped, out)
    return Path(path)


def scale_range(image: np.ndarray, low: float, high: float, eps: float = 1e-6) -> np.ndarray:
    """The Model Zoo's ``scale_range`` per channel of a (C, *spatial) image: what a BMZ runner computes.

    ``(x - p_low) / (p_high - p_low + eps)`` with exact (linear) percentiles. It differs
    from :func:`napari_unet.inference.images.normalize` (eps, no subsampling, no special
    case for constant channels) on purpose: a package's test output must be what a runner
    reproduces from its test input.
    """
    x = np.asarray(image, dtype=np.float32)
    spatial = tuple(range(1, x.ndim))
    lo, hi = np.percentile(x, (low, high), axis=spatial, keepdims=True)
    return ((x - lo) / (hi - lo + eps)).astype(np.float32)


def _frozen(model: UNet) -> UNet:
    """A CPU copy in eval mode: export must not move the caller's model or change its mode."""
    net = copy.deepcopy(model).cpu().float().eval()
    net.card = model_card(model)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _axes(net: UNet) -> str:
    """The spatial axes' names: "yx", or "zyx" for a 3D network."""
    return "zyx"[-getattr(net.config, "spatial_dims", 2) :]


def _multiples(net: UNet) -> tuple[int, ...]:
    """Per spatial axis, the size that needs no internal padding (``net.multiple`` spelled out)."""
    m = net.multiple
    return (m,) * len(_axes(net)) if isinstance(m, int) else tuple(m)


def _example(net: UNet, batch: int = 2) -> torch.Tensor:
    """An example input for the exporters: 2 (the last axis 3) multiples per axis, so no size is 1."""
    *first, last = _multiples(net)
    return torch.rand(batch, net.config.in_channels, *(2 * m for m in first), 3 * last)


def _test_image(sample: np.ndarray | None, net: UNet) -> np.ndarray:
    """``sample`` (or a generated nuclei image) as float32 (C, *spatial), cut to multiples."""
    axes, multiples = _axes(net), _multiples(net)
    if sample is None:
        from napari_unet.synth.sample import nuclei_sample

        sample = nuclei_sample((SAMPLE_SIZE, SAMPLE_SIZE)).image
        if len(axes) == 3:  # a stand-in volume: the image, fading away from the middle plane
            z = np.arange(2 * multiples[0]) - multiples[0]
            sample = sample[None] * np.exp(-0.5 * (z / max(1, multiples[0] / 2)) ** 2)[:, None, None]
    image = np.asarray(sample, dtype=np.float32)
    image = image[None] if image.ndim == len(axes) else image
    c = net.config.in_channels
    if image.ndim != len(axes) + 1 or image.shape[0] != c:
        raise ValueError(f"the sample must be ({', '.join(axes)}) or ({c}, {', '.join(axes)}) for this model, "
                         f"got shape {np.shape(sample)}")  # fmt: skip
    sizes = [s - s % m for s, m in zip(image.shape[1:], multiples)]
    if not all(sizes):
        raise ValueError(f"the sample ({'x'.join(map(str, image.shape[1:]))}) must be at least "
                         f"{'x'.join(map(str, multiples))} pixels")  # fmt: skip
    return np.ascontiguousarray(image[(slice(None), *(slice(0, s) for s in sizes))])


def _write_package_files(net: UNet, card: ModelCard, x: np.ndarray, probs: np.ndarray, folder: Path) -> dict:
    """Weights in three formats, the architecture, test tensors, cover and README, in ``folder``."""
    files = {
        "state_dict": folder / "weights.pt",
        "architecture": folder / "unet.py",
        "torchscript": folder / "weights_torchscript.pt",
        "onnx": folder / "weights.onnx",
        "test_input": folder / "test_input.npy",
        "test_output": folder / "test_output.npy",
        "cover": folder / "cover.png",
        "readme": folder / "README.md",
    }
    torch.save(net.state_dict(), files["state_dict"])
    # unet.py imports only torch and the standard library: the package's copy runs anywhere
    files["architecture"].write_text(Path(inspect.getsourcefile(UNet)).read_text())
    export_torchscript(net, files["torchscript"])
    export_onnx(net, files["onnx"])
    np.save(files["test_input"], x)
    np.save(files["test_output"], probs.astype(np.float32))
    middle = (Ellipsis,) if x.ndim == 4 else (slice(None), x.shape[2] // 2)  # 3D: the middle plane
    _write_cover(scale_range(x[0], *card.normalization)[middle], probs[0][middle], files["cover"])
    files["readme"].write_text(_readme(net, card))
    return files


def _write_cover(image: np.ndarray, probs: np.ndarray, path: Path) -> None:
    """The input (first channel, grey) beside the class probabilities as colours: a 2:1 PNG."""
    import imageio.v3 as iio

    grey = np.clip(image[0], 0, 1)
    left = np.repeat(grey[..., None], 3, axis=-1)
    colours = np.array([[0, 0, 0], [0.2, 0.8, 0.3], [1.0, 0.3, 0.2], [0.3, 0.5, 1.0], [1.0, 0.9, 0.2]])
    right = np.einsum("cyx,ck->yxk", probs[1:6], colours[1 : len(probs)])  # class 0: background stays black
    cover = np.concatenate([left, np.clip(right, 0, 1)], axis=1)
    iio.imwrite(path, (cover * 255).astype(np.uint8))


def _readme(net: UNet, card: ModelCard) -> str:
    cfg, m = net.config, " x ".join(map(str, _multiples(net)))
    dims = len(_axes(net))
    low, high = card.normalization
    provenance = "\n".join(f"- {k}: {v}" for k, v in card.provenance.items()) or "- not recorded"
    return f"""# {card.name}

A {dims}D U-Net ({cfg.base_channels} base channels, depth {cfg.depth}, {cfg.norm or 'no'} normalisation,
{cfg.upsample} upsampling) trained with napari-unet for the task *{card.task}*.

- Input: {", ".join(card.channels)}; raw intensities, scaled per image and channel so that the
  percentile {low:g} becomes 0 and percentile {high:g} becomes 1 (`scale_range` preprocessing).
  Spatial sizes ({", ".join(_axes(net))}) must be multiples of {m}.
- Output: one probability per class and pixel (softmax): {", ".join(card.classes)}.
{_INSTANCES_NOTE if card.task == "instances" else ""}

## Weights

pytorch_state_dict (architecture: `unet.py`, class `UNet`), torchscript (traced) and onnx
(opset {ONNX_OPSET}), all converted from the same weights; their outputs agree within 1e-4.

## Provenance

{provenance}

## Validation

The test input is a synthetic fluorescence-nuclei image (or the sample given at export) and
the test output this network's probabilities for it; `bioimageio.core`'s model test
reproduces them with every weight format. Check the model on your own images before relying
on it: segmentation quality depends on staining, magnification and noise.
"""


def _describe(net: UNet, card: ModelCard, files: dict):
    """The package's description, written with bioimageio.spec's typed classes (spec 0.5)."""
    from bioimageio.spec.model import v0_5 as bmz

    cfg, dims = net.config, len(_axes(net))
    low, high = card.normalization
    axes = [bmz.AxisId(a) for a in _axes(net)]
    space = [bmz.SpaceInputAxis(id=a, size=bmz.ParameterizedSize(min=m, step=m)) for a, m in zip(axes, _multiples(net))]
    same = [bmz.SpaceOutputAxis(id=a, size=bmz.SizeReference(tensor_id=bmz.TensorId("input"), axis_id=a)) for a in axes]
    inputs = bmz.InputTensorDescr(
        id=bmz.TensorId("input"),
        description="raw image intensities",
        axes=[bmz.BatchAxis(), bmz.ChannelAxis(channel_names=list(card.channels)), *space],
        test_tensor=bmz.FileDescr(source=files["test_input"]),
        data=bmz.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[bmz.ScaleRangeDescr(kwargs=bmz.ScaleRangeKwargs(
            axes=axes, min_percentile=low, max_percentile=high))],
    )  # fmt: skip
    outputs = bmz.OutputTensorDescr(
        id=bmz.TensorId("output"),
        description="class probabilities (softmax over the channel axis)",
        axes=[bmz.BatchAxis(), bmz.ChannelAxis(channel_names=list(card.classes)), *same],
        test_tensor=bmz.FileDescr(source=files["test_output"]),
        data=bmz.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
        postprocessing=[bmz.SoftmaxDescr(kwargs=bmz.SoftmaxKwargs(axis=bmz.AxisId("channel")))],
    )
    torch_version = bmz.Version(torch.__version__.split("+")[0])
    comment = "converted from pytorch_state_dict by napari-unet; sizes must be multiples of " + " x ".join(
        map(str, _multiples(net))
    )
    weights = bmz.WeightsDescr(
        pytorch_state_dict=bmz.PytorchStateDictWeightsDescr(
            source=files["state_dict"],
            architecture=bmz.ArchitectureFromFileDescr(
                source=files["architecture"], callable=bmz.Identifier("UNet"), kwargs=cfg.to_dict()
            ),
            pytorch_version=torch_version,
        ),
        torchscript=bmz.TorchscriptWeightsDescr(
            source=files["torchscript"], parent="pytorch_state_dict", pytorch_version=torch_version, comment=comment
        ),
        onnx=bmz.OnnxWeightsDescr(
            source=files["onnx"], parent="pytorch_state_dict", opset_version=ONNX_OPSET, comment=comment
        ),
    )
    provenance = json.loads(json.dumps(card.provenance, default=str))  # YAML-safe plain data
    return bmz.ModelDescr(
        name=_bmz_name(card.name),
        description=f"{dims}D U-Net for {card.task} segmentation ({', '.join(card.classes)}), made with napari-unet",
        covers=[bmz.FileDescr(source=files["cover"])],
        authors=[bmz.Author(name=str(card.provenance.get("author", "napari-unet user")))],
        cite=[bmz.CiteEntry(text=UNET_CITATION[0], doi=bmz.Doi(UNET_CITATION[1]))],
        license=bmz.LicenseId(LICENSE),
        documentation=bmz.FileDescr(source=files["readme"]),
        tags=["napari-unet", "unet", f"{dims}d", "segmentation", card.task, "pytorch", "onnx"],
        inputs=[inputs],
        outputs=[outputs],
        weights=weights,
        config=bmz.Config(napari_unet={
            "format": "napari-unet/1",
            "unet": cfg.to_dict(),
            "card": replace(card, provenance=provenance).to_dict(),
        }),
    )  # fmt: skip


def _bmz_name(name: str) -> str:
    """The Model Zoo allows letters, digits, spaces and ``_-()`` in names (5 to 128 characters)."""
    cleaned = "".join(ch if ch.isalnum() or ch in " _-()" else " " for ch in name).strip()
    cleaned = " ".join(cleaned.split()) or "napari-unet model"
    return cleaned if len(cleaned) >= 5 else f"napari-unet {cleaned}"
