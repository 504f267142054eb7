"""Zarr arrays and OME-Zarr images in, label images out, without loading them.

Images are read lazily: :func:`open_zarr` returns the array of level 0 (of an OME-Zarr
multiscale image) with its axes and pixel spacing taken from the OME-NGFF metadata
(``multiscales[0].axes`` and ``coordinateTransformations``, versions 0.4 and 0.5). Labels
are written as OME-NGFF 0.4, which is zarr format 2 (``.zattrs``/``.zarray`` files,
``/``-separated chunk keys): the format every OME-Zarr reader, napari's included, opens.
zarr 3 writes format 3 by default, so the format is always given here. Chunks are
written one block at a time by whoever holds the array (a process, a dask worker);
zarr writes each chunk to a temporary file first and renames it, so a killed writer
never leaves half a chunk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NGFF_VERSION = "0.4"  # the OME-NGFF version written (zarr format 2); 0.4 and 0.5 are read
_UNITS = {"z": "micrometer", "y": "micrometer", "x": "micrometer"}  # written only when the image named none


@dataclass(frozen=True, eq=False)  # eq=False: zarr arrays do not compare with ==
class ZarrImage:
    """A chunked image opened without reading its pixels."""

    array: object  # zarr.Array: level 0 of an OME-Zarr image, or the plain array
    axes: str  # one upper-case letter per axis of ``array`` (T, C, Z, Y, X), e.g. "ZYX" or "CYX"
    spacing: tuple[float, ...]  # the pixel size along each axis (1 where unknown; channels and time too)
    path: Path  # the image's folder (the OME-Zarr group, or the array itself)
    levels: tuple[str, ...] = ()  # the multiscale's dataset paths, finest first (empty: a plain array)
    units: tuple[str | None, ...] = ()  # each axis's unit from the metadata (None: not given)

    @property
    def ome(self) -> bool:
        """Whether the image is an OME-Zarr multiscale image (labels can go in its ``labels/``)."""
        return bool(self.levels)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of level 0."""
        return tuple(self.array.shape)

    def level(self, index: int):
        """The zarr array of multiscale level ``index`` (0: full resolution)."""
        import zarr

        return zarr.open_array(str(self.path / self.levels[index]), mode="r")


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zarr array or group (format 2 or 3) on disk."""
    p = Path(path)
    return p.is_dir() and any((p / name).exists() for name in (".zarray", ".zgroup", ".zattrs", "zarr.json"))


def open_zarr(path: str | os.PathLike, axes: str | None = None) -> ZarrImage:
    """Open a zarr array or OME-Zarr image lazily.

    Parameters
    ----------
    path
        A zarr array, or an OME-Zarr image group (its level 0 is used).
    axes
        Letters T, C, Z, Y, X naming the axes; ``None`` takes them from the OME metadata,
        or for a plain array: ``YX`` (2D), ``ZYX`` (3D).

    Raises
    ------
    ValueError
        If ``path`` is not zarr, or a group holds no image the metadata describes.
    """
    import zarr

    path = Path(path)
    if not is_zarr(path):
        raise ValueError(f"{path}: not a zarr array or OME-Zarr image (no .zarray, .zgroup or zarr.json inside)")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr's own errors name no file; say which one
        raise ValueError(f"{path}: cannot be opened as zarr ({type(exc).__name__}: {exc})") from exc
    if isinstance(node, zarr.Array):
        return ZarrImage(node, _axes(axes, node.ndim, path), (1.0,) * node.ndim, path)
    multiscales = _multiscales(dict(node.attrs))
    if not multiscales:
        names = sorted(node.array_keys()) if hasattr(node, "array_keys") else []
        hint = f" (it holds arrays {', '.join(names[:5])}: open one, e.g. {path / names[0]})" if names else ""
        raise ValueError(f"{path}: a zarr group without OME-Zarr multiscales metadata{hint}")
    ms = multiscales[0]
    levels = tuple(d["path"] for d in ms.get("datasets", []))
    if not levels:
        raise ValueError(f"{path}: the OME-Zarr metadata lists no datasets")
    array = zarr.open_array(str(path / levels[0]), mode="r")
    named = [a["name"] if isinstance(a, dict) else str(a) for a in ms.get("axes", [])]
    letters = "".join(_letter(n, a) for n, a in zip(named, ms.get("axes", []))) if named else None
    if letters is not None and len(letters) != array.ndim:
        raise ValueError(f"{path}: the metadata names {len(letters)} axes but level 0 has {array.ndim}")
    units = tuple(a.get("unit") if isinstance(a, dict) else None for a in ms.get("axes", [])) or (None,) * array.ndim
    scale = _scale(ms.get("datasets", [{}])[0].get("coordinateTransformations", []), array.ndim)
    overall = _scale(ms.get("coordinateTransformations", []), array.ndim)
    spacing = tuple(float(a * b) for a, b in zip(scale, overall))
    return ZarrImage(array, _axes(axes or letters, array.ndim, path), spacing, path, levels, units)


def _multiscales(attrs: dict) -> list:
    """The ``multiscales`` list of OME-NGFF 0.4 (top level) or 0.5 (under ``ome``)."""
    return attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales") or []


def _letter(name: str, axis) -> str:
    kind = axis.get("type") if isinstance(axis, dict) else None
    letter = {"time": "T", "channel": "C"}.get(kind, name[:1].upper())
    return letter if letter in "TCZYX" else "C"  # a custom axis is treated like channels: never split


def _scale(transforms: list, ndim: int) -> tuple[float, ...]:
    for t in transforms or []:
        if t.get("type") == "scale" and len(t.get("scale", [])) == ndim:
            return tuple(float(s) for s in t["scale"])
    return (1.0,) * ndim


def _axes(axes: str | None, ndim: int, path: Path) -> str:
    if axes is None:
        if ndim in (2, 3):
            return "YX" if ndim == 2 else "ZYX"
        raise ValueError(f"{path}: a {ndim}D array with no axes metadata; give its axes (e.g. --axes CZYX)")
    order = axes.upper()
    if len(order) != ndim or len(set(order)) != ndim or not set(order) <= set("TCZYX") or not {"Y", "X"} <= set(order):
        raise ValueError(f"{path}: axes {axes!r} do not fit an array of {ndim} dimensions; use one of the letters "
                         "T C Z Y X per axis, each at most once, with Y and X (e.g. ZYX)")
    return order


def labels_shape(image: ZarrImage) -> tuple[int, ...]:
    """The label image's shape: the image's, with 1 along a channel axis (OME-NGFF labels
    have the image's dimensions).
    """
    return tuple(1 if a == "C" else n for a, n in zip(image.axes, image.shape))


def create_labels(dst: str | os.PathLike, image: ZarrImage, chunks: tuple[int, ...], *, ome: bool = True,
                  dtype: str = "int32", name: str | None = None):
    """Create the label image for ``image`` at ``dst``, empty (zeros), and return its zarr array.

    ``dst`` inside an OME-Zarr image's ``labels/`` folder (``image.zarr/labels/nuclei``)
    makes an OME-NGFF label image there (``image-label`` metadata, listed in
    ``labels/.zattrs``) that opens with the image; any other path a new OME-Zarr image
    holding the labels (``ome=False``: a plain zarr array). ``chunks`` are the spatial
    chunk edges (one per axis, channels 1), blocks of them are written independently.
    """
    import zarr

    dst = Path(dst)
    inside = image.ome and dst.parent.name == "labels" and dst.parent.parent.resolve() == image.path.resolve()
    if inside and (image.path / "zarr.json").exists():
        raise ValueError(f"{image.path} is OME-Zarr 0.5 (zarr format 3); napari-unet writes 0.4 labels, which "
                         f"cannot go inside it: write them to a new OME-Zarr (e.g. {image.path.stem}_labels.zarr)")
    shape = labels_shape(image)
    chunks = tuple(1 if a == "C" else min(c, n) for a, c, n in zip(image.axes, chunks, shape))
    array_kwargs = {"shape": shape, "chunks": chunks, "dtype": dtype, "fill_value": 0, "overwrite": True,
                    "chunk_key_encoding": {"name": "v2", "separator": "/"}}
    if not ome:
        return zarr.create_array(str(dst), zarr_format=2, **array_kwargs)
    group = zarr.open_group(str(dst), mode="w", zarr_format=2)
    array = group.create_array("0", **array_kwargs)
    meta = {"multiscales": [_multiscale(image, name or dst.name)]}
    if inside:
        meta["image-label"] = {"version": NGFF_VERSION, "source": {"image": "../../"}}
        listing = zarr.open_group(str(dst.parent), mode="a", zarr_format=2)
        known = list(listing.attrs.get("labels", []))
        listing.attrs["labels"] = [*known, dst.name] if dst.name not in known else known
    group.attrs.update(meta)
    return array


def _multiscale(image: ZarrImage, name: str) -> dict:
    """One-level OME-NGFF 0.4 multiscales metadata for labels of ``image``."""
    kinds = {"T": "time", "C": "channel"}
    axes = []
    for i, a in enumerate(image.axes):
        entry = {"name": a.lower(), "type": kinds.get(a, "space")}
        unit = image.units[i] if i < len(image.units) else None
        unit = unit or (_UNITS.get(a.lower()) if image.ome else None)
        if unit:
            entry["unit"] = unit
        axes.append(entry)
    return {
        "version": NGFF_VERSION,
        "name": name,
        "axes": axes,
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(image.spacing)}]}],
    }


def open_labels(path: str | os.PathLike, mode: str = "r+"):
    """The label array written by :func:`create_labels` at ``path`` (its level 0 for OME-Zarr)."""
    import zarr

    path = Path(path)
    node = zarr.open(str(path), mode=mode)
    if isinstance(node, zarr.Array):
        return node
    return zarr.open_array(str(path / "0"), mode=mode)


def read_zarr(path: str | os.PathLike) -> np.ndarray:
    """The whole level 0 of a zarr/OME-Zarr image in memory (small images only)."""
    return np.asarray(open_zarr(path).array[...])
