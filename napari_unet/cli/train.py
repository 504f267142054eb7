"""`napari-unet train`: a segmentation model or a click network from image/mask pairs or generated nuclei."""

from __future__ import annotations

import datetime
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from napari_unet.progress import run
from napari_unet.synth.images import synth_dataset
from napari_unet.training.sources import SynthSource, load_folder

if TYPE_CHECKING:  # torch is imported by the run, not by `napari-unet --help`
    from napari_unet.model.unet import UNet
    from napari_unet.training import parallel
    from napari_unet.training.engine import TrainConfig

TASKS = ("instances", "click", "semantic")
# What each task uses for the options not given: the segmentation model's recipe, and
# the click network's (a smaller network on crop-sized windows around one object).
DEFAULTS = {
    "instances": {"base_channels": 24, "batch_size": 4, "patch_size": 256, "pool": 0},
    "click": {"base_channels": 16, "batch_size": 8, "pool": 500},  # patch size: the click recipe's crop
}


def add_train(sub) -> None:
    """Register ``napari-unet train``."""
    p = sub.add_parser("train", help="train a model on image/mask pairs or synthetic nuclei")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", action="store_true", help="train on generated nuclei images")
    src.add_argument("--data", type=Path, help="folder of <name>.tif + <name>_masks.tif (or masks/)")
    src.add_argument("--images", type=Path, nargs="+",
                     help="image or volume files (TIFF, NIfTI, ...) with --labels: a new model from your own, "
                          "possibly partial, labels (planes without labels are not annotated)")
    p.add_argument("--labels", type=Path, nargs="+", help="label files matching --images, in the same order")
    p.add_argument("--spacing", type=float, nargs="+", metavar="S",
                   help="voxel size along the axes (e.g. 3 1 1 for Z Y X in mm; default 1)")
    p.add_argument("--axes", help="the images' axes, e.g. ZYX (default: YX or ZYX by dimension)")
    p.add_argument("--classes", help="class names by label value, e.g. '1=liver,2=lesion' (semantic)")
    p.add_argument("-o", "--output", required=True, type=Path, help="model file to write (.safetensors)")
    p.add_argument("--task", choices=TASKS, default="instances",
                   help="instances: the segmentation model (default); click: the click-to-segment network, "
                        "trained with simulated clicks; semantic: a class map (tissues, organs) from --images")
    p.add_argument("--val", type=Path, help="folder of held-out pairs (default with --synthetic: generated)")
    p.add_argument("--val-size", type=int, default=24, help="generated validation images (default 24)")
    p.add_argument("--ignore-value", type=int, help="label value meaning 'not annotated'")
    p.add_argument("--base-channels", type=int, help="first-level channels (default 24; click: 16)")
    p.add_argument("--depth", type=int, default=4, help="number of poolings (default 4)")
    p.add_argument("--name", help="model name shown in the picker (default: the output's stem)")
    p.add_argument("--steps", type=int, help="step budget (default 2000; with --images: 300 s unless given)")
    p.add_argument("--max-seconds", type=float, help="time budget; the schedule follows it")
    p.add_argument("--batch-size", type=int, help="patches per step (default 4; click: 8)")
    p.add_argument("--patch-size", type=int, help="patch edge in pixels (default 256; click: 128)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument("--val-every", type=int, default=200, help="steps between evaluations (default 200)")
    p.add_argument("--pool", type=int, help="synthetic: recycle N images (default 0: fresh; click: 500)")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint (its .state.pt beside it)")
    p.add_argument("--init", type=Path,
                   help="start from this model file's weights with a fresh schedule (e.g. train the shipped model on)")
    p.add_argument("--warmup", type=float, default=0.03, help="share of the budget for the lr warm-up (default 0.03)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--scale", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="augmentation zoom range, log-uniform (default 0.7 1.4)")
    p.add_argument("--object-zoom", action="store_true",
                   help="magnify images of small objects as automatic zoom will show them (see docs/models.md)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    """Train a model as the options say and write it, provenance included.

    Under ``torchrun`` every process runs this and they train one model together (see
    :mod:`napari_unet.training.parallel`); only rank 0 prints progress and writes files.
    """
    from napari_unet.training import parallel

    with parallel.session(args.device) as ranks:
        return run_task_train(args, ranks) if args.images else run_data_train(args, ranks)


def run_data_train(args, ranks: parallel.Group) -> int:
    """A segmentation model or click network from --synthetic or --data (the engine directly)."""
    from napari_unet.clicks.train import click_batches, click_train_config
    from napari_unet.model.files import model_card, save_model
    from napari_unet.training.engine import train_iter

    if args.task == "semantic":
        raise ValueError("--task semantic trains on your own files: give --images and --labels")
    args.steps = 2000 if args.steps is None else args.steps
    for key, value in DEFAULTS[args.task].items():  # the task's defaults, recorded in the card's command
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.patch_size is None:
        args.patch_size = click_train_config().patch_size
    if args.resume and args.init:
        raise ValueError("give --resume (continue a run) or --init (start a new run from a model), not both")
    cfg = _config(args)
    model = _model(args)
    data, trained_on, val = _data(args, cfg)
    batches = click_batches(model) if args.task == "click" else None
    job = train_iter(model, data, cfg, device=args.device, val=val, batches=batches)
    total = args.steps if not args.max_seconds else None
    with tqdm(total=total, unit="step", file=sys.stderr, mininterval=5, disable=not ranks.main) as bar:
        result = run(job, lambda rec: _show(bar, rec))
    if not ranks.main:
        return 0
    best = [r for r in result.history if r.step == result.best_step and r.val_ap50 is not None]
    model.card = replace(model_card(model), name=args.name or args.output.stem)
    provenance = {
        "trained_on": trained_on,
        "steps": result.steps,
        "best_step": result.best_step,
        "seconds": round(result.seconds, 1),
        "hardware": _hardware(args.threads, ranks),
        "command": _train_command(args),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "seed": args.seed,
        **_replicas(ranks, result.replicas_identical),
    }
    if best:
        provenance.update(val_ap50=round(best[0].val_ap50, 4), val_ap75=round(best[0].val_ap75, 4))
    save_model(model, args.output, **provenance)
    figures = f" AP@0.5 {best[0].val_ap50:.3f} AP@0.75 {best[0].val_ap75:.3f}" if best else ""
    print(f"{args.output}: {result.steps} steps in {result.seconds:.0f} s, best step {result.best_step}{figures}")
    _print_replicas(ranks, result.replicas_identical)
    return 0


def run_task_train(args, ranks: parallel.Group) -> int:
    """A new model from image and label files (``napari_unet.train``), written with its plan."""
    from napari_unet.io.files import read_image_file
    from napari_unet.model.files import model_card, save_model
    from napari_unet.training.plan import Plan
    from napari_unet.training.tasks import train_iter as task_train_iter

    if args.task == "click":
        raise ValueError("the click network trains on --synthetic or --data; --images is for semantic or instances")
    if not args.labels or len(args.labels) != len(args.images):
        raise ValueError(f"give one --labels file per --images file ({len(args.images)} images, "
                         f"{len(args.labels or [])} labels)")
    images = [read_image_file(p) for p in args.images]
    said = [i.spacing for i in images]  # a NIfTI or DICOM file says its voxel size: each its own
    spacing = args.spacing or (said if len(said) > 1 and all(said) else said[0])
    job = task_train_iter(
        [i.data for i in images], [read_image_file(p).data for p in args.labels], task=args.task,
        axes=args.axes, spacing=spacing, classes=_class_names(args.classes), max_seconds=args.max_seconds,
        max_steps=args.steps, init=args.init and str(args.init), device=args.device, seed=args.seed,
        base_channels=args.base_channels if args.task == "semantic" else None,
    )
    with tqdm(total=args.steps, unit="step", file=sys.stderr, mininterval=5, disable=not ranks.main) as bar:
        model = run(job, lambda rec: _show(bar, rec))
    identical = ranks.identical(model)  # every rank takes part
    if not ranks.main:
        return 0
    card = model_card(model)
    provenance = {**card.provenance, "command": _train_command(args),
                  "trained_on": f"{', '.join(map(str, args.images))} ({card.provenance.get('trained_on')})",
                  "hardware": _hardware(None, ranks), **_replicas(ranks, identical)}
    model.card = replace(card, name=args.name or args.output.stem, provenance=provenance)
    save_model(model, args.output)
    print(f"{args.output}: {card.provenance['steps']} steps in {card.provenance['seconds']:.0f} s")
    _print_replicas(ranks, identical)
    if card.plan:
        print(Plan.from_dict(card.plan).describe())
    return 0


def _hardware(threads: int | None, ranks: parallel.Group) -> str:
    """What trained the model, for the card's provenance."""
    import torch

    from napari_unet.devices import cpu_name

    text = f"{cpu_name()}, {threads or torch.get_num_threads()} threads, torch {torch.__version__}"
    return f"{text}, {ranks.describe()}" if ranks.size > 1 else text


def _replicas(ranks: parallel.Group, identical: bool | None) -> dict:
    """Provenance of a run of several processes: how many, and whether their weights agreed."""
    return {"processes": ranks.size, "replicas_identical": identical} if ranks.size > 1 else {}


def _print_replicas(ranks: parallel.Group, identical: bool | None) -> None:
    if ranks.size > 1:
        print(f"{ranks.describe()}: replicas identical: {'yes' if identical else 'NO (please report this)'}")


def _class_names(text: str | None) -> dict[int, str] | None:
    """``'1=liver,2=lesion'`` as {1: 'liver', 2: 'lesion'}."""
    if not text:
        return None
    names = {}
    for part in text.split(","):
        value, sep, name = part.partition("=")
        if not sep or not value.strip().isdigit() or not name.strip():
            raise ValueError(f"--classes {text!r}: write label values and names as '1=liver,2=lesion'")
        names[int(value)] = name.strip()
    return names


def _config(args) -> TrainConfig:
    """The run's :class:`TrainConfig` from the options (the click task starts from its own)."""
    from napari_unet.clicks.train import click_train_config
    from napari_unet.training.engine import TrainConfig

    base = click_train_config() if args.task == "click" else TrainConfig()
    cfg = replace(
        base, steps=args.steps, max_seconds=args.max_seconds, batch_size=args.batch_size,
        patch_size=args.patch_size, lr=args.lr, val_every=args.val_every, seed=args.seed,
        threads=args.threads, checkpoint=str(args.output), resume=args.resume and str(args.resume),
        warmup=args.warmup,
    )
    if args.scale:
        low, high = args.scale
        if not 0.1 <= low <= high <= 10:
            raise ValueError(f"--scale needs 0.1 <= LOW <= HIGH <= 10, got {low:g} {high:g}")
        cfg = replace(cfg, augment=replace(cfg.augment, scale=(low, high)))
    if args.object_zoom:
        cfg = replace(cfg, augment=replace(cfg.augment, object_zoom=True))
    return cfg


def _model(args) -> UNet:
    """The network to train: a model file's (--init, --resume) or a new one for the task."""
    from napari_unet.clicks.train import new_click_model, widened
    from napari_unet.model.checkpoint import model_path
    from napari_unet.model.files import load_model, model_card, trainable
    from napari_unet.model.unet import UNet

    if args.init:
        model = trainable(load_model(args.init), "train")
        if args.task == "click":
            model = widened(model)
        card = model_card(model)  # what the weights were before this run, kept apart from it
        model.card = replace(card, provenance={"init": str(args.init), "init_provenance": card.provenance})
        return model
    if args.resume:
        return load_model(model_path(args.resume))  # the architecture; the state file has the weights
    if args.task == "click":
        return new_click_model(args.base_channels, args.depth)
    return UNet(1, 3, base_channels=args.base_channels, depth=args.depth)


def _data(args, cfg: TrainConfig):
    """The training source, what it is (for the card) and the validation pairs, if any."""
    val = None
    if args.synthetic:
        side = int(round(args.patch_size / cfg.augment.scale[0])) + 1  # windows never need padding
        side = max(side, 256) if args.task == "click" else side  # room around the clicked objects
        data = SynthSource(shape=(side, side), pool=args.pool, seed=args.seed)
        trained_on = f"synthetic nuclei (napari_unet.synth, SynthConfig defaults, {side}² images)"
        if args.task != "click" and args.val is None and args.val_size:
            val = [(s.image, s.labels) for s in synth_dataset(args.val_size, 10_000 + args.seed, (256, 256))]
    else:
        data = load_folder(args.data, ignore_value=args.ignore_value)
        trained_on = f"{args.data} ({len(data)} images)"
    if args.val is not None and args.task != "click":
        vs = load_folder(args.val, ignore_value=args.ignore_value)
        val = [(s.image[0], s.labels) for s in vs.samples]
    return data, trained_on, val


def _show(bar, rec) -> None:
    if bar.disable:  # not rank 0 of a torchrun run: rank 0 reports
        return
    bar.n = rec.step
    bar.set_postfix(loss=f"{rec.loss:.3f}", lr=f"{rec.lr:.1e}", refresh=False)
    bar.refresh()
    if rec.val_ap50 is not None:
        tqdm.write(f"step {rec.step} {rec.seconds:.0f}s loss {rec.loss:.3f} "
                   f"AP@0.5 {rec.val_ap50:.3f} AP@0.75 {rec.val_ap75:.3f}", file=sys.stderr)


def _train_command(args) -> str:
    """The full `napari-unet train` command line that reproduces this run (all options explicit)."""
    parts = ["napari-unet", "train"]
    for key, value in vars(args).items():
        if key in ("func", "command", "synthetic") or value is None or value is False:
            continue
        values = [] if value is True else value if isinstance(value, list) else [value]  # flags; --scale LOW HIGH
        parts += [f"--{key.replace('_', '-')}", *map(str, values)]
    if args.synthetic:
        parts.insert(2, "--synthetic")
    return " ".join(parts)
