"""Training the click network with simulated clicks, through the ordinary training engine.

:class:`ClickSampler` is a batch source for :func:`napari_unet.training.train_iter`
(its ``batches`` hook): each sample is a window around one object, augmented like the
automatic model's patches, with clicks placed the way :mod:`napari_unet.clicksim`'s
simulated user places them — the first inside the object, some extra random ones, and
for part of the batch a previous mask with a click on its largest error: the network
being trained answers earlier clicks (iterative training, as in RITM), or the true
mask is perturbed (grown, shrunk, shifted, cut), which is cheaper. The target is the object (class 1) against everything else;
unannotated pixels are ignored, so fine-tuning can use partially labelled images.

Run ``python -m napari_unet.clicktrain -o model.safetensors --minutes 18`` to train
the shipped model from scratch on synthetic nuclei.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Generator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import ndimage as ndi

from .augment import augment, build_transform, crop
from .batches import Batch
from .card import ModelCard
from .clicks import ClickConfig, encode_clicks
from .clicksim import next_click
from .data import Sample, Source
from .losses import LossConfig
from .model import UNet
from .modelfile import load_model
from .targets import IGNORE_INDEX
from .training import TrainConfig, TrainProgress, TrainResult, train_iter

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


def click_train_config(**overrides) -> TrainConfig:
    """Training settings for a click network (crop-sized patches, Dice on the object class)."""
    base = TrainConfig(patch_size=ClickConfig().crop, batch_size=8, val_every=100,
                       loss=LossConfig(dice_classes=(1,)))
    return replace(base, **overrides)


def new_click_model(base_channels: int = 16, depth: int = 4, image_channels: int = 1) -> UNet:
    """An untrained click network (inputs: image, positive, negative, previous mask)."""
    model = UNet(image_channels + 3, 2, base_channels=base_channels, depth=depth)
    model.card = ModelCard(
        name="nuclei-click", task="click", classes=("background", "object"),
        channels=("intensity",) if image_channels == 1 else tuple(f"channel {i}" for i in range(image_channels)),
        click_channels=3,
    )
    return model


@dataclass(eq=False)
class _Item:
    """One training object while its clicks are simulated."""

    image: torch.Tensor  # (C, P, P) augmented window
    target: np.ndarray  # (P, P) bool, the object
    annotated: np.ndarray  # (P, P) bool
    clicks: list[tuple[int, int, bool]]
    previous: np.ndarray | None = None  # (P, P) bool mask before the latest click


class ClickSampler:
    """Batches of (image + click channels, object class map, weights) for ``train_iter``.

    Parameters
    ----------
    source
        Whole normalised images with instance labels (any :class:`~napari_unet.data.Source`).
    model
        The network being trained; it answers the iterative clicks.
    config
        Patch and batch size, augmentation (from the :class:`TrainConfig`).
    rng
        The run's generator.
    sim, clicks
        Window and click sampling; click encoding (must match inference).
    """

    def __init__(self, source: Source, model: UNet, config: TrainConfig, rng: np.random.Generator,
                 sim: ClickSimConfig = ClickSimConfig(), clicks: ClickConfig = ClickConfig()):
        self.source, self.model, self.rng = source, model, rng
        self.size, self.batch_size = config.patch_size, config.batch_size
        self.sim, self.clicks = sim, clicks
        self.transform = build_transform(config.augment, config.patch_size)

    def __call__(self) -> Batch:
        items = [self._item() for _ in range(self.batch_size)]
        draws = self.rng.random(len(items))
        sim = self.sim
        for item, u in zip(items, draws):
            if sim.p_iterative <= u < sim.p_iterative + sim.p_perturbed:
                self._perturb(item)
        rounds = [int(self.rng.integers(1, sim.max_iterative + 1)) if u < sim.p_iterative else 0
                  for u in draws]
        self._iterate(items, rounds)
        x = torch.stack([self._input(item) for item in items])
        classes, weights = zip(*(self._targets(item.target, item.annotated) for item in items))
        return Batch(x, torch.from_numpy(np.stack(classes)), torch.from_numpy(np.stack(weights)))

    # -- one object ---------------------------------------------------------------------
    def _item(self):
        for _ in range(50):
            sample = self.source.sample(self.rng)
            obj_id, box = self._pick_object(sample)
            if obj_id is None:
                continue
            img, obj, ann = self._window(sample, obj_id, box)
            if obj.sum() >= MIN_PIXELS:
                return _Item(img, obj, ann, self._clicks(obj, ann))
        raise ValueError("no labelled objects to click on in the training images; label some objects first")

    def _pick_object(self, sample: Sample):
        labels = sample.labels
        boxes = ndi.find_objects(labels)
        ids = np.array([i + 1 for i, b in enumerate(boxes) if b is not None])
        if sample.annotated is not None and ids.size:  # only objects annotated in full
            counts = np.bincount(labels.ravel(), minlength=len(boxes) + 1)
            seen = np.bincount(labels[sample.annotated], minlength=len(boxes) + 1)
            ids = ids[seen[ids] == counts[ids]]
        if ids.size == 0:
            return None, None
        obj_id = int(ids[self.rng.integers(ids.size)])
        return obj_id, boxes[obj_id - 1]

    def _window(self, sample: Sample, obj_id: int, box):
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
        obj = crop((sample.labels == obj_id).astype(np.int32), corner, edge)
        ann = crop(annotated, corner, edge, fill=False)
        img, obj, ann = augment(image, obj, ann, self.transform)
        return img, (obj > 0) & ann, ann

    def _clicks(self, obj: np.ndarray, ann: np.ndarray) -> list[tuple[int, int, bool]]:
        rng, sim = self.rng, self.sim
        dist = ndi.distance_transform_edt(np.pad(obj, 1))[1:-1, 1:-1]
        ys, xs = np.nonzero(dist >= sim.centre_spread * dist.max())
        k = rng.integers(ys.size)
        clicks = [(int(ys[k]), int(xs[k]), True)]
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
                    clicks.append((int(py[j]), int(px[j]), positive))
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
        click = next_click(item.previous, item.target, item.annotated)
        if click is not None:
            item.clicks.append((int(click.y), int(click.x), click.positive))

    def _input(self, item: _Item) -> torch.Tensor:
        pos = [(y, x) for y, x, p in item.clicks if p]
        neg = [(y, x) for y, x, p in item.clicks if not p]
        clicks = torch.from_numpy(encode_clicks(pos, neg, self.size, self.clicks.sigma))
        prev = item.previous if item.previous is not None else np.zeros((self.size, self.size), bool)
        return torch.cat([item.image, clicks, torch.from_numpy(prev.astype(np.float32))[None]])

    def _targets(self, obj: np.ndarray, ann: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        classes = obj.astype(np.int64)
        band = ndi.binary_dilation(obj) & ~ndi.binary_erosion(obj)
        weights = (1.0 + self.sim.boundary_weight * band).astype(np.float32)
        classes[~ann] = IGNORE_INDEX
        weights[~ann] = 0.0
        return classes, weights


def click_batches(model: UNet, sim: ClickSimConfig = ClickSimConfig(), clicks: ClickConfig = ClickConfig()):
    """The ``batches`` factory that makes :func:`train_iter` train ``model`` as a click network."""
    return lambda data, config, rng: ClickSampler(data, model, config, rng, sim, clicks)


def train_click_iter(model: UNet, data: Source, config: TrainConfig | None = None, *, device=None,
                     stop: threading.Event | None = None, sim: ClickSimConfig = ClickSimConfig(),
                     ) -> Generator[TrainProgress, None, TrainResult]:
    """Train (or fine-tune) a click network with simulated clicks; yields progress like ``train_iter``."""
    config = config if config is not None else click_train_config()
    return (yield from train_iter(model, data, config, device=device, stop=stop,
                                  batches=click_batches(model, sim)))


def main(argv: list[str] | None = None) -> None:
    """Train the shipped click model on synthetic nuclei (see the module docstring)."""
    from .data import SynthSource
    from .progress import run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", required=True, help="model file to write (checkpointed as it trains)")
    p.add_argument("--minutes", type=float, default=18.0, help="time budget")
    p.add_argument("--pool", type=int, default=500, help="synthetic 256² images generated up front")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--resume", help="checkpoint to continue from")
    p.add_argument("--init", help="click model file to start from (default: random weights)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    args = p.parse_args(argv)
    model = _widened(load_model(args.init)) if args.init else new_click_model()
    config = click_train_config(steps=10**6, max_seconds=args.minutes * 60, threads=args.threads, lr=args.lr,
                                checkpoint=args.output, resume=args.resume, val_every=200)
    data = SynthSource(pool=args.pool, seed=1)
    result = run(_log(train_click_iter(model, data, config)))
    print(f"done: {result.steps} steps in {result.seconds:.0f} s, best step {result.best_step}", flush=True)


def _widened(old: UNet) -> UNet:
    """A 2-click-channel model as a 3-channel one whose previous-mask input starts at zero weight."""
    if old.card is None or old.card.click_channels != 2:
        return old
    model = new_click_model(old.config.base_channels, old.config.depth, old.config.in_channels - 2)
    state = old.state_dict()
    first = model.inc[0].weight.detach().clone()
    first.zero_()
    first[:, : old.config.in_channels] = state["inc.0.weight"]
    state["inc.0.weight"] = first
    model.load_state_dict(state)
    return model


def _log(job):
    step = None
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            return stop.value
        if step.step % 20 == 0:
            print(f"step {step.step} loss {step.loss:.4f} lr {step.lr:.2e} {step.seconds:.0f}s", flush=True)
        yield step


if __name__ == "__main__":
    main()
