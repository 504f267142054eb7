"""A block-wise run planned once, before any block: the settings every block shares.

Every block must see the image the same way, or objects change at block borders: one
intensity scale for the whole image (percentiles of a low-resolution sample, not of each
block), one zoom (measured once on a central window, as :func:`segment_iter` would), one
halo. The plan is written beside the labels (``.napari-unet/run.json``) with a marker per
finished block, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_unet import checks
from napari_unet.distributed.blocks import BlockGrid, chunk_edges, id_stride, receptive_field
from napari_unet.inference.instances import InstanceParams, model_params
from napari_unet.inference.segment import segment_iter
from napari_unet.io import atomic_path
from napari_unet.io.zarr import ZarrImage
from napari_unet.model.files import model_card
from napari_unet.model.unet import UNet
from napari_unet.progress import run

STATE = ".napari-unet"  # the folder beside the labels holding the plan and the finished blocks' markers
SAMPLE_PIXELS = 4_000_000  # pixels read (from the coarsest level that has them) to fix the intensity scale
MEASURE_EDGE = 512  # the central window on which the zoom and the largest object are measured
MEASURE_PLANES = 16  # ... and its planes, for a volume
ZOOM_STEP = 8  # the zoom is rounded to eighths, so blocks can start where the whole image's pixels do
BLOCK_2D = 2048  # default core edge of a plane: 0.9-1.4 GB per worker at its peak (docs/scale.md)
BLOCK_3D = 192  # ... and of a volume: 1.7 GB in-process at its peak (256³ cores: 2.1 GB)


@dataclass(frozen=True)
class BlockSettings:
    """What the user chooses for a block-wise run; everything else is measured."""

    block_size: int | tuple[int, ...] | None = None  # core edge per non-channel axis (None: 2048 in 2D, 192 in 3D)
    halo: int | None = None  # pixels read around each block (None: half the receptive field + largest object)
    zoom: float | None = None  # magnification the network sees (None: measured once, as segment does)
    params: InstanceParams | None = None  # post-processing (None: the model's own settings)
    spacing: tuple[float, float, float] | None = None  # voxel size Z, Y, X (None: from the OME metadata)
    tile_size: int = 512  # the network's tile inside a block
    overlap: float = 0.25  # tile overlap inside a block
    flat_contrast: float = 0.15  # blocks whose 1/8-resolution image varies less (0-1 scale) are skipped as empty
    device: str | None = None  # None/"auto": CUDA, MPS, then CPU on each worker
    ome: bool = True  # write OME-Zarr labels (False: a plain zarr array)


@dataclass(frozen=True)
class BlockRun:
    """Everything a block needs, fixed for the whole run (JSON in ``run.json``)."""

    src: str  # the image's path (OME-Zarr group or zarr array)
    src_array: str  # ... and of the array read (level 0)
    dst: str  # the labels' path (OME-Zarr group or zarr array)
    dst_array: str  # ... and of the array written
    axes: str  # the image's axes, e.g. "ZYX"; labels have the same (a channel axis of 1)
    shape: tuple[int, ...]  # the image's shape without channels
    edges: tuple[int, ...]  # block core edges, per non-channel axis
    halo: tuple[int, ...]  # halo per non-channel axis (0 along T: time points are separate)
    zoom: float  # the network's magnification
    low: tuple[float, ...]  # per channel: intensity mapped to 0 ...
    high: tuple[float, ...]  # ... and to 1
    params: dict  # InstanceParams as a dict
    task: str  # the model's task ("instances": watershed objects)
    spacing: tuple[float, float, float]  # Z, Y, X voxel size for 3D objects
    stride: int  # label ids per block (see id_stride)
    multiple: int  # the network's pooling multiple along Y and X (2**depth)
    tile_size: int
    overlap: float
    flat_contrast: float
    device: str | None
    model: str  # fingerprint of the weights: a rerun with another model starts over

    @property
    def grid(self) -> BlockGrid:
        """The run's blocks."""
        step = read_step(self.zoom, self.multiple)
        return BlockGrid(self.shape, self.edges, self.halo, tuple(step if a in "YX" else 1 for a in self.axes
                                                                  if a != "C"))

    @property
    def instance_params(self) -> InstanceParams:
        """The post-processing settings."""
        return InstanceParams(**self.params)

    @property
    def state(self) -> Path:
        """The folder of run.json and the block markers."""
        return Path(self.dst) / STATE

    def to_json(self) -> str:
        """The plan as JSON (see :meth:`from_json`)."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> BlockRun:
        """The plan written by :meth:`to_json`."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**data)

    def same_job(self, other: BlockRun) -> bool:
        """Whether ``other`` segments the same image the same way (measured figures aside)."""
        keep = ("src_array", "axes", "shape", "edges", "task", "tile_size", "overlap", "model", "params", "spacing")
        return all(getattr(self, k) == getattr(other, k) for k in keep)


