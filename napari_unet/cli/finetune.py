"""`napari-unet finetune`: a model (and its click network) taught from corrected label files."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from napari_unet.io import read_image
from napari_unet.progress import run


def add_finetune(sub) -> None:
    """Register ``napari-unet finetune``."""
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
                   help="with 16 or more annotated objects, train two halves, each without half of the annotation "
                        "(squares spread over it), and count each where it did not train; the output is their "
                        "average, its card says whether it beat the model it started from")
    p.add_argument("--channel-axis", type=int, default=None, help="axis holding channels, if any")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.set_defaults(func=run_finetune)


def run_finetune(args) -> int:
    """Fine-tune a model file (and its click network) on label files; write the results."""
    from napari_unet.clicks.segmenter import load_click_model  # torch: imported by the commands that need it
    from napari_unet.finetune.both import CLICK_SHARE, finetune_both_iter
    from napari_unet.model.files import load_model, save_model, trainable

    for name in ("labels", "annotated"):
        given = getattr(args, name)
        if given is not None and len(given) != len(args.image):
            raise ValueError(f"give one --{name} file per --image ({len(args.image)}), got {len(given)}")
    model = trainable(load_model(args.model))
    click_model = load_click_model(args.click_model) if args.click_output else None
    images = [read_image(p) for p in args.image]
    labels = [read_image(p) for p in args.labels]
    annotated = [read_image(p) != 0 for p in args.annotated] if args.annotated else None
    job = finetune_both_iter(model, click_model, images, labels, annotated=annotated, max_steps=args.steps,
                             max_seconds=args.max_seconds, click_share=CLICK_SHARE if click_model else 0.0,
                             device=args.device, channel_axis=args.channel_axis, validate=args.validate)
    with tqdm(total=args.steps, unit="step", file=sys.stderr, mininterval=2) as bar:
        result = run(job, lambda step: _show(bar, step))
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


def _show(bar, step) -> None:
    """A fine-tuning step on the bar: the network and its loss, or how far a check has got."""
    from napari_unet.training.engine import TrainProgress

    record = step.record
    if not isinstance(record, TrainProgress):  # the models segment the corrections
        bar.set_description(f"{record.stage} {record.done}/{record.total}")
        bar.refresh()
        return
    bar.set_description(step.network)
    bar.n = record.step
    bar.set_postfix(loss=f"{record.loss:.3f}")
