"""`napari-unet` command line: the same core functions the widgets call.

Each subcommand is an ``add_<name>(subparsers)`` function that registers its parser
and sets ``func``; :func:`main` dispatches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _error(message: str) -> None:
    print(f"napari-unet: {message}", file=sys.stderr)


def add_segment(sub) -> None:
    p = sub.add_parser("segment", help="segment images into instance-label TIFFs")
    p.add_argument("inputs", nargs="+", help="image files (TIFF/PNG/JPEG), globs or folders")
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for <name>_masks.tif")
    p.add_argument("--model", type=Path, help="model file (default: the shipped nuclei model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.add_argument("--tile-size", type=int, default=512, help="tile edge in pixels (default 512)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    p.add_argument("--channel-axis", type=int, default=None, help="axis holding channels, if any")
    p.add_argument("--min-size", type=int, default=None, help="remove objects smaller than this")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run_segment)


def run_segment(args) -> int:
    from tqdm import tqdm

    from .instances import InstanceParams
    from .io import expand_inputs, read_image, write_labels
    from .modelfile import load_model
    from .segment import segment_iter

    model = load_model(args.model)
    files, missing = expand_inputs(args.inputs)
    for item in missing:
        _error(f"{item}: no such file, or no images in that folder")
    args.output.mkdir(parents=True, exist_ok=True)
    params = InstanceParams() if args.min_size is None else InstanceParams(min_size=args.min_size)
    failed = len(missing)
    for path in files:
        out = args.output / f"{path.stem}_masks.tif"
        if out.exists() and not args.overwrite:
            _error(f"{out} exists; pass --overwrite to replace it")
            failed += 1
            continue
        try:
            image = read_image(path)
            job = segment_iter(
                image, model, channel_axis=args.channel_axis, device=args.device,
                params=params, tile_size=args.tile_size, overlap=args.overlap,
            )
            with tqdm(desc=path.name, unit="tile", leave=False, file=sys.stderr) as bar:
                while True:
                    try:
                        step = next(job)
                    except StopIteration as stop:
                        result = stop.value
                        break
                    if step.stage == "predict":
                        bar.total = step.total
                        bar.n = step.done
                        bar.refresh()
            write_labels(out, result.labels)
            print(f"{path} -> {out} ({int(result.labels.max())} objects)")
        except ValueError as exc:
            _error(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            failed += 1
    return 1 if failed else 0


def add_info(sub) -> None:
    p = sub.add_parser("info", help="print a model file's architecture and card")
    p.add_argument("model", nargs="?", type=Path, help="model file (default: the shipped model)")
    p.set_defaults(func=run_info)


def run_info(args) -> int:
    from .modelfile import DEFAULT_MODEL, read_header

    header = read_header(args.model or DEFAULT_MODEL)
    print(json.dumps(header, indent=2))
    return 0


COMMANDS = [add_segment, add_info]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-unet`` console script."""
    parser = argparse.ArgumentParser(
        prog="napari-unet", description="U-Net segmentation for napari and the command line"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:  # ModelFileError is a ValueError
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
