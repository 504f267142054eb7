"""Click-to-segment: the mask of the object under a click, refined by more clicks.

A second, small U-Net (the *click network*, card task ``"click"``) takes the normalised
image crop plus three click channels — positive and negative clicks (each a Gaussian
spot) and the object's mask before the latest click, as in RITM, so that a correction
changes the mask near the click and little elsewhere — and predicts the clicked
object's mask (classes background / object). It runs
on a crop around the object, so a click costs the same on a 256² image and on a
16k² one. The first click is answered on a ``crop``-sized window centred on it; the
window grows (and is downscaled to ``crop``) while the mask touches its border, and
once the object is known later clicks use a window of ``context`` times its size.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from napari_unet.clicks.types import Click, ObjectMask, as_clicks
from napari_unet.devices import resolve_device
from napari_unet.inference.images import normalize, to_planes
from napari_unet.inference.predict import folded
from napari_unet.inference.segment import measure_zoom, segment_iter
from napari_unet.inference.zoom import unzoom
from napari_unet.model.files import CLICK_MODEL, image_channels, load_model, model_card
from napari_unet.model.onnx_runtime import graph_or
from napari_unet.model.unet import UNet
from napari_unet.progress import run
from napari_unet.windows import centre, corner_inside, crop, union_box

Point = tuple[float, float]  # (y, x) in pixels of the image


@dataclass(frozen=True)
class ClickConfig:
    """How clicks become network inputs and network outputs become a mask."""

    crop: int = 128  # network input edge in pixels; a multiple of 2**depth
    first_window: int = 64  # a first click is looked at in this window, unscaled, to find the object
    sigma: float = 3.0  # click spot: Gaussian sigma, in network pixels
    context: float = 1.6  # window edge / the object's bounding-box edge once the object is known
    min_window: int = 32  # object windows are at least this big: small objects are magnified
    max_zoom: int = 4  # windows grow to at most crop * max_zoom pixels (then downscaled)
    threshold: float = 0.5  # object probability above which a pixel belongs to the mask
    auto_window: int = 96  # a segmentation model answers a lone first click from this window
    split_depth: float = 4.0  # a negative click this deep (px) in the segmentation model's answer splits it


def encode_clicks(clicks: Sequence[Click], size: int, sigma: float) -> np.ndarray:
    """Click channels for a ``size``² network input: (2, size, size) float32 in [0, 1].

    Channel 0 holds the positive clicks, channel 1 the negative ones, each a Gaussian
    spot of ``sigma`` pixels; spots of one kind combine by their maximum. Clicks are in
    the input's pixel coordinates (may be fractional or outside; a spot is drawn only
    where it reaches the input).
    """
    grid = np.arange(size, dtype=np.float32)
    out = np.zeros((2, size, size), dtype=np.float32)
    for c in clicks:
        channel = out[0 if c.positive else 1]
        gy = np.exp(-((grid - c.y) ** 2) / (2 * sigma**2))
        gx = np.exp(-((grid - c.x) ** 2) / (2 * sigma**2))
        np.maximum(channel, np.outer(gy, gx), out=channel)
    return out


def farthest_point(mask: np.ndarray) -> tuple[int, int] | None:
    """The pixel of ``mask`` farthest from its border (the array's edge counts as border)."""
    if not mask.any():
        return None
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(y), int(x)


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path, mtime: float) -> UNet:
    return load_model(path)


def load_click_model(path: str | Path | None = None) -> UNet:
    """Load a click network (``None``: the shipped nuclei click model); cached per file."""
    path = Path(path) if path is not None else CLICK_MODEL
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _load_cached(path, mtime)


