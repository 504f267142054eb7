"""ONNX Runtime as an inference backend: a network's exported graph, run where PyTorch would be.

:func:`onnx_network` turns a :class:`~napari_unet.model.unet.UNet` into an :class:`OnnxUNet`
that ``predict``, ``segment`` and the CLI (``--backend onnx``) take in its place: same card,
same config, same answers (within 1e-4), faster on CPUs (benchmarks/bench_onnx.py). The graph
is exported once per set of weights and kept in the user's cache folder.

Small inputs gain most: the click network's 48² windows run ~2x faster (less cost per
operation), which is what clicks through a volume's planes spend most of their time on.
:func:`cached_network` gives the graph where one is already cached, and never exports;
:func:`export_in_background` exports one in another process, so that a viewer keeps
answering meanwhile (tracing is Python: in a thread it would hold the interpreter for
seconds). ``NAPARI_UNET_ONNX=0`` in the environment turns both off: clicks then run in
PyTorch only (the test suite does so, so that no answer depends on whether an export has
finished).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from napari_unet.model.export import EXTRA_HINT, export_onnx
from napari_unet.model.files import model_card
from napari_unet.model.memo import PerWeights
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
    graph = folder / f"{_fingerprint_of(model)}.onnx"
    if not graph.exists():
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(model, graph)  # atomic: a stopped export leaves no half graph behind
    return OnnxUNet(model, graph, threads)


def cached_network(model: UNet, threads: int | None = None) -> OnnxUNet | None:
    """``model`` run by ONNX Runtime where its graph is in the user's cache folder already;
    None where it is not, or onnxruntime is not installed. Never exports: see
    :func:`export_in_background`. Checking costs microseconds while the weights stay as
    they are; a graph's session is made once (per thread count) and kept. A graph that
    ONNX Runtime cannot load counts as none.
    """
    if not _wanted() or not _installed("onnxruntime"):
        return None
    graph = _cache_folder() / f"{_fingerprint_of(model)}.onnx"
    key = (graph, threads or torch.get_num_threads())
    if key not in _SESSIONS and graph.exists():
        if len(_SESSIONS) >= 8:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        try:
            _SESSIONS[key] = OnnxUNet(model, graph, key[1])
        except Exception:  # a damaged graph (the disk, another program): PyTorch answers, as without one
            _SESSIONS[key] = None
    return _SESSIONS.get(key)


def graph_or(model: UNet, device, otherwise: UNet | None = None) -> OnnxUNet | UNet:
    """What runs ``model`` on ``device``: its cached graph on a CPU where one is cached
    (:func:`cached_network`), else ``otherwise`` (default: ``model`` itself).
    """
    net = cached_network(model) if torch.device(device).type == "cpu" else None
    return net if net is not None else (model if otherwise is None else otherwise)


def export_in_background(model: UNet) -> subprocess.Popen | None:
    """Start exporting ``model``'s graph into the user's cache folder in another process, at
    low priority; :func:`cached_network` finds it once written (~7 s of one core for the
    click network). None, starting nothing, where the graph is cached, this process has
    started its export before (under way, or failed: not tried again), or the export extra
    is not installed (the network then runs in PyTorch).
    """
    if not _wanted() or not all(_installed(name) for name in ("onnxruntime", "onnxscript")):
        return None
    folder = _cache_folder()
    fingerprint = _fingerprint_of(model)
    graph = folder / f"{fingerprint}.onnx"
    if graph.exists() or graph in _EXPORTS:
        return None
    from napari_unet.model.files import save_model

    _EXPORTS[graph] = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        weights = save_model(model, folder / f"{fingerprint}.export.safetensors")  # the other process's input
        _EXPORTS[graph] = subprocess.Popen(
            [sys.executable, "-m", __name__, str(weights), str(graph)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:  # a cache folder that cannot be written, no interpreter to start: PyTorch it stays
        return None
    return _EXPORTS[graph]


_SESSIONS: dict[tuple[Path, int], OnnxUNet | None] = {}  # (graph, threads) -> its session (None: unloadable)
_EXPORTS: dict[Path, subprocess.Popen | None] = {}  # graph -> the process exporting it (or that did, or failed to)


def _wanted() -> bool:
    return os.environ.get("NAPARI_UNET_ONNX", "1") != "0"


@functools.cache
def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _cache_folder() -> Path:
    return _cache_folder_for(os.environ.get("NAPARI_UNET_CACHE_DIR"))


@functools.cache
def _cache_folder_for(chosen: str | None) -> Path:  # platformdirs costs ~90 µs a call, a click makes several
    from platformdirs import user_cache_dir

    return Path(chosen or user_cache_dir("napari-unet")) / "onnx"


def _export_main(weights: str, graph: str) -> None:
    """The export process: the model file ``weights`` (removed after) as a graph at ``graph``."""
    from napari_unet.model.files import load_model

    if hasattr(os, "nice"):
        os.nice(10)  # the viewer that started it keeps the cores it needs
    torch.set_num_threads(1)
    try:
        export_onnx(load_model(weights), graph)  # atomic: a stopped export leaves no half graph behind
    finally:
        Path(weights).unlink(missing_ok=True)


def _fingerprint(model: UNet) -> str:
    """A digest of the network's architecture and weights: the graph's name in the cache."""
    digest = hashlib.sha1(repr(sorted(model.config.to_dict().items())).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().float().numpy()).tobytes())
    return digest.hexdigest()[:16]


_fingerprint_of = PerWeights(_fingerprint)  # hashing the click network's weights costs ~10 ms: once per set

if __name__ == "__main__":
    _export_main(*sys.argv[1:3])
