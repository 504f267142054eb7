"""`napari-unet` command line: the same core functions the widgets call.

Each subcommand is an ``add_<name>(subparsers)`` function in a module of its own that
registers its parser and sets ``func``; :func:`main` dispatches. ``info`` and ``demo``
are small enough to live here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from napari_unet.cli.common import error
from napari_unet.cli.export import add_export
from napari_unet.cli.finetune import add_finetune
from napari_unet.cli.segment import add_segment
from napari_unet.cli.train import add_train


def add_info(sub) -> None:
    """Register ``napari-unet info``."""
    p = sub.add_parser("info", help="print a model file's architecture and card")
    p.add_argument("model", nargs="?", type=Path, help="model file (default: the shipped model)")
    p.add_argument("--model", dest="model_option", type=Path, help="the model file, as an option")
    p.set_defaults(func=run_info)


def run_info(args) -> int:
    """Print a model file's header (architecture and card) as JSON, then its training plan in words."""
    from napari_unet.model.files import DEFAULT_MODEL, read_header
    from napari_unet.training.plan import Plan

    header = read_header(args.model_option or args.model or DEFAULT_MODEL)
    print(json.dumps(header, indent=2))
    plan = header["card"].get("plan") if isinstance(header["card"], dict) else None
    if plan:
        print("\ntraining plan:\n" + Plan.from_dict(plan).describe())
    return 0


def add_demo(sub) -> None:
    """Register ``napari-unet demo``."""
    p = sub.add_parser("demo", help="open napari with the sample image, the widgets docked, segmented")
    p.add_argument("--screenshot", type=Path, help="wait for the result, save the window here, exit")
    p.add_argument("--model", type=Path, help="model file (default: the shipped nuclei model)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait with --screenshot")
    p.add_argument("--medical", action="store_true",
                   help="the MR phantom instead: train a model from five of its slices, show its class map")
    p.add_argument("--seconds", type=float, default=120.0, help="with --medical: the training budget")
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    """Open the demo viewer (see :func:`napari_unet._qt.demo.run_demo` and ``run_medical_demo``)."""
    if args.medical:
        if args.model is not None:
            raise ValueError("--medical trains its own model; leave out --model")
        if not args.seconds > 0:
            raise ValueError(f"--seconds must be more than 0, got {args.seconds:g}")
        from napari_unet._qt.demo import run_medical_demo

        return run_medical_demo(screenshot=args.screenshot, seconds=args.seconds, timeout=args.timeout)
    from napari_unet._qt.demo import run_demo as demo

    return demo(screenshot=args.screenshot, model=args.model, timeout=args.timeout)


COMMANDS = [add_segment, add_info, add_train, add_finetune, add_export, add_demo]


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
        error(str(exc))
        return 2
    except KeyboardInterrupt:
        error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
