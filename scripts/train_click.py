"""Train the click network the way the viewer uses it; keep the checkpoint with the best NoC.

    nice -n 10 .venv/bin/python scripts/train_click.py -o OUT.safetensors \
        --init napari_unet/model/weights/nuclei_click.safetensors --minutes 40

Later clicks in the viewer correct the segmentation model's object (it answers lone first
clicks), so most training windows start from that object as the previous mask, then
the network's own answers (:data:`napari_unet.clicks.batches.SEGMENTED_SIM`); half the correcting
clicks are put anywhere deep in the error region, as a person would, and small or dim
objects weigh double; with ``--moved-boundary`` that share of the corrected objects has its
true border a pixel out or in of the one the image shows, as people draw borders
(``ClickSimConfig.p_moved_boundary``). Every ``--every`` steps the network is
scored by NoC@85 (then NoC@90) on a selection set of generated images (its own seed: neither
the training pool nor bench_click's held-out images), and with ``--moved-boundary`` also on
the same objects with their borders moved a pixel (half out, half in), the two NoC@85 averaged;
with ``--real`` a share of the training windows comes from real annotated images (a folder
of ``name.tif`` / ``name_masks.tif`` pairs, e.g. ``benchmarks/real_data.py``'s HeLa frames) and
with ``--real-select`` the objects of other real images join the selection as a third set;
the best checkpoint is written, the starting weights included, so the result is never worse
on that set than ``--init``.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace

import numpy as np
import torch

from napari_unet.clicks.batches import SEGMENTED_SIM, ClickSampler, moved_boundary
from napari_unet.clicks.protocol import click_objects, clicks_to_reach
from napari_unet.clicks.segmenter import ClickSegmenter
from napari_unet.clicks.train import click_train_config, new_click_model, widened
from napari_unet.io import read_image
from napari_unet.model.files import load_model, save_model
from napari_unet.synth.images import synth_dataset
from napari_unet.training.engine import train_iter
from napari_unet.training.sources import SynthSource, find_pairs, load_folder

SELECTION_SEED = 7  # training pools use seed 1, bench_click's held-out images seed 2024
MAX_CLICKS = 10  # the selection set's click limit (NoC counts 10 when never reached)


class Mixed:
    """Samples from ``real`` with chance ``share``, else from ``synthetic``."""

    def __init__(self, synthetic, real, share: float):
        self.synthetic, self.real, self.share = synthetic, real, share

    def sample(self, rng: np.random.Generator):
        return (self.real if rng.random() < self.share else self.synthetic).sample(rng)


class Selection:
    """NoC of the network being trained on fixed objects of generated images (and of real ones)."""

    def __init__(self, model, seg_model, n_images: int, per_image: int, device: str = "cpu", moved: bool = False,
                 real: str | None = None):
        self.model = model
        rng = np.random.default_rng(0)
        self.sets, self.moved, self.real = [], [], []
        for sample in synth_dataset(n_images, SELECTION_SEED, (256, 256)):
            # the segmenter holds the model being trained: it always answers with the latest weights
            segmenter = ClickSegmenter(sample.image, model, device=device, segmentation_model=seg_model)
            ids = np.unique(sample.labels)[1:]
            ids = rng.choice(ids, min(per_image, ids.size), replace=False)
            self.sets.append((segmenter, sample.labels, ids))
            if moved:  # the same objects drawn by another person: borders a pixel out or in
                labels = np.zeros_like(sample.labels)
                for k, obj in enumerate(ids):
                    labels[moved_boundary(sample.labels, obj, grow=k % 2 == 0)] = obj
                self.moved.append((segmenter, labels, ids))
        for image_path, mask_path in find_pairs(real) if real else []:  # real images, their own objects
            labels = read_image(mask_path).astype(np.int32)
            ids = np.unique(labels)[1:]
            ids = rng.choice(ids, min(3 * per_image, ids.size), replace=False)
            segmenter = ClickSegmenter(read_image(image_path), model, device=device, segmentation_model=seg_model)
            self.real.append((segmenter, labels, ids))

    def score(self) -> tuple[float, float]:
        """Mean NoC@85 and NoC@90 (lower is better), averaged over the sets (as drawn, moved, real)."""
        scores = [self._noc(s) for s in (self.sets, self.moved, self.real) if s]
        self.last = scores
        return tuple(float(np.mean(s)) for s in zip(*scores))

    def _noc(self, sets) -> tuple[float, float]:
        modes = [m.training for m in self.model.modules()]
        self.model.eval()
        try:
            with torch.no_grad():
                rows = [r for seg, labels, ids in sets for r in click_objects(seg, labels, ids, MAX_CLICKS)]
        finally:
            for m, mode in zip(self.model.modules(), modes):
                m.training = mode
        return tuple(float(np.mean([clicks_to_reach(i, t, MAX_CLICKS) for _, i in rows])) for t in (0.85, 0.9))

    def parts(self) -> str:
        """The last score's sets, in words."""
        names = [name for name, s in (("as drawn", self.sets), ("moved", self.moved), ("real", self.real)) if s]
        return ", ".join(f"{name} {a:.2f} / {b:.2f}" for name, (a, b) in zip(names, self.last))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", required=True, help="the selected click model (.safetensors)")
    parser.add_argument("--init", help="start from this click model (default: a new network)")
    parser.add_argument("--seg-model", help="segmentation model answering first clicks (default: the shipped one)")
    parser.add_argument("--minutes", type=float, default=40.0, help="training time budget")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--pool", type=int, default=150, help="generated training images (each segmented once)")
    parser.add_argument("--every", type=int, default=100, help="steps between NoC selections")
    parser.add_argument("--select-images", type=int, default=8)
    parser.add_argument("--select-objects", type=int, default=8, help="objects per selection image")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--moved-boundary", type=float, default=0.0,
                        help="share of corrected objects whose true border is a pixel out or in")
    parser.add_argument("--real", help="folder of real annotated images (name.tif + name_masks.tif) to train on too")
    parser.add_argument("--real-share", type=float, default=0.5, help="share of training windows from --real")
    parser.add_argument("--real-select", help="folder of other real annotated images whose objects join the selection")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = widened(load_model(args.init)) if args.init else new_click_model()
    seg_model = load_model(args.seg_model)
    selection = Selection(model, seg_model, args.select_images, args.select_objects, args.device,
                          moved=args.moved_boundary > 0, real=args.real_select)
    best = (*selection.score(), 0)
    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    command = ("scripts/train_click.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                                    if v is not None and k != "output"))
    def keep() -> None:
        """Write the best weights so far (atomically): a run stopped early leaves its best."""
        kept = copy.deepcopy(model).cpu()
        kept.load_state_dict(best_state)
        kept.card = replace(kept.card, provenance={
            **(kept.card.provenance or {}), "trained_by": command, "selected_step": best[2],
            "selection": f"NoC@85 {best[0]:.2f} / NoC@90 {best[1]:.2f} on {args.select_images} generated images "
                         f"(seed {SELECTION_SEED}), {args.select_objects} objects each, <= {MAX_CLICKS} clicks"
                         + (", the mean of their borders as drawn and moved a pixel" if selection.moved else "")
                         + (f" and of {sum(len(ids) for *_, ids in selection.real)} objects of "
                            f"{len(selection.real)} real images" if selection.real else "")})
        save_model(kept, args.output)

    keep()
    print(f"step 0: NoC@85 {best[0]:.2f}, NoC@90 {best[1]:.2f} ({selection.parts()}; the starting weights)",
          flush=True)

    config = click_train_config(steps=10**7, max_seconds=60 * args.minutes, lr=args.lr, warmup=0.05,
                                val_every=0, threads=args.threads, seed=args.seed)
    source = SynthSource(shape=(256, 256), pool=args.pool, seed=1)
    if args.real:
        source = Mixed(source, load_folder(args.real), args.real_share)
    sim = replace(SEGMENTED_SIM, p_moved_boundary=args.moved_boundary)
    batches = lambda data, cfg, rng: ClickSampler(data, model, cfg, rng, sim, segmentation=seg_model)  # noqa: E731
    t0 = time.perf_counter()

    def select(rec) -> None:
        nonlocal best, best_state
        noc85, noc90 = selection.score()
        better = (noc85, noc90) < best[:2]
        if better:
            best = (noc85, noc90, rec.step)
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            keep()
        print(f"step {rec.step} ({time.perf_counter() - t0:.0f} s, loss {rec.loss:.3f}): NoC@85 {noc85:.2f}, "
              f"NoC@90 {noc90:.2f} ({selection.parts()}){'  best' if better else ''}", flush=True)

    rec = None
    for rec in train_iter(model, source, config, device=args.device, batches=batches):
        if rec.step % args.every == 0 and rec.val_ap50 is None:
            select(rec)
    if rec is not None and rec.step % args.every:  # the final weights are candidates too
        select(rec)
    print(f"kept step {best[2]}: NoC@85 {best[0]:.2f}, NoC@90 {best[1]:.2f} -> {args.output}", flush=True)


if __name__ == "__main__":
    main()
