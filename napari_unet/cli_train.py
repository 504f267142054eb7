"""`napari-unet train` and `napari-unet finetune`: the subcommands that teach a model."""

from __future__ import annotations

import sys
from pathlib import Path


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on image/mask pairs or synthetic nuclei")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", action="store_true", help="train on generated nuclei images")
    src.add_argument("--data", type=Path, help="folder of <name>.tif + <name>_masks.tif (or masks/)")
    p.add_argument("-o", "--output", required=True, type=Path, help="model file to write (.safetensors)")
    p.add_argument("--val", type=Path, help="folder of held-out pairs (default with --synthetic: generated)")
    p.add_argument("--val-size", type=int, default=24, help="generated validation images (default 24)")
    p.add_argument("--ignore-value", type=int, help="label value meaning 'not annotated'")
    p.add_argument("--base-channels", type=int, default=24, help="first-level channels (default 24)")
    p.add_argument("--depth", type=int, default=4, help="number of poolings (default 4)")
    p.add_argument("--name", help="model name shown in the picker (default: the output's stem)")
    p.add_argument("--steps", type=int, default=2000, help="step budget (default 2000)")
    p.add_argument("--max-seconds", type=float, help="time budget; the schedule follows it")
    p.add_argument("--batch-size", type=int, default=4, help="patches per step (default 4)")
    p.add_argument("--patch-size", type=int, default=256, help="patch edge in pixels (default 256)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument("--val-every", type=int, default=200, help="steps between evaluations (default 200)")
    p.add_argument("--pool", type=int, default=0, help="synthetic: recycle N images (default 0: fresh)")
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
    import datetime

    import torch
    from tqdm import tqdm

    from dataclasses import replace

    from napari_unet.cli import _error
    from napari_unet.training.sources import SynthSource, load_folder
    from napari_unet.model.unet import UNet
    from napari_unet.model.files import load_model, model_card, save_model
    from napari_unet.training.engine import TrainConfig, train_iter

    cfg = TrainConfig(
        steps=args.steps, max_seconds=args.max_seconds, batch_size=args.batch_size,
        patch_size=args.patch_size, lr=args.lr, val_every=args.val_every, seed=args.seed,
        threads=args.threads, checkpoint=str(args.output), resume=args.resume and str(args.resume),
        warmup=args.warmup,
    )
    if args.scale:
        low, high = args.scale
        if not 0.1 <= low <= high <= 10:
            _error(f"--scale needs 0.1 <= LOW <= HIGH <= 10, got {low:g} {high:g}")
            return 2
        cfg = replace(cfg, augment=replace(cfg.augment, scale=(low, high)))
    if args.object_zoom:
        cfg = replace(cfg, augment=replace(cfg.augment, object_zoom=True))
    if args.resume and args.init:
        _error("give --resume (continue a run) or --init (start a new run from a model), not both")
        return 2
    if args.init:
        model = load_model(args.init)
        card = model_card(model)  # what the weights were before this run, kept apart from it
        model.card = replace(card, provenance={"init": str(args.init), "init_provenance": card.provenance})
    elif args.resume:
        from napari_unet.model.checkpoint import model_path

        model = load_model(model_path(args.resume))  # the architecture; the state file has the weights
    else:
        model = UNet(1, 3, base_channels=args.base_channels, depth=args.depth)
    val = None
    if args.synthetic:
        from napari_unet.synth.images import synth_dataset

        side = int(round(args.patch_size / cfg.augment.scale[0])) + 1  # windows never need padding
        data = SynthSource(shape=(side, side), pool=args.pool, seed=args.seed)
        trained_on = f"synthetic nuclei (napari_unet.synth.images, SynthConfig defaults, {side}² images)"
        if args.val is None and args.val_size:
            val = [(s.image, s.labels) for s in synth_dataset(args.val_size, 10_000 + args.seed, (256, 256))]
    else:
        data = load_folder(args.data, ignore_value=args.ignore_value)
        trained_on = f"{args.data} ({len(data)} images)"
    if args.val is not None:
        vs = load_folder(args.val, ignore_value=args.ignore_value)
        val = [(s.image[0], s.labels) for s in vs.samples]
    job = train_iter(model, data, cfg, device=args.device, val=val)
    total = args.steps if not args.max_seconds else None
    with tqdm(total=total, unit="step", file=sys.stderr, mininterval=5) as bar:
        while True:
            try:
                rec = next(job)
            except StopIteration as stop:
                result = stop.value
                break
            bar.n = rec.step
            bar.set_postfix(loss=f"{rec.loss:.3f}", lr=f"{rec.lr:.1e}", refresh=False)
            bar.refresh()
            if rec.val_ap50 is not None:
                tqdm.write(f"step {rec.step} {rec.seconds:.0f}s loss {rec.loss:.3f} "
                           f"AP@0.5 {rec.val_ap50:.3f} AP@0.75 {rec.val_ap75:.3f}", file=sys.stderr)
    best = [r for r in result.history if r.step == result.best_step and r.val_ap50 is not None]
    model.card = replace(model_card(model), name=args.name or args.output.stem)
    provenance = {
        "trained_on": trained_on,
        "steps": result.steps,
        "best_step": result.best_step,
        "seconds": round(result.seconds, 1),
        "hardware": f"{_cpu_name()}, {args.threads or torch.get_num_threads()} threads, torch {torch.__version__}",
        "command": _train_command(args),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "seed": args.seed,
    }
    if best:
        provenance.update(val_ap50=round(best[0].val_ap50, 4), val_ap75=round(best[0].val_ap75, 4))
    save_model(model, args.output, **provenance)
    figures = f" AP@0.5 {best[0].val_ap50:.3f} AP@0.75 {best[0].val_ap75:.3f}" if best else ""
    print(f"{args.output}: {result.steps} steps in {result.seconds:.0f} s, best step {result.best_step}{figures}")
    return 0


def _cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def add_finetune(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model (and its click network) on corrected labels")
    p.add_argument("--model", type=Path, help="model to start from (default: the shipped one)")
    p.add_argument("--image", type=Path, nargs="+", required=True, help="image file(s)")
    p.add_argument("--labels", type=Path, nargs="+", required=True, help="corrected label TIFF(s), 0 = background")
    p.add_argument("--annotated", type=Path, nargs="+", help="mask TIFF(s): nonzero = annotated (default: all)")
    p.add_argument("-o", "--output", type=Path, required=True, help="model file to write")
    p.add_argument("--click-output", type=Path,
                   help="also fine-tune the click network on the same labels and write it here; it takes "
                        "a quarter of the budget (load both in napari: name it <output>_click.safetensors)")
    p.add_argument("--click-model", type=Path, help="click network to start from (default: the shipped one)")
    p.add_argument("--steps", type=int, help="step budget (default 300)")
    p.add_argument("--max-seconds", type=float, help="time budget in seconds")
    p.add_argument("--validate", action="store_true",
                   help="hold out a strip of the annotated objects (16 or more) and keep the weights that score best")
    p.add_argument("--channel-axis", type=int, default=None, help="axis holding channels, if any")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.set_defaults(func=run_finetune)


def run_finetune(args) -> int:
    from tqdm import tqdm

    from napari_unet.cli import drive
    from napari_unet.clicks.segmenter import load_click_model
    from napari_unet.finetune.both import CLICK_SHARE, finetune_both_iter
    from napari_unet.io import read_image
    from napari_unet.model.files import load_model, save_model

    for name in ("labels", "annotated"):
        given = getattr(args, name)
        if given is not None and len(given) != len(args.image):
            raise ValueError(f"give one --{name} file per --image ({len(args.image)}), got {len(given)}")
    model = load_model(args.model)
    click_model = load_click_model(args.click_model) if args.click_output else None
    images = [read_image(p) for p in args.image]
    labels = [read_image(p) for p in args.labels]
    annotated = [read_image(p) != 0 for p in args.annotated] if args.annotated else None
    job = finetune_both_iter(model, click_model, images, labels, annotated=annotated, max_steps=args.steps,
                             max_seconds=args.max_seconds, click_share=CLICK_SHARE if click_model else 0.0,
                             device=args.device, channel_axis=args.channel_axis, validate=args.validate)
    with tqdm(total=args.steps, unit="step", file=sys.stderr, mininterval=2) as bar:
        result = drive(job, lambda s: (bar.set_description(s.network), setattr(bar, "n", s.record.step),
                                       bar.set_postfix(loss=f"{s.record.loss:.3f}")))
    tuned = result.model
    save_model(tuned.model, args.output)
    print(f"{args.output}: fine-tuned {tuned.steps} steps in {tuned.seconds:.0f} s "
          f"({tuned.model.card.provenance['fine_tuned_on']})")
    if "validation" in tuned.model.card.provenance:
        print(f"validation: {tuned.model.card.provenance['validation']}")
    if args.click_output and result.click is None:
        raise ValueError(f"the click network was not fine-tuned: {result.click_note}")
    if result.click is not None:
        save_model(result.click.model, args.click_output)
        print(f"{args.click_output}: click network fine-tuned {result.click.steps} steps "
              f"in {result.click.seconds:.0f} s")
    return 0
