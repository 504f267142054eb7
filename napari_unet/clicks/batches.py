"""Training batches for the click network: a window around one object, with simulated clicks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_unet.clicks.protocol import human_click, next_click
from napari_unet.clicks.segmenter import ClickConfig, encode_clicks, farthest_point
from napari_unet.clicks.types import Click
from napari_unet.inference.segment import segment
from napari_unet.labels import fraction_inside
from napari_unet.model.unet import UNet
from napari_unet.training.augment import augment, build_transform
from napari_unet.training.batches import Batch
from napari_unet.training.engine import TrainConfig
from napari_unet.training.sources import Sample, Source
from napari_unet.training.targets import IGNORE_INDEX
from napari_unet.windows import crop

MIN_PIXELS = 4  # objects smaller than this in the window are not used


@dataclass(frozen=True)
class ClickSimConfig:
    """How training windows and simulated clicks are drawn."""

    p_object_window: float = 0.5  # window sized to the object (later clicks), else crop-sized at a click
    window_jitter: tuple[float, float] = (0.75, 1.33)  # log-uniform factor on the window edge
    centre_spread: float = 0.5  # first click: any interior point at least this fraction of the deepest
    p_random: float = 0.3  # add 1-3 random clicks (positives inside, negatives around the object)
    p_iterative: float = 0.35  # add 1..max_iterative clicks on the errors of the network in training
    max_iterative: int = 3  # most clicks added by iterative simulation
    p_perturbed: float = 0.3  # previous mask = the true one perturbed, plus a click on its error
    max_perturbation: int = 3  # pixels (in the network input) of growth, shrinkage or shift
    boundary_weight: float = 2.0  # extra loss weight on the object's border band: IoU lives there
    p_segmented: float = 0.0  # previous mask = the segmentation model's object, as after a first click
    p_human: float = 0.0  # a correcting click anywhere deep in the error region, not at its centre
    small_weight: float = 0.0  # loss weight x (1 + this) for objects under small_diameter px across
    small_diameter: float = 12.0  # (equivalent diameter in the image, before the window's zoom)
    dim_weight: float = 0.0  # loss weight x (1 + this) for objects dimmer than dim_contrast
    dim_contrast: float = 0.15  # object mean minus its surroundings' mean, normalised intensity
    # people draw borders differently (the real nuclei image's lie a pixel out on some nuclei,
    # in on others): this share of the corrected objects has its true border a pixel (of the
    # image) out or in of the one the image shows, so that a click on the thin ring between
    # them learns to move the whole border (a network never taught so spends a click per pixel)
    p_moved_boundary: float = 0.0


SEGMENTED_SIM = ClickSimConfig(p_random=0.2, p_iterative=0.2, p_perturbed=0.15, p_segmented=0.45, p_human=0.5,
                               small_weight=1.0, dim_weight=1.0)
"""Clicks as the viewer sees them: most later clicks correct the segmentation model's object."""


@dataclass(eq=False)
class _Item:
    """One training object while its clicks are simulated."""

    image: torch.Tensor  # (C, P, P) augmented window
    target: np.ndarray  # (P, P) bool, the object
    annotated: np.ndarray  # (P, P) bool
    clicks: list[Click]
    segmented: np.ndarray | None  # (P, P) bool, the segmentation model's object, if asked for
    weight: float  # loss weight of the object (small and dim ones count more)
    previous: np.ndarray | None = None  # (P, P) bool mask before the latest click
    seen: np.ndarray | None = None  # (P, P) bool, the object as the image shows it, where the target's border was moved


