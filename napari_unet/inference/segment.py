"""One call from an image to instance labels, or to a class map with a semantic model."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch
from skimage.segmentation import clear_border

from napari_unet import checks
from napari_unet.inference.classes import class_probabilities
from napari_unet.inference.images import (
    check_axes,
    from_canonical,
    normalize_stack,
    spatial_shape,
    to_canonical,
    to_planes,
)
from napari_unet.inference.instances import InstanceParams, instances_3d, instances_from_probabilities, model_params
from napari_unet.inference.intensity import normalize_intensity, stack_range
from napari_unet.inference.orientations import near_isotropic, three_orientations_iter
from napari_unet.inference.predict import predict_iter, quantize
from napari_unet.inference.zoo import segment_zoo_iter
from napari_unet.inference.zoom import along_z, auto_zoom, resample_factors, spacing_zoom
from napari_unet.labels import median_diameter
from napari_unet.model.bioimageio import ZooModel
from napari_unet.model.card import MAX_ZOOM, MIN_ZOOM
from napari_unet.model.files import image_channels, load_model, model_card, shipped_model
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress, relay, restaged, run


@dataclass(frozen=True)
class Segmentation:
    """Labels plus the probabilities they came from (kept to re-threshold without the network)."""

    labels: np.ndarray  # int32, the image's spatial shape, 0 = background
    probabilities: np.ndarray  # float32 (n_classes, *spatial) at the pixels the network saw; uint8 0-255 for 3D objects
    zoom: float = 1.0  # the magnification the network saw the image at (Y and X of probabilities)
    axes: str | None = None  # with axes given: the order of the probabilities' axes ([T][Z]YX); labels keep the image's
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)  # the voxel size (Z, Y, X) objects were split with


def segment_iter(
    image,
    model: UNet | None = None,
    *,
    axes: str | None = None,
    spacing: tuple[float, float, float] | None = None,
    channel_axis: int | None = None,
    device: str | torch.device | None = None,
    params: InstanceParams | None = None,
    zoom: float | None = None,
    tta: bool = False,
    orientations: bool | None = None,
    **predict_kwargs,
) -> Generator[Progress, None, Segmentation]:
    """Predict, then post-process; yields :class:`Progress` and returns a :class:`Segmentation`.

    ``axes`` names the image's axes with the letters T, Z, C, Y, X (``"ZYX"``,
    ``"TYX"``, ``"TZYX"``, ``"CYX"`` ...): with a Z axis the objects are 3D, one id per
    object through its planes (:func:`~napari_unet.inference.instances.instances_3d`,
    split by physical distance with ``spacing``, the voxel size along Z, Y, X); with a
    T axis each time point is segmented on its own. ``axes=None`` keeps the layout
    rules of :func:`~napari_unet.inference.images.to_planes` (a stack's planes are
    segmented one by one) and takes ``channel_axis``. With a Z axis the probabilities are
    kept as uint8, 0-255 for 0-1 (a quarter of float32's memory: a 200x1024x1024 stack
    keeps 0.6 GB, not 2.3; :func:`~napari_unet.inference.predict.as_float` reads them as
    0-1), and each plane is scaled to the volume's intensities as the network takes it.

    ``params=None`` uses the post-processing settings tuned for the model (its card's
    ``postprocess``; see :func:`napari_unet.inference.instances.model_params`). ``zoom=None``
    resamples images of very small or large objects: when the objects found are under
    10 px or over 22 px across, the network runs again on the image magnified to make
    them ~13 px, or shrunk to make them ~18 px (:func:`auto_zoom`); for a stack the
    objects are measured on :data:`MEASURE_PLANES` planes only, so a whole time series
    costs little more than one pass at the chosen zoom. A model fine-tuned at a zoom
    (its card's ``zoom``) sees every image at that zoom. A number fixes the
    magnification (``1``: as it is). ``tta`` averages the network's output over each
    tile's 8 mirrored and rotated views (8 times the work; see
    :func:`napari_unet.inference.predict.predict_iter`); with automatic zoom the pass that
    only measures the objects goes without.

    Progress: a single image reports tiles (a large one's central window first as stage
    ``"window"``, a second pass as ``"zoom"``, or ``"tta"`` when only ``tta`` makes it); a
    stack reports planes, measured ones first (stage ``"measuring"``, then ``"planes"``), on
    one bar that never restarts. Keyword arguments (``tile_size``, ``overlap``,
    ``batch_size``) go to :func:`napari_unet.inference.predict.predict_iter`.

    A 3D instance model (``spatial_dims=3``) takes volumes only (axes with a Z, or a 3D
    array): each is resampled along Z to the spacing it learnt at (its card's plan),
    predicted in 3D tiles and split in 3D as above; ``orientations`` and automatic zoom do
    not apply (``zoom`` still magnifies Y and X). ``model=None`` with a Z axis and no C
    uses the shipped 3D nuclei network (``nuclei3d.safetensors``) for volumes of up to
    :data:`~napari_unet.model.files.VOLUME_MODEL_VOXELS` voxels, otherwise the 2D one.

    ``orientations`` (a 2D model on a volume, ``axes`` with a Z): also predict the
    volume's ZY and ZX planes and average the three orientations' probabilities before the
    3D watershed (:mod:`~napari_unet.inference.orientations`; three times the work).
    ``None``: when ``spacing`` is given and near-isotropic (Z within 1.5x the in-plane
    spacing, either way); ``False``: never; ``True``: whatever the spacing.
    """
    model = checks.model_or_none(model, foreign=True)
    if model is None:  # the shipped nuclei models: the 3D network for volumes (one channel), the 2D one for the rest
        model = load_model(shipped_model(axes, np.shape(image)))
    if isinstance(model, ZooModel):  # a Model Zoo model from elsewhere: its own processing
        if channel_axis is not None and axes is not None:
            raise ValueError("give axes (with a C for the channels) or channel_axis, not both")
        spacing = _spacing(spacing)
        labels, probs, order = yield from segment_zoo_iter(image, model, axes=axes, spacing=spacing,
                                                           channel_axis=channel_axis, device=device, params=params)
        return Segmentation(labels, probs, 1.0, order, tuple(spacing))
    card = model_card(model)
    if model.config.spatial_dims == 3 and card.task == "instances":
        return (yield from _volume_model(image, model, axes, spacing, channel_axis, device, params, zoom, tta,
                                         predict_kwargs))
    if card.task == "semantic":
        if channel_axis is not None:
            raise ValueError("this class-map model takes single-channel images; pass one channel")
        return (yield from _semantic(image, model, axes, spacing, device, zoom, tta, predict_kwargs))
    if params is not None and not isinstance(params, InstanceParams):
        raise TypeError(f"params must be InstanceParams (napari_unet.InstanceParams(...)), got {type(params).__name__}")
    params = params or model_params(card)
    if zoom is not None:
        zoom = checks.number(zoom, "zoom", MIN_ZOOM, MAX_ZOOM)
    known, spacing = spacing is not None, _spacing(spacing)  # unknown spacing: no side planes
    order, full, ranges = None, None, None
    if axes is not None:
        if channel_axis is not None:
            raise ValueError("give axes (with a C for the channels) or channel_axis, not both")
        given = check_axes(axes, np.ndim(image))
        image, order = to_canonical(np.asarray(image), given)
        channel_axis = -1 if "C" in order else None
        full = spatial_shape(image, image_channels(model), -1 if "C" in order else None, max_dims=4)
        if "Z" in order:  # a volume's planes share one intensity scale (per time point), applied plane by plane
            ranges = _volume_ranges(image, order, channel_axis, card.normalization)
        image = image.reshape(-1, *image.shape[len(full) - 2:]) if len(full) > 3 else image  # [T][Z] as planes
    shape = spatial_shape(image, image_channels(model), channel_axis)  # checks the image before any work
    if zoom is None and card.zoom is not None:  # fine-tuned at a zoom: it sees images there
        zoom = card.zoom
    kwargs = {"channel_axis": channel_axis, "device": device, "ranges": ranges, **predict_kwargs}
    if ranges is not None and card.task == "instances":  # 3D objects: thresholds only, a quarter of the memory
        kwargs["dtype"] = np.uint8
    auto = zoom is None and card.task == "instances"  # a first pass measures the objects
    labels = None
    if len(shape) == 2:
        probs, used, labels = yield from _single_plane(image, model, params, card.task, shape, zoom, auto, tta, kwargs)
    else:
        probs, used = yield from _stack(image, model, params, card.task, shape, zoom, auto, tta, kwargs)
        if (order is not None and "Z" in order and card.task == "instances" and model.config.spatial_dims == 2
                and (orientations or (orientations is None and known and near_isotropic(spacing)))):
            probs = yield from three_orientations_iter(probs, image, model, spacing, full[-3], ranges, device=device,
                                                       tta=tta, **predict_kwargs)
    if order is not None and "Z" in order and card.task == "instances":
        labels = labels_from(probs, params, card.task, full, order, spacing)
    elif labels is None:
        labels = yield from _instances(probs, params, card.task, shape)
    if order is not None:
        labels = from_canonical(labels.reshape(full), given)
        probs = probs.reshape(probs.shape[0], *full[:-2], *probs.shape[-2:])
    return Segmentation(labels, probs, used, order, spacing)


def _semantic(image, model, axes, spacing, device, zoom, tta, kwargs) -> Generator[Progress, None, Segmentation]:
    """A class map: the image normalised as the model's plan says, every voxel's class as
    the label value it had in training. A 2D model sees a volume plane by plane.
    """
    card = model_card(model)
    image = np.asarray(image)
    order = check_axes(axes, image.ndim) if axes is not None else {2: "YX", 3: "ZYX"}.get(image.ndim)
    if order is None or "C" in order or "T" in order:
        raise ValueError(f"a class-map model takes a 2D image (YX) or a volume (ZYX), got shape {image.shape}; "
                         "pass one channel and one time point, or say axes='ZYX'")
    volume, _ = to_canonical(image, order)
    target = card.plan.get("target_spacing")
    given = None if spacing is None else dict(zip(order, spacing if len(spacing) == len(order) else
                                                  spacing[-len(order):]))
    if zoom is None and given and target:  # the network sees the pixel size it learnt at ...
        zoom = spacing_zoom((given["Y"], given["X"]), target)
    used = 1.0 if zoom is None else checks.number(zoom, "zoom", MIN_ZOOM, MAX_ZOOM)
    x = normalize_intensity(volume, card.intensity)
    planes = x.shape[0] if x.ndim == 3 else None
    if planes is not None and given and target and len(target) == 3:  # ... and a 3D one its plane spacing
        x = along_z(x, max(1, round(planes * resample_factors((given["Z"],), target[:1])[0])))
    probs = yield from predict_iter(x, model, device=device, zoom=used, normalized=True, tta=tta, **kwargs)
    probs = class_probabilities(probs, card.plan.get("class_weights"))
    if planes is not None:
        probs = along_z(probs, planes)
    values = np.asarray(card.label_values if card.label_values is not None else range(probs.shape[0]), np.int32)
    labels = from_canonical(values[np.argmax(probs, axis=0)], order)
    return Segmentation(labels, probs, used, order, tuple(spacing) if spacing is not None else (1.0, 1.0, 1.0))


def _volume_model(image, model, axes, spacing, channel_axis, device, params, zoom, tta,
                  kwargs) -> Generator[Progress, None, Segmentation]:
    """3D objects from a 3D instance model: each volume resampled along Z to the spacing the
    model learnt at, predicted in 3D tiles, its probabilities brought back to the volume's
    planes, then split in 3D (:func:`~napari_unet.inference.instances.instances_3d`).

    The card's ``plan["target_spacing"]`` is the voxel size it learnt at, (Z, Y, X); with
    ``plan["spacing_unit"] == "pixel"`` in in-plane pixels (only the Z / in-plane ratio is
    matched; Y and X are seen at the image's pixels, or ``zoom``), otherwise in the unit of
    ``spacing`` (Y and X resampled too, as a class-map model's volume is).
    """
    card = model_card(model)
    image = np.asarray(image)
    if channel_axis is not None:
        raise ValueError("this 3D model takes single-channel volumes; pass one channel (no channel_axis)")
    given = check_axes(axes, image.ndim) if axes is not None else {3: "ZYX", 4: "TZYX"}.get(image.ndim)
    if given is None or "Z" not in given:
        raise ValueError(f"this is a 3D model: it segments volumes (axes with a Z, such as 'ZYX' or 'TZYX'), "
                         f"got an image of shape {image.shape}" + (f" with axes {axes!r}" if axes else "")
                         + "; pass a volume with axes='ZYX', or a 2D model (model=None: the shipped one)")
    if "C" in given:
        raise ValueError(f"this 3D model takes single-channel volumes, the axes {axes!r} hold channels (C); "
                         "pass one channel")
    if params is not None and not isinstance(params, InstanceParams):
        raise TypeError(f"params must be InstanceParams (napari_unet.InstanceParams(...)), got {type(params).__name__}")
    params = params or model_params(card)
    spacing = _spacing(spacing)
    volumes, order = to_canonical(image, given)
    full = volumes.shape
    volumes = volumes.reshape(-1, *full[-3:])
    planes = full[-3]
    z_factor, used = _model_resampling(card, spacing, zoom)
    seen = max(1, round(planes * z_factor))
    probs = None
    for t, volume in enumerate(volumes):
        x = along_z(normalize_stack(volume, None, *card.normalization)[None], seen)[0]
        job = predict_iter(x, model, device=device, zoom=used, keep_zoom=True, normalized=True, tta=tta, **kwargs)
        found = yield from relay(job, lambda step, t=t: Progress(t * step.total + step.done,
                                                                 len(volumes) * step.total, "predict"))
        found = along_z(found, planes)
        if probs is None:  # uint8, 0-255: what a volume's probabilities are kept as (a quarter of float32)
            probs = np.empty((found.shape[0], len(volumes), *found.shape[1:]), np.uint8)
        quantize(found, out=probs[:, t])
        del found, x
    probs = probs.reshape(probs.shape[0], *full[:-2], *probs.shape[-2:])
    yield Progress(0, 1, "instances")
    labels = labels_from(probs, params, card.task, full, order, spacing)
    yield Progress(1, 1, "instances")
    return Segmentation(from_canonical(labels, given), probs, used, order, spacing)


def _model_resampling(card, spacing: tuple[float, float, float], zoom) -> tuple[float, float]:
    """How a 3D model sees a volume of voxel size ``spacing``: the factor by which its planes are
    resampled and the zoom in Y and X (``zoom`` given, the card's, or from the spacing).
    """
    target = card.plan.get("target_spacing")
    if zoom is not None:
        zoom = checks.number(zoom, "zoom", MIN_ZOOM, MAX_ZOOM)
    zoom = card.zoom if zoom is None else zoom
    if not target or len(target) != 3:
        return 1.0, 1.0 if zoom is None else zoom
    if card.plan.get("spacing_unit") == "pixel":  # in-plane pixels: only the anisotropy is matched
        ratio = spacing[0] / float(np.mean(spacing[1:]))
        return resample_factors((ratio,), (target[0] / float(np.mean(target[1:])),))[0], 1.0 if zoom is None else zoom
    return resample_factors(spacing[:1], target[:1])[0], spacing_zoom(spacing, target) if zoom is None else zoom


MEASURE_PLANES = 3  # planes of a stack on which automatic zoom measures the objects ...
MEASURE_EDGE = 384  # ... in a central window of at most this many pixels a side (plenty of objects)


MEASURE_WINDOW = 512  # a 2D image over three times this a side measures its objects in its central window first ...
MEASURE_OBJECTS = 12  # ... when that holds at least this many whole objects (else the whole image, as a small one)


def _single_plane(image, model, params, task, shape, zoom, auto, tta, kwargs):
    """One 2D image: a first pass at the image's scale, a second one at the zoom it calls for.

    A large image's objects are first measured in its central window (:func:`_window_zoom`):
    when they call for a zoom, the image is predicted once, at it, instead of a whole pass at
    ×1 (and its objects) thrown away; when they do not, the whole image is predicted and
    measured at ×1 as a small one is.

    Returns the probabilities, the zoom, and the labels when the measuring pass was the last.
    """
    if auto and min(shape) > 3 * MEASURE_WINDOW:
        measured = yield from _window_zoom(image, model, params, task, shape, kwargs)
        if measured is not None and measured != 1.0:
            second = predict_iter(image, model, zoom=measured, keep_zoom=True, tta=tta, **kwargs)
            return (yield from restaged(second, "zoom")), measured, None
    used = 1.0 if zoom is None else zoom
    probs = yield from predict_iter(image, model, zoom=used, keep_zoom=True, tta=tta and not auto, **kwargs)
    if not auto:
        return probs, used, None
    labels = yield from _instances(probs, params, task, shape)
    used = auto_zoom(median_diameter(labels), shape[-2:])
    if used == 1.0 and not tta:
        return probs, used, labels
    probs = labels = None  # freed before the second pass allocates its own
    second = predict_iter(image, model, zoom=used, keep_zoom=True, tta=tta, **kwargs)
    probs = yield from restaged(second, "zoom" if used != 1.0 else "tta")
    return probs, used, None


def measure_zoom(image, model: UNet, *, channel_axis: int | None = None, device=None,
                 min_objects: int = 1) -> float | None:
    """The automatic zoom (:func:`auto_zoom`) a 2D image's objects call for, measured at ×1 in
    its central :data:`MEASURE_WINDOW`² window (all of a smaller image) on the objects wholly
    inside it, the window scaled as the whole image is; None when fewer than ``min_objects``
    are. The same image always gets the same zoom, wherever one first looks at it.
    """
    card = model_card(model)
    shape = spatial_shape(image, image_channels(model), channel_axis)
    kwargs = {"channel_axis": channel_axis, "device": device, "ranges": None}
    return run(_window_zoom(image, model, model_params(card), card.task, shape, kwargs, min_objects))


def _window_zoom(image, model, params, task, shape, kwargs,
                 min_objects: int = MEASURE_OBJECTS) -> Generator[Progress, None, float | None]:
    """The zoom a 2D image's objects call for, measured in its central :data:`MEASURE_WINDOW`²
    window (one tile) on the objects wholly inside it; None when fewer than ``min_objects`` are.
    """
    channels, axis = image_channels(model), kwargs["channel_axis"]
    planes, _ = to_planes(image, channels, axis)  # (1, C, Y, X): the whole image's intensity scale, ...
    scale = stack_range(planes[0], 0, *model_card(model).normalization)[None]  # ... not the window's
    window = _central_window(planes[0], 0, MEASURE_WINDOW)  # (a blank centre must not stretch its noise)
    window_shape = spatial_shape(window, channels, 0)
    job = predict_iter(window, model, zoom=1.0, keep_zoom=True, **{**kwargs, "channel_axis": 0, "ranges": scale,
                                                                   "dtype": np.float32})
    probs = yield from restaged(job, "window")
    labels = clear_border(instances_from_probabilities(probs, params, task, window_shape))  # cut ones read small
    if np.unique(labels).size - 1 < min_objects:
        return None
    return auto_zoom(median_diameter(labels), shape[-2:])


def _stack(image, model, params, task, shape, zoom, auto, tta, kwargs):
    """A stack of planes: the objects measured on a few planes, then every plane at the zoom."""
    planes = int(np.prod(shape[:-2]))
    arr = np.asarray(image)
    first = 0 if kwargs["channel_axis"] is None or kwargs["channel_axis"] % arr.ndim != 0 else 1
    flat = arr.reshape(*arr.shape[:first], planes, *arr.shape[first + len(shape) - 2:]) if len(shape) > 3 else arr
    measured = 0
    used = 1.0 if zoom is None else zoom
    if auto:
        sample = np.unique(np.linspace(0, planes - 1, min(planes, MEASURE_PLANES)).round().astype(int))
        measured = len(sample)
        sub = _central_window(np.take(flat, sample, axis=first), kwargs["channel_axis"], MEASURE_EDGE)
        sub_shape = (measured, *spatial_shape(sub, image_channels(model), kwargs["channel_axis"])[-2:])
        ranges = None if kwargs["ranges"] is None else kwargs["ranges"][sample]
        job = predict_iter(sub, model, zoom=1.0, keep_zoom=True, **{**kwargs, "ranges": ranges, "dtype": np.float32})
        probs = yield from relay(job, _in_planes(0, measured, measured + planes, "measuring"))
        used = auto_zoom(median_diameter(instances_from_probabilities(probs, params, task, sub_shape)), shape[-2:])
        del probs
    job = predict_iter(flat, model, zoom=used, keep_zoom=True, tta=tta, **kwargs)
    probs = yield from relay(job, _in_planes(measured, planes, measured + planes, "planes"))
    return probs.reshape(probs.shape[0], *shape[:-2], *probs.shape[-2:]), used


def _central_window(planes: np.ndarray, channel_axis: int | None, edge: int) -> np.ndarray:
    """The central ``edge``² window of every plane (Y and X are the last two non-channel axes)."""
    y, x = [ax for ax in range(planes.ndim) if channel_axis is None or ax != channel_axis % planes.ndim][-2:]
    index = [slice(None)] * planes.ndim
    for ax in (y, x):
        start = max(0, (planes.shape[ax] - edge) // 2)
        index[ax] = slice(start, start + edge)
    return planes[tuple(index)]


def _in_planes(offset: int, planes: int, total: int, stage: str):
    """A tile-counting job's progress as planes done, ``offset`` planes in, of ``total``."""
    return lambda step: Progress(offset + (step.done * planes) // max(step.total, 1), total, stage)


def _volume_ranges(image: np.ndarray, order: str, channel_axis, percentiles) -> np.ndarray:
    """(planes, C, 2): each volume's intensity scale (:func:`stack_range`) for every one of
    its planes, in the order of a canonical ``[T]Z...`` image's planes.
    """
    frames = image if "T" in order else image[None]
    return np.concatenate([np.repeat(stack_range(frame, channel_axis, *percentiles)[None], len(frame), axis=0)
                           for frame in frames])


def _volumes(probs: np.ndarray, full: tuple[int, ...], params, spacing) -> np.ndarray:
    """3D objects in every volume of a ``[T]ZYX`` stack, ids unique across time points."""
    volume = tuple(full[-3:])
    frames = probs.reshape(probs.shape[0], -1, volume[0], *probs.shape[-2:])  # (C, T, Z, y, x) at the network's zoom
    labels = np.empty((frames.shape[1], *volume), np.int32)
    offset = 0
    for t in range(frames.shape[1]):  # each volume's objects made in place, then numbered after the last's
        found = instances_3d(frames[:, t], params, spacing, shape=volume, out=labels[t])
        n = int(found.max())
        if offset:
            for plane in found:
                plane[plane > 0] += offset
        offset += n
    return labels.reshape(full)


def _spacing(spacing) -> tuple[float, float, float]:
    """The voxel size along Z, Y, X (1, 1, 1 when not given), checked."""
    if spacing is None:
        return (1.0, 1.0, 1.0)
    if isinstance(spacing, (str, bytes)) or np.ndim(spacing) != 1 or len(spacing) != 3:
        raise ValueError(f"spacing must be the voxel size along Z, Y and X (3 numbers), got {spacing!r}")
    return tuple(checks.number(s, "spacing", 0, low_open=True) for s in spacing)


def labels_from(probabilities: np.ndarray, params: InstanceParams, task: str, shape: tuple[int, ...],
                axes: str | None = None, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Labels of ``shape`` from probabilities kept by :func:`segment_iter` (its
    :class:`Segmentation`), with new post-processing settings and no network pass.

    ``axes`` is the Segmentation's (``[T][Z]YX``): with a Z the objects are 3D
    (:func:`~napari_unet.inference.instances.instances_3d`), otherwise planes one by one.
    """
    if axes is not None and "Z" in axes and task == "instances":
        return _volumes(np.asarray(probabilities), tuple(shape), params, spacing)
    return instances_from_probabilities(probabilities, params, task, shape)


def _instances(probs, params, task, shape) -> Generator[Progress, None, np.ndarray]:
    yield Progress(0, 1, "instances")
    labels = instances_from_probabilities(probs, params, task, shape)
    yield Progress(1, 1, "instances")
    return labels


def segment(image, model: UNet | None = None, **kwargs) -> np.ndarray:
    """Segment ``image`` into int32 instance labels of its spatial shape.

    Takes the arguments of :func:`segment_iter`. ``model=None`` uses the nuclei model
    shipped with the package.

    Examples
    --------
    >>> labels = segment(image)                        # 2D grayscale, any dtype
    >>> labels = segment(rgb)                          # (Y, X, 3)
    >>> labels = segment(stack, channel_axis=1)        # (Z, C, Y, X)
    >>> labels = segment(tiny_nuclei, zoom=2)          # the network sees it magnified 2x
    >>> labels = segment(image, tta=True)              # 8 views averaged: slower, a little better
    """
    return run(segment_iter(image, model, **kwargs)).labels
