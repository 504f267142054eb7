"""Model Zoo packages that napari-unet did not write, made here: a TorchScript network with
its own rdf.yaml, as another tool would package it (spec 0.5), for the import tests.

Each network is a fixed function of the normalised image (the package's own
``scale_range`` preprocessing), so what it finds is known: bright blobs are objects.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
import yaml


class Foreground(torch.nn.Module):
    """P(foreground): the normalised intensity, sharpened around 0.5."""

    def forward(self, x):
        return torch.sigmoid((x - 0.5) * 20)


class ForegroundBoundary(torch.nn.Module):
    """Foreground, and its boundary: the foreground less its 3x3 erosion."""

    def forward(self, x):
        fg = torch.sigmoid((x - 0.5) * 20)
        return torch.cat([fg, fg + F.max_pool2d(-fg, 3, stride=1, padding=1)], dim=1)


class Mask(torch.nn.Module):
    """A 0/1 mask as integers (a labels output)."""

    def forward(self, x):
        return (x > 0.5).to(torch.uint8)


class Raw(torch.nn.Module):
    """Neither probabilities nor labels: intensities times ten."""

    def forward(self, x):
        return x * 10


NETWORKS = {  # name: (network, output channel names, output data type)
    "foreground": (Foreground, ["foreground"], "float32"),
    "foreground+boundary": (ForegroundBoundary, ["foreground", "boundaries"], "float32"),
    "mask": (Mask, ["mask"], "uint8"),
    "raw": (Raw, ["signal"], "float32"),
}


def foreign_package(kind: str, folder: Path) -> Path:
    """A ``.zip`` Model Zoo package of the network ``kind`` (a key of NETWORKS)."""
    network, channels, dtype = NETWORKS[kind]
    x = torch.rand(1, 1, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.14 deprecates TorchScript
        traced = torch.jit.trace(network().eval(), x)
        weights = io.BytesIO()
        torch.jit.save(traced, weights)
    space = [{"id": a, "type": "space", "size": {"min": 16, "step": 16}} for a in ("y", "x")]
    rdf = {
        "format_version": "0.5.4", "type": "model", "name": f"other tool {kind}",
        "description": f"a {kind} network packaged by another tool", "authors": [{"name": "someone else"}],
        "cite": [{"text": "a paper", "doi": "10.1000/example"}], "license": "MIT", "documentation": "README.md",
        "covers": ["cover.png"],
        "inputs": [{
            "id": "raw", "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["intensity"]}, *space],
            "test_tensor": {"source": "in.npy"}, "data": {"type": "float32"},
            "preprocessing": [{"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 1.0,
                                                                "max_percentile": 99.8}}],
        }],
        "outputs": [{
            "id": "out", "axes": [{"type": "batch"}, {"type": "channel", "channel_names": channels},
                                  *[{"id": a, "type": "space", "size": {"tensor_id": "raw", "axis_id": a}}
                                    for a in ("y", "x")]],
            "test_tensor": {"source": "out.npy"}, "data": {"type": dtype},
        }],
        "weights": {"torchscript": {"source": "weights.pt", "pytorch_version": torch.__version__.split("+")[0]}},
    }
    path = Path(folder) / f"{kind.replace('+', '_')}.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("rdf.yaml", yaml.safe_dump(rdf))
        z.writestr("weights.pt", weights.getvalue())
        z.writestr("README.md", f"# {kind}\n")
        z.writestr("cover.png", _png())
        for name, array in (("in.npy", x.numpy()), ("out.npy", traced(x).numpy())):
            buf = io.BytesIO()
            np.save(buf, array)
            z.writestr(name, buf.getvalue())
    return path


def _png() -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", np.zeros((32, 64, 3), np.uint8), extension=".png")