class ClickSampler:
    """Batches of (image + click channels, object class map, weights) for ``train_iter``.

    Parameters
    ----------
    source
        Whole normalised images with instance labels (any :class:`~napari_unet.training.sources.Source`).
    model
        The network being trained; it answers the iterative clicks.
    config
        Patch and batch size, augmentation (from the :class:`TrainConfig`).
    rng
        The run's generator.
    sim, clicks
        Window and click sampling; click encoding (must match inference).
    segmentation
        The segmentation model whose objects are the previous masks of ``sim.p_segmented``
        of the batch (as in the viewer, where it answers first clicks); None: none are.
    """

    def __init__(self, source: Source, model: UNet, config: TrainConfig, rng: np.random.Generator,
                 sim: ClickSimConfig = ClickSimConfig(), clicks: ClickConfig = ClickConfig(),
                 segmentation: UNet | None = None):
        self.source, self.model, self.rng = source, model, rng
        self.size, self.batch_size = config.patch_size, config.batch_size
        self.sim, self.clicks, self.segmentation = sim, clicks, segmentation
        self.transform = build_transform(config.augment, config.patch_size)
        self._segmented: dict = {}  # id(sample) -> (sample, the segmentation model's labels)

    def __call__(self) -> Batch:
        """One batch: windows around objects, their simulated clicks, targets and weights."""
        sim, rng = self.sim, self.rng
        p_seg = sim.p_segmented if self.segmentation is not None else 0.0
        # each window: from scratch with iterative clicks, a perturbed truth, the segmentation
        # model's object (then possibly iterative clicks), or only its first clicks
        kinds = rng.choice(4, size=self.batch_size, p=_kind_probabilities(sim, p_seg))
        # a moved border is only for corrected objects: a first click cannot know the person's border
        moved = (rng.random(self.batch_size) < sim.p_moved_boundary) & (kinds != 3)
        items = [self._item(kind == 2, move) for kind, move in zip(kinds, moved)]
        rounds = []
        for item, kind in zip(items, kinds):
            n = int(rng.integers(1, sim.max_iterative + 1))
            if kind == 1 and item.seen is not None:  # the earlier answer followed the image's border
                self._correct(item, item.seen)
            elif kind == 1:
                self._perturb(item)
            elif kind == 2:
                self._correct(item, item.segmented)
                n -= 1  # the segmentation model answered the first click
            rounds.append(n if kind in (0, 2) else 0)
        self._iterate(items, rounds)
        x = torch.stack([self._input(item) for item in items])
        classes, weights = zip(*(self._targets(item) for item in items))
        return Batch(x, torch.from_numpy(np.stack(classes)), torch.from_numpy(np.stack(weights)))

    # -- one object ---------------------------------------------------------------------
    def _item(self, segmented: bool = False, moved: bool = False) -> _Item:
        for _ in range(50):
            sample = self.source.sample(self.rng)
            obj_id, box = self._pick_object(sample)
            if obj_id is None:
                continue
            seg = self._segmented_object(sample, obj_id, box) if segmented else None
            grow = bool(self.rng.random() < 0.5) if moved else None
            img, obj, ann, seg, seen = self._window(sample, obj_id, box, seg, grow)
            if obj.sum() >= MIN_PIXELS:
                weight = self._object_weight(sample, obj_id, box)
                return _Item(img, obj, ann, self._clicks(obj, ann), seg, weight, seen=seen)
        raise ValueError("no labelled objects to click on in the training images; label some objects first")

    def _pick_object(self, sample: Sample):
        labels = sample.labels
        boxes = ndi.find_objects(labels)
        ids = np.array([i + 1 for i, b in enumerate(boxes) if b is not None])
        if sample.annotated is not None and ids.size:  # only objects annotated in full
            ids = ids[fraction_inside(labels, sample.annotated)[ids] == 1.0]
        if ids.size == 0:
            return None, None
        obj_id = int(ids[self.rng.integers(ids.size)])
        return obj_id, boxes[obj_id - 1]

    def _segmented_object(self, sample: Sample, obj_id: int, box) -> np.ndarray:
        """The segmentation model's object under the object's centre (a first click there, as
        in the viewer); empty where it finds nothing. The model segments each image once
        (the viewer asks it for a window around the click: the same objects, mostly).
        """
        key = id(sample)
        if key not in self._segmented or self._segmented[key][0] is not sample:
            if len(self._segmented) > 2048:  # fresh images every sample: keep the cache bounded
                self._segmented.clear()
            labels = segment(sample.image, self.segmentation, channel_axis=0,
                             device=next(self.model.parameters()).device)
            self._segmented[key] = (sample, labels)  # the sample kept: its id is never reused
        labels = self._segmented[key][1]
        y, x = farthest_point(sample.labels[box] == obj_id)
        label = labels[box][y, x]
        return labels == label if label else np.zeros(labels.shape, bool)

    def _object_weight(self, sample: Sample, obj_id: int, box) -> float:
        """1, more for small objects and for dim ones (the errors are mostly theirs)."""
        sim = self.sim
        if not (sim.small_weight or sim.dim_weight):
            return 1.0
        grown = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in box)
        obj = sample.labels[grown] == obj_id
        ring = ndi.binary_dilation(obj, iterations=3) & (sample.labels[grown] == 0)
        image = sample.image[(slice(None), *grown)].mean(axis=0)
        contrast = float(image[obj].mean() - image[ring].mean()) if ring.any() else 1.0
        diameter = 2 * np.sqrt(obj.sum() / np.pi)
        return (1.0 + sim.small_weight * (diameter < sim.small_diameter)) * \
            (1.0 + sim.dim_weight * (contrast < sim.dim_contrast))

    def _window(self, sample: Sample, obj_id: int, box, segmented: np.ndarray | None = None,
                grow: bool | None = None):
        """The augmented window around the object: image, target, annotated pixels, the
        segmentation model's object (if given) and, with ``grow`` not None, the object as the
        image shows it while the target's border is moved a pixel out (``grow``) or in.
        """
        sim, rng = self.sim, self.rng
        (ys, xs) = box
        h, w = ys.stop - ys.start, xs.stop - xs.start
        jitter = float(np.exp(rng.uniform(*np.log(sim.window_jitter))))
        if rng.random() < sim.p_object_window:
            edge = max(self.clicks.min_window, self.clicks.context * max(h, w)) * jitter
            centre = np.array([ys.start + h / 2, xs.start + w / 2]) + rng.normal(0, 0.1 * max(h, w), 2)
        else:  # as for a first click: a crop-sized window centred on a point in the object
            edge = self.size * jitter
            local = sample.labels[ys, xs] == obj_id
            pys, pxs = np.nonzero(local)
            k = rng.integers(pys.size)
            centre = np.array([ys.start + pys[k], xs.start + pxs[k]], dtype=float)
        edge = int(round(min(edge, self.size * self.clicks.max_zoom)))
        corner = (int(round(centre[0] - edge / 2)), int(round(centre[1] - edge / 2)))
        annotated = sample.annotated if sample.annotated is not None else np.ones(sample.labels.shape, bool)
        image = crop(sample.image, corner, edge)
        obj = sample.labels == obj_id
        masks = (moved_boundary(sample.labels, obj_id, grow) if grow is not None else obj).astype(np.int32)
        if segmented is not None:  # bit 1: the segmentation model's object, moved with the object
            masks |= segmented.astype(np.int32) << 1
        if grow is not None:  # bit 2: the object as the image shows it
            masks |= obj.astype(np.int32) << 2
        masks = crop(masks, corner, edge)
        ann = crop(annotated, corner, edge, fill=False)
        img, masks, ann = augment(image, masks, ann, self.transform)
        seg = (masks & 2 > 0) & ann if segmented is not None else None
        seen = (masks & 4 > 0) & ann if grow is not None else None
        return img, (masks & 1 > 0) & ann, ann, seg, seen

    def _clicks(self, obj: np.ndarray, ann: np.ndarray) -> list[Click]:
        rng, sim = self.rng, self.sim
        dist = ndi.distance_transform_edt(np.pad(obj, 1))[1:-1, 1:-1]
        ys, xs = np.nonzero(dist >= sim.centre_spread * dist.max())
        k = rng.integers(ys.size)
        clicks = [Click(int(ys[k]), int(xs[k]), True)]
        if rng.random() < sim.p_random:
            for _ in range(int(rng.integers(1, 4))):
                positive = rng.random() < 0.4
                if positive:
                    pool = obj
                else:  # around the object: neighbours and background within ~ its radius
                    reach = int(max(3, dist.max()))
                    pool = ndi.binary_dilation(obj, iterations=reach) & ~obj & ann
                py, px = np.nonzero(pool)
                if py.size:
                    j = rng.integers(py.size)
                    clicks.append(Click(int(py[j]), int(px[j]), positive))
        return clicks

    # -- previous masks and the clicks that correct them ------------------------------------
    def _perturb(self, item: _Item) -> None:
        """A plausible earlier answer (the truth grown, shrunk, shifted or cut) and a click on its error."""
        rng, k = self.rng, int(self.rng.integers(1, self.sim.max_perturbation + 1))
        obj = item.target
        kind = rng.integers(4)
        if kind == 0:
            prev = ndi.binary_dilation(obj, iterations=k)
        elif kind == 1:
            prev = ndi.binary_erosion(obj, iterations=k)
        elif kind == 2:
            prev = np.roll(obj, (int(rng.integers(-k, k + 1)), int(rng.integers(-k, k + 1))), axis=(0, 1))
        else:  # part of the object missing, cut by a random straight line
            yy, xx = np.nonzero(obj)
            angle = rng.uniform(0, 2 * np.pi)
            proj = yy * np.cos(angle) + xx * np.sin(angle)
            cut = np.quantile(proj, rng.uniform(0.2, 0.6))
            prev = obj.copy()
            prev[yy[proj < cut], xx[proj < cut]] = False
        self._correct(item, prev)

    def _iterate(self, items: list[_Item], rounds: list[int]) -> None:
        """Let the network in training answer, then click on its error, ``rounds[i]`` times."""
        if not any(rounds):
            return
        modes = [m.training for m in self.model.modules()]
        self.model.eval()
        try:
            for r in range(1, max(rounds) + 1):
                todo = [i for i, n in enumerate(rounds) if n >= r]
                x = torch.stack([self._input(items[i]) for i in todo])
                dev = next(self.model.parameters()).device
                with torch.no_grad():
                    logits = self.model(x.to(dev).contiguous(memory_format=torch.channels_last))
                preds = (logits[:, 1] > logits[:, 0]).cpu().numpy()
                for i, pred in zip(todo, preds):
                    self._correct(items[i], pred)
        finally:
            for m, mode in zip(self.model.modules(), modes):
                m.training = mode

    def _correct(self, item: _Item, previous: np.ndarray) -> None:
        item.previous = previous & item.annotated
        if self.rng.random() < self.sim.p_human:
            click = human_click(item.previous, item.target, self.rng, item.annotated)
        else:
            click = next_click(item.previous, item.target, item.annotated)
        if click is not None:
            item.clicks.append(click)

    def _input(self, item: _Item) -> torch.Tensor:
        clicks = torch.from_numpy(encode_clicks(item.clicks, self.size, self.clicks.sigma))
        prev = item.previous if item.previous is not None else np.zeros((self.size, self.size), bool)
        return torch.cat([item.image, clicks, torch.from_numpy(prev.astype(np.float32))[None]])

    def _targets(self, item: _Item) -> tuple[np.ndarray, np.ndarray]:
        obj, ann = item.target, item.annotated
        classes = obj.astype(np.int64)
        band = ndi.binary_dilation(obj) & ~ndi.binary_erosion(obj)
        weights = (item.weight * (1.0 + self.sim.boundary_weight * band)).astype(np.float32)
        classes[~ann] = IGNORE_INDEX
        weights[~ann] = 0.0
        return classes, weights


def moved_boundary(labels: np.ndarray, obj_id: int, grow: bool) -> np.ndarray:
    """Object ``obj_id`` of ``labels`` (bool mask) with its border a pixel further out, into the
    background only (``grow``), or a pixel further in: as another person would have drawn it.
    """
    obj = labels == obj_id
    if grow:
        return obj | (ndi.binary_dilation(obj) & (labels == 0))
    return ndi.binary_erosion(obj)


def _kind_probabilities(sim: ClickSimConfig, p_segmented: float) -> list[float]:
    """Chances of: iterative from scratch, perturbed truth, segmented object, first clicks only."""
    p = [sim.p_iterative, sim.p_perturbed, p_segmented]
    return [*p, max(0.0, 1.0 - sum(p))]
