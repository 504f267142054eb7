"""ONNX Runtime as an inference backend: a network's exported graph, run where PyTorch would be.

:func:`onnx_network` turns a :class:`~napari_unet.model.unet.UNet` into an :class:`OnnxUNet`
that ``predict``, ``segment`` and the CLI (``--backend onnx``) take in its place: same card,
same config, same answers (within 1e-4), faster on CPUs (benchmarks/bench_onnx.py). The graph
is exported once per set of weights and kept in the user's cache folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from napari_unet.model.export import EXTRA_HINT, export_onnx
from napari_unet.model.files import model_card
from napari_unet.model.unet import UNet, pad_to_multiples

BACKENDS = ("torch", "onnx")


class OnnxUNet(torch.nn.Module):
    """A U-Net's graph run by ONNX Runtime on the CPU, in place of the U-Net.

    Parameters
    ----------
    model
        The network whose exported graph this runs (its config and card are kept).
    graph
        The ``.onnx`` file exported from ``model`` (:func:`onnx_network` makes and caches it).
    threads
        Intra-op threads (None: torch's thread count, so both backends use the same cores).
    """

    def __init__(self, model: UNet, graph: str | os.PathLike, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.config = model.config
        self.card = model_card(model)
        self.multiple = model.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, as :meth:`UNet.forward` gives them (any spatial size: padded, then cropped)."""
        size = x.shape[2:]
        padded = pad_to_multiples(x.detach().float().cpu(), self.multiple).contiguous()
        out = self.session.run(None, {self.session.get_inputs()[0].name: padded.numpy()})[0]
        return torch.from_numpy(out[(..., *(slice(0, s) for s in size))]).to(x.device)


def onnx_network(model: UNet, cache: str | os.PathLike | None = None, threads: int | None = None) -> OnnxUNet:
    """``model`` as an :class:`OnnxUNet`, its graph exported once per set of weights.

    Raises
    ------
    ImportError
        When onnxruntime or the exporter's packages are missing, saying what to install.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"the ONNX backend needs onnxruntime ({exc.name} is missing); {EXTRA_HINT}") from exc
    folder = Path(cache) if cache is not None else _cache_folder()
    graph = folder / f"{_fingerprint(model)}.onnx"
    if not graph.exists():
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(model, graph)  # atomic: a stopped export leaves no half graph behind
    return OnnxUNet(model, graph, threads)


def _cache_folder() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("NAPARI_UNET_CACHE_DIR") or user_cache_dir("napari-unet")) / "onnx"


def _fingerprint(model: UNet) -> str:
    """A digest of the network's architecture and weights: the graph's name in the cache."""
    digest = hashlib.sha1(repr(sorted(model.config.to_dict().items())).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().float().numpy()).tobytes())
    return digest.hexdigest()[:16]