def model_fingerprint(model: UNet) -> str:
    """A short hash of the weights: two runs with one model share it."""
    h = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def plan_run(image: ZarrImage, dst: Path, dst_array: Path, model: UNet, settings: BlockSettings,
             previous: BlockRun | None = None) -> BlockRun:
    """Measure what every block shares (intensity scale, zoom, halo) and fix the grid.

    With ``previous`` (the plan of an interrupted run into ``dst``) segmenting the same
    image the same way, its measured figures are kept and nothing is measured again.
    """
    card = model_card(model)
    if card.task != "instances":
        raise ValueError(f"block-wise runs segment instances; this model makes a {card.task} class map "
                         "(segment the image whole, or use an instance model)")
    params = settings.params or model_params(card)
    if not isinstance(params, InstanceParams):
        raise TypeError(f"params must be InstanceParams, got {type(params).__name__}")
    blocked = [a for a in image.axes if a != "C"]
    shape = tuple(n for a, n in zip(image.axes, image.shape) if a != "C")
    if settings.block_size is None and previous is not None and (previous.axes, previous.shape) == (image.axes, shape):
        edges = previous.edges  # a rerun that names no block size resumes with the run's own blocks
    else:
        edges = _edges(settings.block_size, blocked, shape)
    spacing = settings.spacing or tuple(image.spacing[image.axes.index(a)] if a in image.axes else 1.0 for a in "ZYX")
    plan = BlockRun(
        src=str(image.path), src_array=str(image.path / image.levels[0]) if image.levels else str(image.path),
        dst=str(dst), dst_array=str(dst_array), axes=image.axes, shape=shape, edges=edges, halo=(0,) * len(shape),
        zoom=1.0, low=(), high=(), params=asdict(params), task=card.task,
        spacing=tuple(float(s) for s in spacing), stride=id_stride(edges, params.min_size),
        multiple=2**model.config.depth, tile_size=settings.tile_size, overlap=settings.overlap,
        flat_contrast=settings.flat_contrast,
        device=settings.device, model=model_fingerprint(model),
    )
    if previous is not None and previous.same_job(plan):
        return with_measured(previous, plan)
    low, high = intensity_range(image, *card.normalization)
    if settings.zoom is not None and (settings.halo is not None or edges == shape):
        zoom, extent = settings.zoom, {}  # nothing left to measure: the zoom is given, the halo given or unused
    else:
        zoom, extent = _measure(image, model, params, spacing, low, high, settings)
    zoom = max(1, round(zoom * ZOOM_STEP)) / ZOOM_STEP
    reach = math.ceil(receptive_field(model) / 2 / zoom)
    halo = []
    for a in blocked:
        if a == "T":
            halo.append(0)
        elif settings.halo is not None:
            halo.append(checks.number(settings.halo, "halo (pixels)", 0, integer=True))
        else:  # the network's context plus the largest object, so every object of the core is seen whole
            halo.append(int(extent.get(a, 0) + (reach if a in "YX" else 0)))
    return replace(plan, halo=tuple(halo), zoom=float(zoom), low=low, high=high)


