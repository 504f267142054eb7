"""`napari-unet export`: a model file out as a BioImage Model Zoo package, ONNX or TorchScript."""

from __future__ import annotations

from pathlib import Path

from napari_unet.cli.common import error

SUFFIXES = {"bioimageio": ".zip", "onnx": ".onnx", "torchscript": ".pt"}  # what -o should end with


def add_export(sub) -> None:
    """Register ``napari-unet export``."""
    p = sub.add_parser("export", help="write a model for other tools: Model Zoo package, ONNX or TorchScript")
    p.add_argument("model", nargs="?", type=Path, help="model file (default: the shipped nuclei model)")
    p.add_argument("-f", "--format", choices=tuple(SUFFIXES), default="bioimageio",
                   help="bioimageio: a BioImage Model Zoo package (.zip) with all three weight formats, "
                        "test tensors and a README (default); onnx; torchscript")
    p.add_argument("-o", "--output", required=True, type=Path, help="file to write (.zip, .onnx or .pt)")
    p.add_argument("--sample", type=Path,
                   help="bioimageio: image (TIFF/PNG) for the test tensors and cover (default: a generated one)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run_export)


def run_export(args) -> int:
    """Export one model; one line on success, one line on stderr per problem (exit 2)."""
    from napari_unet.io import read_image
    from napari_unet.model.export import export_model
    from napari_unet.model.files import load_model, trainable

    out: Path = args.output
    if out.exists() and not args.overwrite:
        error(f"{out} exists; pass --overwrite to replace it")
        return 2
    if out.suffix.lower() != SUFFIXES[args.format]:
        error(f"note: {args.format} files usually end with {SUFFIXES[args.format]}, writing {out} anyway")
    model = trainable(load_model(args.model), "export")
    sample = read_image(args.sample) if args.sample else None
    try:
        export_model(model, out, format=args.format, sample=sample)
    except ImportError as exc:  # the export extra is missing: say what to install, no traceback
        error(str(exc))
        return 2
    print(f"{args.model or 'shipped model'} -> {out} ({args.format}, {out.stat().st_size / 1e6:.1f} MB)")
    return 0