class ClickSegmenter:
    """Answers clicks on one 2D image: normalises it once, then runs the network per click.

    Parameters
    ----------
    image
        2D (Y, X) image, with a channel axis if the model takes several channels;
        any numeric dtype.
    model
        A click network (card task ``"click"``); ``None`` loads the shipped one.
    channel_axis
        The image's channel axis, if any (a last axis of 3/4 is taken as RGB).
    device
        ``None``/``"auto"`` picks CUDA, then MPS, then the CPU.
    config
        Crop size, click encoding and threshold; see :class:`ClickConfig`.
    levels
        Intensities mapped to 0 and 1, one (low, high) per channel: a volume's, shared by
        its planes (see :class:`napari_unet.clicks.volume.VolumeSegmenter`). ``None``: the
        model card's percentiles of this image.
    segmentation_model
        A segmentation model (task ``"instances"``, e.g. :func:`napari_unet.load_model`)
        that answers a lone first click: the object it finds under the click in a
        ``config.auto_window``-pixel window, when that object lies wholly inside the
        window; otherwise, and for every later click, the click network answers. Its
        objects have sharper outlines than the click network's first guess (NoC@85 on
        the held-out set: 3.06 with the click network alone, 2.6 with the nuclei model).
        ``None``: the click network answers every click.
    zoom
        The magnification the segmentation model sees this image at. ``None``: measured once
        (:meth:`measure`), before its first window, on the image's central window as
        :func:`~napari_unet.inference.segment.measure_zoom` does, and never under 1 (see
        :meth:`_measured_zoom`); every window then costs one pass (~35 ms a 96² window on one
        thread). A model fine-tuned at a zoom (its card's) sees the image there.
    """

    def __init__(self, image, model: UNet | None = None, *, channel_axis: int | None = None,
                 device=None, config: ClickConfig = ClickConfig(), segmentation_model: UNet | None = None,
                 levels: Sequence[tuple[float, float]] | None = None, zoom: float | None = None):
        model = load_click_model() if model is None else model
        card = model_card(model)
        if card.task != "click" or card.click_channels not in (2, 3) or model.config.out_channels != 2:
            raise ValueError(
                f"model {card.name!r} is a {card.task!r} model with {card.click_channels} click "
                "channel(s); click-to-segment needs a click model (task 'click', 2 click channels "
                "or 3 with the previous mask, 2 outputs), e.g. napari_unet.clicks.segmenter.load_click_model()"
            )
        self.uses_previous = card.click_channels == 3
        planes, spatial = to_planes(image, image_channels(model), channel_axis)
        if len(spatial) != 2:
            raise ValueError(f"click-to-segment works on one 2D plane; got spatial shape {spatial} "
                             "(pass the plane you click on, e.g. stack[z])")
        self.shape: tuple[int, int] = (int(spatial[0]), int(spatial[1]))
        self.image = normalize(planes[0], *card.normalization) if levels is None else Scaled(planes[0], levels)
        self.config = config
        self.device = resolve_device(device)
        placed = not model.training and all(p.device == self.device for p in model.parameters())
        self.model = model if placed else model.to(self.device).eval()  # a volume's planes share one model
        self.segmentation_model = None
        if segmentation_model is not None and config.auto_window > 0:
            seg_task = model_card(segmentation_model).task
            if seg_task == "instances" and image_channels(segmentation_model) == planes.shape[1]:
                self.segmentation_model = segmentation_model
                self._raw = planes[0]  # (C, Y, X) as given: segment() normalises each window
        self._windows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # corner -> see _window
        self.zoom = zoom  # the segmentation model's zoom for this image (None: not measured yet)

    def check(self, clicks: Sequence[Click]) -> None:
        """Raise ``ValueError`` for a click outside the image."""
        for c in clicks:
            if not (-0.5 <= c.y < self.shape[0] - 0.5 and -0.5 <= c.x < self.shape[1] - 0.5):
                raise ValueError(
                    f"{'positive' if c.positive else 'negative'} click (y={c.y:g}, x={c.x:g}) is outside the "
                    f"image of shape {self.shape}; click on a pixel of the image"
                )

    def predict(self, clicks: Sequence[Click], previous: ObjectMask | None = None, *,
                near: ObjectMask | None = None, crop: int | None = None) -> ObjectMask:
        """The clicked object's mask.

        Parameters
        ----------
        clicks
            Clicks on the object (positive) and on what is not the object (negative), in
            the image's pixels; at least one positive.
        previous
            The object's mask before the latest click; it places the crop window.
        near
            Without ``previous``: a mask of the object nearby (its next plane in a volume)
            that places the window as ``previous`` would; the network does not see it, so
            the answer follows this image alone.
        crop
            Network input edge for this answer (a multiple of 2**depth); ``None``: the
            config's. A smaller one is cheaper (a volume's carried planes use 48).
        """
        return answer_together([self.answer(clicks, previous, near=near, crop=crop)], self.model, self.device)[0]

    def answer(self, clicks: Sequence[Click], previous: ObjectMask | None = None, *,
               near: ObjectMask | None = None, crop: int | None = None) -> Answer:
        """:meth:`predict` as a coroutine that leaves the network passes to its caller: it yields
        each network input (a (1, C, size, size) tensor), takes the object's log-odds for it
        (1, 1, size, size) and returns the mask. :func:`answer_together` runs several in one
        batch (a volume's planes above and below a click).
        """
        self.check(clicks)
        pos = [(c.y, c.x) for c in clicks if c.positive]
        if not pos:
            raise ValueError("give at least one positive click (a point on the object)")
        lone = len(clicks) == 1
        cfg = self.config
        if previous is not None and len(clicks) == 2:
            previous = self._split(clicks, previous)
        placed = previous if previous is not None else near
        known = placed.bbox() if placed is not None else None
        if known is None and lone and self.segmentation_model is not None:
            found = self._segmented_object(pos[0])
            if found is not None:
                return found
        size = crop = cfg.crop if crop is None else crop
        if known is None:  # first click: a small unscaled window at the click finds the object
            middle = pos[0] if len(pos) == 1 else centre(union_box(points=pos))
            edge = size = cfg.first_window
        else:
            middle, edge = self._object_window(union_box([known], pos))
        for attempt in range(4):
            edge = int(round(edge))
            corner = (int(round(middle[0] - edge / 2)), int(round(middle[1] - edge / 2)))
            score = yield self._inputs(clicks, previous, corner, edge, size)
            mask, touches = self._mask(score, clicks, corner, edge)
            size = crop
            result = ObjectMask.clipped(mask, corner, self.shape)
            found = result.bbox()
            if found is None or attempt == 3:
                return result
            new_centre, fit = self._object_window(union_box([found], pos))
            if touches and edge < cfg.crop * cfg.max_zoom:  # the object goes on beyond the window
                middle, edge = new_centre, min(max(2.0 * edge, fit), cfg.crop * cfg.max_zoom)
            elif known is None and attempt == 0 and fit < 0.8 * edge:  # small: look again, magnified
                middle, edge = new_centre, fit
            else:
                return result
        return result  # not reached

    def prepare(self, point: Point) -> None:
        """Segment the window a lone first click at ``point`` would look at, ahead of the click
        (the viewer calls it while the cursor rests); the click's answer is the same either way.
        """
        if self.segmentation_model is not None:
            self._window_labels(self._auto_corner(point))

    def prepared(self, point: Point) -> bool:
        """Whether a lone first click at ``point`` is answered without a network pass."""
        return self.segmentation_model is None or self._auto_corner(point) in self._windows

    def first_answer(self, point: Point) -> ObjectMask | None:
        """The segmentation model's answer to a lone first click at ``point`` where its window is
        prepared (no network pass), as :meth:`predict` gives it; None where the click network
        would answer (no object under the point, or the window is not prepared).
        """
        if self.segmentation_model is None or self._auto_corner(point) not in self._windows:
            return None
        self.check([Click(*point)])
        return self._segmented_object(point)

    def _auto_corner(self, point: Point) -> tuple[int, int]:
        """Corner of the segmentation model's window for a click at ``point``: on a grid of
        quarter windows, so that the click is within an eighth of the edge of its centre and
        nearby clicks share one window (one pass, prepared once).
        """
        edge = self.config.auto_window
        step = max(1, edge // 4)
        snapped = [int(round((float(p) - edge / 2) / step)) * step + edge // 2 for p in point]
        return corner_inside(snapped, edge, self.shape)

    def _window_labels(self, corner: tuple[int, int]) -> np.ndarray:
        """The segmentation model's labels of the window at ``corner`` (kept for later clicks)."""
        return self._window(corner)[0]

    def _window(self, corner: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The segmentation model's labels of the window at ``corner`` and its interior
        probability there (float16, the window's pixels), kept for later clicks.
        """
        kept = self._windows.get(corner)
        if kept is None:
            edge = self.config.auto_window
            (y0, x0) = corner
            window = self._raw[:, y0 : y0 + edge, x0 : x0 + edge]
            self.measure()
            found = run(segment_iter(window, graph_or(self.segmentation_model, self.device), channel_axis=0,
                                     device=self.device, zoom=self.zoom))
            labels = found.labels
            interior = unzoom(np.asarray(found.probabilities[1:2], np.float32), labels.shape)[0]  # seen magnified
            if len(self._windows) >= 256:  # ~14 MB of 96² windows; the oldest go first
                self._windows.pop(next(iter(self._windows)))
            kept = self._windows[corner] = (labels, interior.astype(np.float16))
        return kept

    def measure(self) -> None:
        """Measure the segmentation model's zoom on this image (one pass over its central
        window) ahead of the first click; the viewer calls it when click mode starts.
        """
        if self.segmentation_model is not None and self.zoom is None:
            self.zoom = self._measured_zoom()

    def _measured_zoom(self) -> float:
        """The zoom of the segmentation model's windows on this image: its card's, or the
        image's automatic zoom where that magnifies (objects under 10 px across), else 1 (and
        1 for a Model Zoo model from another tool, which segments with its own processing).

        Measured on the image, not on the window of the first click: a 96² window holds a
        few objects, cut ones reading small, so the zoom, and every later first mask, hung on
        where the first click fell (on the real nuclei image 1 for 91 of its 125 nuclei,
        0.57-0.82 for the others). Never shrunk: a first mask is judged on its outline to a
        pixel (IoU 0.85), which an image seen shrunk draws in coarser steps. NoC@85 on the
        click network's selection images, zoom of the first window / of the image / never
        under 1: 1.83 / 1.81 / 1.78.
        """
        if not isinstance(self.segmentation_model, UNet):  # a Model Zoo model from elsewhere: its own scale
            return 1.0
        card_zoom = model_card(self.segmentation_model).zoom
        if card_zoom is not None:
            return float(card_zoom)
        measured = measure_zoom(self._raw, graph_or(self.segmentation_model, self.device), channel_axis=0,
                                device=self.device)
        return max(1.0, measured or 1.0)

    def _segmented_object(self, point: Point) -> ObjectMask | None:
        """The segmentation model's object under ``point`` in a window around it, or None
        when there is none or it reaches a side of the window inside the image.
        """
        corner = self._auto_corner(point)
        labels = self._window_labels(corner)
        (y0, x0), (h, w), edge = corner, self.shape, self.config.auto_window
        y, x = (int(round(v)) for v in point)
        label = labels[y - y0, x - x0]
        if label == 0:
            return None
        mask = labels == label
        reaches = [mask[0].any() and y0 > 0, mask[:, 0].any() and x0 > 0,
                   mask[-1].any() and y0 + edge < h, mask[:, -1].any() and x0 + edge < w]
        if any(reaches):  # the object may go on beyond the window
            return None
        return ObjectMask.clipped(mask, (y0, x0), self.shape)

    def _split(self, clicks: Sequence[Click], previous: ObjectMask) -> ObjectMask:
        """``previous`` as the click network should see it after a negative second click.

        The segmentation model's answer to a first click sometimes holds two touching
        nuclei (a seed threshold low enough for dim nuclei joins some neighbours). A
        negative click inside that answer then splits it where the model saw the border:
        a watershed of its interior probability from the two clicks; the network refines
        the positive click's part (it carved such a mask a little per click, 3-6 clicks).
        Only a click ``split_depth`` or more inside the answer splits it: a neighbour's
        middle lies 5-8 px inside, a rim drawn too wide 1-3 px, and splitting off a rim
        cost clicks. Any other ``previous`` (the click network's, or one edited since) is
        kept as it is.
        """
        first, last = clicks
        if self.segmentation_model is None or not first.positive or last.positive:
            return previous
        corner = self._auto_corner((first.y, first.x))
        found = self._segmented_object((first.y, first.x)) if corner in self._windows else None
        if found is None or not _same_mask(found, previous):
            return previous
        (y0, x0), (h, w) = previous.offset, previous.mask.shape
        at = [(int(round(c.y)) - y0, int(round(c.x)) - x0) for c in clicks]
        if at[0] == at[1] or not all(0 <= y < h and 0 <= x < w for y, x in at):
            return previous
        depth = ndi.distance_transform_edt(np.pad(previous.mask, 1))[1:-1, 1:-1]
        if not (depth[at[0]] > 0 and depth[at[1]] >= self.config.split_depth):
            return previous
        interior = crop(self._window(corner)[1], previous.offset, (h, w), origin=corner).astype(np.float32)
        markers = np.zeros((h, w), np.int32)
        for k, point in enumerate(at, start=1):
            markers[point] = k
        return ObjectMask(watershed(-interior, markers, mask=previous.mask) == 1, previous.offset, previous.shape)

    def _object_window(self, box) -> tuple[tuple[float, float], float]:
        """Centre and edge of the window for an object with bounding box ``box``."""
        cfg = self.config
        edge = cfg.context * max(box[2] - box[0], box[3] - box[1])
        return centre(box), float(np.clip(edge, cfg.min_window, cfg.crop * cfg.max_zoom))

    def _inputs(self, clicks, previous, corner, edge, size) -> torch.Tensor:
        """The network's input for the ``edge``² window at ``corner``, resampled to ``size``²."""
        y0, x0 = corner
        window = crop(self.image, (y0, x0), edge)
        scale = size / edge
        in_net = [Click((c.y - y0 + 0.5) * scale - 0.5, (c.x - x0 + 0.5) * scale - 0.5, c.positive) for c in clicks]
        spots = encode_clicks(in_net, size, self.config.sigma)
        if self.uses_previous:
            window = np.concatenate([window, _paste(previous, (y0, x0), edge)])
        x = torch.from_numpy(window)[None]
        if edge != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        if self.uses_previous:  # clicks go before the previous mask
            return torch.cat([x[:, :-1], torch.from_numpy(spots)[None], x[:, -1:]], dim=1)
        return torch.cat([x, torch.from_numpy(spots)[None]], dim=1)

    def _mask(self, score: torch.Tensor, clicks, corner, edge) -> tuple[np.ndarray, bool]:
        """The window's mask from the network's log-odds, and whether it touches the window's
        border inside the image (the object may go on beyond it).
        """
        (y0, x0), size = corner, score.shape[-1]
        if edge != size:
            score = F.interpolate(score, size=(edge, edge), mode="bilinear", align_corners=False,
                                  antialias=edge < size)
        cut = float(np.log(self.config.threshold / (1 - self.config.threshold)))
        mask = _keep_clicked(score[0, 0].cpu().numpy() > cut, [(c.y, c.x) for c in clicks if c.positive], y0, x0)
        inside = np.array([y0 > 0, x0 > 0, y0 + edge < self.shape[0], x0 + edge < self.shape[1]])
        edges = np.array([mask[0].any(), mask[:, 0].any(), mask[-1].any(), mask[:, -1].any()])
        return mask, bool(np.any(inside & edges))


Answer = Generator[torch.Tensor, torch.Tensor, ObjectMask]  # see ClickSegmenter.answer


def answer_together(answers: Sequence[Answer], model: UNet, device) -> list[ObjectMask]:
    """Run :meth:`ClickSegmenter.answer` coroutines to their masks, their network inputs of one
    size in one batch (two planes in one pass cost ~1.3 passes on one CPU thread, not 2),
    through the network's ONNX Runtime graph where one is cached on a CPU (~2x faster at 48²,
    :func:`napari_unet.model.onnx_runtime.cached_network`), else with its batch norms folded
    into its convolutions (~15 % less than as trained).
    """
    net = graph_or(model, device, folded(model))
    out: list[ObjectMask | None] = [None] * len(answers)
    waiting: dict[int, torch.Tensor] = {}
    for i, job in enumerate(answers):
        _step(job, None, i, waiting, out)
    while waiting:
        size = next(iter(waiting.values())).shape[-2:]
        batch = [i for i, x in waiting.items() if x.shape[-2:] == size]
        x = torch.cat([waiting.pop(i) for i in batch]).to(device)
        with torch.inference_mode():
            logits = net(x.contiguous(memory_format=torch.channels_last)).float()
            scores = logits[:, 1:2] - logits[:, 0:1]  # log-odds of "object"
        for j, i in enumerate(batch):
            _step(answers[i], scores[j : j + 1], i, waiting, out)
    return out


def _step(job: Answer, score, i: int, waiting: dict, out: list) -> None:
    """Advance one answer coroutine: its next network input goes to ``waiting``, its mask to ``out``."""
    try:
        waiting[i] = job.send(score)
    except StopIteration as done:
        out[i] = done.value


def segment_click(image, positive: Sequence[Point], negative: Sequence[Point] = (),
                  model: UNet | None = None, channel_axis: int | None = None,
                  device=None, segmentation_model: UNet | str | None = "shipped") -> np.ndarray:
    """Mask of the object marked by clicks on a 2D image.

    Parameters
    ----------
    image
        2D image (with a channel axis if the model takes several channels).
    positive
        (y, x) pixel coordinates on the object; at least one.
    negative
        (y, x) coordinates on what is not part of the object.
    model
        A click network; ``None`` loads the shipped nuclei click model.
    channel_axis, device
        As in :func:`napari_unet.inference.segment`.
    segmentation_model
        The segmentation model that answers a lone positive click (see
        :class:`ClickSegmenter`): ``"shipped"`` the nuclei model, ``None`` none (the click
        network answers).

    Returns
    -------
    np.ndarray
        bool mask of the image's spatial shape.

    Raises
    ------
    ValueError
        A click lies outside the image, there is no positive click, or the model is
        not a click model.

    Examples
    --------
    >>> mask = segment_click(image, positive=[(120, 87)])  # doctest: +SKIP
    """
    if isinstance(segmentation_model, str):
        if segmentation_model != "shipped":
            raise ValueError(f"segmentation_model is a model, 'shipped' or None; got {segmentation_model!r}")
        segmentation_model = load_model()
    segmenter = ClickSegmenter(image, model, channel_axis=channel_axis, device=device,
                               segmentation_model=segmentation_model)
    return segmenter.predict(as_clicks(positive, negative)).full()


class Scaled:
    """A (C, Y, X) plane with each channel's (low, high) mapped to 0 and 1, as float32, scaled
    window by window as it is read (``plane[..., y0:y1, x0:x1]`` keeping the channel axis): a
    click reads a few small windows of each plane of a volume it is carried to, and scaling
    whole 512² planes cost ~1 ms each, 3-6 new planes a click.
    """

    def __init__(self, plane: np.ndarray, levels: Sequence[tuple[float, float]]):
        self.plane = plane
        self.low, high = (np.array(v, np.float32)[:, None, None] for v in zip(*levels))
        self.span = np.maximum(high - self.low, 1e-12)
        self.shape, self.dtype, self.nbytes = plane.shape, np.dtype(np.float32), plane.size * 4

    def __getitem__(self, key) -> np.ndarray:
        window = self.plane[key]
        return ((window.astype(np.float32, copy=False) - self.low) / self.span).astype(np.float32, copy=False)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[...] if dtype is None else self[...].astype(dtype)


def _same_mask(a: ObjectMask, b: ObjectMask) -> bool:
    """Whether two object masks hold the same pixels (their windows may differ)."""
    box = a.bbox()
    if box != b.bbox():
        return False
    if box is None:
        return True
    y0, x0, y1, x1 = box
    return bool(np.array_equal(crop(a.mask, (y0, x0), (y1 - y0, x1 - x0), fill=False, origin=a.offset),
                               crop(b.mask, (y0, x0), (y1 - y0, x1 - x0), fill=False, origin=b.offset)))


def _paste(previous: ObjectMask | None, corner: tuple[int, int], edge: int) -> np.ndarray:
    """The previous mask in the (1, edge, edge) window at ``corner``, as float32 0/1."""
    if previous is None or not previous.mask.size:
        return np.zeros((1, edge, edge), np.float32)
    return crop(previous.mask, corner, edge, fill=False, origin=previous.offset)[None].astype(np.float32)


def _keep_clicked(mask: np.ndarray, pos, y0: int, x0: int) -> np.ndarray:
    """Only the connected parts of ``mask`` under a positive click (all, if none is)."""
    parts, n = ndi.label(mask)
    if n <= 1:
        return mask
    hit = set()
    for y, x in pos:
        iy, ix = int(round(y)) - y0, int(round(x)) - x0
        if 0 <= iy < mask.shape[0] and 0 <= ix < mask.shape[1] and parts[iy, ix]:
            hit.add(int(parts[iy, ix]))
    return np.isin(parts, list(hit)) if hit else mask