def read_step(zoom: float, multiple: int) -> int:
    """Blocks read from multiples of this many pixels (along Y and X).

    A U-Net with ``multiple`` = 2**depth gives the same output for an input shifted by
    a multiple of ``multiple`` pixels, not for any other shift (its pooling grid moves),
    so a block must start where the whole image's pooling grid does, at the network's
    zoom: ``zoom = p/q`` needs a start of ``q * multiple / gcd(p, multiple)`` pixels.
    """
    ratio = Fraction(zoom).limit_denominator(ZOOM_STEP)
    return ratio.denominator * multiple // math.gcd(ratio.numerator, multiple)


def labels_chunks(plan: BlockRun) -> tuple[int, ...]:
    """The label array's chunks (channel axis: 1): an exact tiling of each block's core."""
    chunks = iter(chunk_edges(plan.edges))
    return tuple(1 if a == "C" else next(chunks) for a in plan.axes)


def _edges(block_size, blocked: list[str], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Core edges per non-channel axis: 1 along T, the given size (or the default) elsewhere."""
    space = [a for a in blocked if a != "T"]
    if block_size is None:  # 2048² cores: halos add ~25 % to the pixels read, not 50-130 % as at 1024²
        block_size = BLOCK_2D if "Z" not in space else BLOCK_3D
    sizes = (block_size,) * len(space) if np.ndim(block_size) == 0 else tuple(block_size)
    if len(sizes) != len(space):
        raise ValueError(f"block_size gives {len(sizes)} edges for {len(space)} axes ({''.join(space)}); "
                         "give one number, or one per axis")
    sizes = iter(checks.number(s, "block_size (pixels)", 16, integer=True) for s in sizes)
    return tuple(1 if a == "T" else min(next(sizes), n) for a, n in zip(blocked, shape))


def intensity_range(image: ZarrImage, low: float = 1.0, high: float = 99.8) -> tuple[tuple[float, ...], ...]:
    """Per channel, the ``low`` and ``high`` percentiles of the whole image (what
    :func:`~napari_unet.inference.images.normalize` maps to 0 and 1), from a sample of
    about :data:`SAMPLE_PIXELS` pixels: the coarsest multiscale level that has them, or
    a regular subsample of level 0.
    """
    array, factor = image.array, 1
    for i in range(len(image.levels) - 1, 0, -1):
        level = image.level(i)
        if math.prod(n for a, n in zip(image.axes, level.shape) if a != "C") >= SAMPLE_PIXELS:
            array = level
            break
    pixels = math.prod(n for a, n in zip(image.axes, array.shape) if a != "C")
    factor = max(1, math.ceil((pixels / SAMPLE_PIXELS) ** (1 / sum(a in "ZYX" for a in image.axes))))
    index = tuple(slice(None) if a == "C" else slice(None, None, factor) for a in image.axes)
    sample = np.asarray(array[index])
    channels = np.moveaxis(sample, image.axes.index("C"), 0) if "C" in image.axes else sample[None]
    lows, highs = [], []
    for ch in channels:
        ch = ch.astype(np.float64 if ch.dtype == np.float64 else np.float32, copy=False).ravel()
        if not np.isfinite(ch).all():
            raise ValueError(f"{image.path}: the image contains NaN or infinite values; replace them first")
        lo, hi = np.percentile(ch, (low, high))
        if hi - lo < 1e-6:
            lo, hi = float(ch.min()), float(ch.max())
        lows.append(float(lo))
        highs.append(float(hi))
    return tuple(lows), tuple(highs)


def _measure(image, model, params, spacing, low, high, settings) -> tuple[float, dict[str, int]]:
    """The zoom the network sees the image at, and the largest object's extent per axis (pixels),
    from one :func:`segment_iter` pass over a central window of the image.
    """
    index, axes = [], ""
    for a, n in zip(image.axes, image.shape):
        if a == "T":
            index.append(n // 2)
            continue
        edge = {"C": n, "Z": MEASURE_PLANES}.get(a, MEASURE_EDGE)
        start = max(0, (n - edge) // 2)
        index.append(slice(start, start + edge))
        axes += a
    window = scaled(np.asarray(image.array[tuple(index)]), axes, low, high)
    zoom = settings.zoom if settings.zoom is not None else model_card(model).zoom
    found = run(segment_iter(window, model, axes=axes, spacing=spacing, params=params, zoom=zoom,
                             device=settings.device, tile_size=settings.tile_size, overlap=settings.overlap))
    spatial = [a for a in axes if a != "C"]
    extent = {}
    for box in ndi.find_objects(found.labels):
        if box is not None:
            for a, s in zip(spatial, box):
                extent[a] = max(extent.get(a, 0), s.stop - s.start)
    if not extent:  # nothing found in the window: a generous default
        extent = {a: 64 for a in spatial}
    return found.zoom, extent


def scaled(pixels: np.ndarray, axes: str, low: tuple[float, ...], high: tuple[float, ...]) -> np.ndarray:
    """``pixels`` (with ``axes``) mapped to the run's 0-1 intensity scale, float32, per channel."""
    x = pixels.astype(np.float32, copy=False)
    c = axes.index("C") if "C" in axes else None
    shape = [1] * x.ndim
    if c is not None:
        shape[c] = -1
    lo = np.asarray(low, np.float32).reshape(shape if c is not None else ())
    span = np.asarray(high, np.float32) - np.asarray(low, np.float32)
    scale = np.where(span > 1e-12, 1.0 / np.where(span > 1e-12, span, 1.0), 0.0).astype(np.float32)
    return (x - lo) * scale.reshape(shape if c is not None else ())


def save_plan(plan: BlockRun) -> None:
    """Write ``run.json`` atomically."""
    plan.state.mkdir(parents=True, exist_ok=True)
    with atomic_path(plan.state / "run.json") as tmp:
        tmp.write_text(plan.to_json())


def load_plan(dst: Path) -> BlockRun | None:
    """The plan of an earlier run into ``dst`` (None if there is none or it cannot be read)."""
    path = Path(dst) / STATE / "run.json"
    try:
        return BlockRun.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return None


def mark_done(plan: BlockRun, name: str, objects: int, empty: bool) -> None:
    """The marker of a finished block (written after its labels)."""
    folder = plan.state / "blocks"
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"{name}.json") as tmp:
        tmp.write_text(json.dumps({"objects": int(objects), "empty": bool(empty)}))


def done_blocks(plan: BlockRun) -> set[str]:
    """Names of the blocks whose labels are written."""
    folder = plan.state / "blocks"
    return {p.stem for p in folder.glob("block_*.json")} if folder.is_dir() else set()


def mark_stitched(plan: BlockRun, merged: int) -> None:
    """Record that the labels are complete: stitched, ``merged`` ids joined to others."""
    with atomic_path(plan.state / "stitched") as tmp:
        tmp.write_text(f"{int(merged)}\n")


def stitched(plan: BlockRun) -> int | None:
    """How many ids stitching merged away, or None if the labels are not stitched yet."""
    try:
        return int((plan.state / "stitched").read_text())
    except (OSError, ValueError):
        return None


def object_count(plan: BlockRun) -> int:
    """Objects in the finished labels: every block's, less the ids stitching merged away."""
    folder = plan.state / "blocks"
    counts = [json.loads(p.read_text())["objects"] for p in folder.glob("block_*.json")] if folder.is_dir() else []
    return int(sum(counts)) - (stitched(plan) or 0)


def with_measured(previous: BlockRun, new: BlockRun) -> BlockRun:
    """The new plan with the earlier run's measured figures (a resumed run sees the image as before)."""
    keep = ("zoom", "low", "high", "halo", "stride")
    return replace(new, **{k: getattr(previous, k) for k in keep})
