"""`napari-unet segment`: images in, instance-label TIFFs out, one line per file."""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from napari_unet.cli.blockwise import add_block_options, segment_zarrs, zarr_inputs
from napari_unet.cli.common import error
from napari_unet.inference.doubts import out_of_depth
from napari_unet.io import expand_inputs, file_layout, output_paths, read_image_file, write_labels
from napari_unet.model.card import what_was_found
from napari_unet.progress import run

ORIENTATIONS = {"auto": None, "on": True, "off": False}  # --orientations: segment_iter's orientations


def add_segment(sub) -> None:
    """Register ``napari-unet segment``."""
    p = sub.add_parser("segment", help="segment images into instance-label TIFFs")
    p.add_argument("inputs", nargs="+", help="image files (TIFF/PNG/JPEG), globs or folders; zarr/OME-Zarr images")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="folder for <name>_masks.tif (zarr inputs: OUT.zarr, or IMAGE.zarr/labels/NAME)")
    p.add_argument("--model", type=Path, help="model file (default: the shipped nuclei model; with --axes naming a Z "
                   "and no C, the shipped 3D nuclei network)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                   help="what runs the network: torch (default) or onnx (ONNX Runtime, CPU; faster on many "
                        "CPUs, same answers; the graph is exported once per model and cached)")
    p.add_argument("--tile-size", type=int, default=512, help="tile edge in pixels (default 512)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    p.add_argument("--zoom", type=_zoom, default=None, metavar="auto|X",
                   help="magnification the network sees the image at (default auto: images of objects "
                        "under 10 px or over 22 px across are segmented again resampled; 1 = never)")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average each tile's 8 mirrored/rotated views "
                        "(8x slower, slightly more accurate)")
    p.add_argument("--channel-axis", type=int, default=None, help="axis holding channels, if any")
    p.add_argument("--axes", help="the images' axes as letters T Z C Y X, e.g. ZYX (3D objects through the "
                                  "planes), TYX (each frame), TZYX, YXC; default: 2D planes, a last axis of 2-4 "
                                  "is channels")
    p.add_argument("--spacing", type=float, nargs=3, metavar=("Z", "Y", "X"),
                   help="voxel size along Z, Y, X (e.g. 2 0.5 0.5): splits 3D objects by physical distance")
    p.add_argument("--orientations", choices=tuple(ORIENTATIONS), default="auto",
                   help="volumes (axes with a Z): also predict the ZY and ZX planes and average the three "
                        "(~3x the work; better 3D objects when voxels are near cubes). auto (default): when "
                        "--spacing (or the file's) has Z within 1.5x the in-plane spacing; on: always; off: never")
    p.add_argument("--min-size", type=int, default=None, help="remove objects smaller than this (pixels)")
    p.add_argument("--min-relative-size", type=float, default=None,
                   help="remove objects under this fraction of the median object area (default 0.15; 0 keeps all)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_block_options(p)
    p.set_defaults(func=run_segment)


def run_segment(args) -> int:
    """Segment every input file; one line per file, exit 1 if any failed."""
    from napari_unet.devices import resolve_device  # torch: imported by the commands that need it
    from napari_unet.model.files import load_model

    model = load_model(args.model)
    device = resolve_device(args.device)  # an unknown device is one line, before any file
    foreign = getattr(model, "fine_tunable", True) is False  # a Model Zoo model: its own runtime
    if foreign and (args.backend == "onnx" or zarr_inputs(args.inputs)[0]):
        error(f"{model.name} is a Model Zoo model that napari-unet did not write: it runs with its own "
              "processing, whole images only; drop --backend onnx and give TIFF/PNG/NIfTI files")
        return 2
    if args.backend == "onnx":
        if device.type != "cpu":
            error(f"--backend onnx runs on the CPU; drop --device {args.device} or use --backend torch")
            return 1
        from napari_unet.model.onnx_runtime import onnx_network

        print("exporting the network for ONNX Runtime (once per model; cached)...", file=sys.stderr)
        model = onnx_network(model)
    zarrs, others = zarr_inputs(args.inputs)
    files, missing = expand_inputs(others) if others or not zarrs else ([], [])
    for item in missing:
        error(f"{item}: no such file, or no images in that folder")
    if files or not zarrs:
        args.output.mkdir(parents=True, exist_ok=True)
    params = _params(model, args)
    failed = len(missing) + (segment_zarrs(zarrs, model, device, params, args) if zarrs else 0)
    for path, out in output_paths(files, args.output).items():  # planned first: two inputs never share one
        if out.exists() and not args.overwrite:
            error(f"{out} exists; pass --overwrite to replace it")
            failed += 1
            continue
        try:
            note = _segment_file(path, out, model, device, params, args)
            print(f"{path} -> {out} ({note})")
        except Exception as exc:  # one line per file, whatever went wrong (memory too); the batch goes on
            error(_file_error(path, out, exc))
            failed += 1
    return 1 if failed else 0


def _params(model, args):
    """The model's tuned post-processing, with the sizes given on the command line."""
    from napari_unet.inference.instances import model_params
    from napari_unet.model.files import model_card

    sizes = {"min_size": args.min_size, "min_relative_size": args.min_relative_size}
    return replace(model_params(model_card(model)), **{k: v for k, v in sizes.items() if v is not None})


@functools.lru_cache(maxsize=1)
def _volume_model():
    from napari_unet.model.files import VOLUME_MODEL, load_model

    return load_model(VOLUME_MODEL)


def _segment_file(path: Path, out: Path, model, device, params, args) -> str:
    """Segment one file into ``out``; returns what the output line says about it."""
    from napari_unet.inference.segment import segment_iter
    from napari_unet.model.files import VOLUME_MODEL, image_channels, model_card, shipped_model

    source = read_image_file(path)  # NIfTI/DICOM: with the spacing and affine the output keeps
    image, channel_axis, layout = source.data, args.channel_axis, ""
    if channel_axis is None and args.axes is None:
        image, channel_axis, layout = file_layout(image, image_channels(model))
    if args.model is None and args.backend == "torch" and shipped_model(args.axes, image.shape) == VOLUME_MODEL:
        model = _volume_model()  # no model named, a volume: the shipped 3D network, with its own settings
        params = _params(model, args)
    job = segment_iter(image, model, axes=args.axes, spacing=args.spacing or source.spacing, channel_axis=channel_axis,
                       device=device, params=params, tile_size=args.tile_size, overlap=args.overlap, zoom=args.zoom,
                       tta=args.tta, orientations=ORIENTATIONS[args.orientations])
    stages = set()  # what the run did, as its progress said

    with tqdm(desc=path.name, unit="tile", leave=False, file=sys.stderr) as bar:
        def on_step(step) -> None:
            stages.add(step.stage)
            _tile_bar(bar, step)

        result = run(job, on_step)
    write_labels(out, result.labels, source)
    notes = [what_was_found(result.labels, model_card(model))]
    if result.zoom != 1.0:
        notes.append(f"seen at zoom x{result.zoom:g}")
    if "orientations" in stages:  # what was done, whichever rule chose it
        notes.append("XY, ZY and ZX planes averaged")
    if layout:
        notes.append(layout)
    doubt = out_of_depth(result.labels, model_card(model))
    if doubt:  # last on the line: what to do instead
        notes.append(f"WARNING: {doubt}")
    return ", ".join(notes)


def _file_error(path: Path, out: Path, exc: Exception) -> str:
    """One line on what went wrong with one file, and what to do."""
    if isinstance(exc, MemoryError):
        return (f"{path}: not enough memory for this image; try a smaller --tile-size, fewer images at a "
                "time, or a machine with more memory")
    if isinstance(exc, OSError) and getattr(exc, "filename", None) is not None and str(path) not in str(exc.filename):
        return f"{path}: cannot write {out}: {exc.strerror or exc}"
    if isinstance(exc, (ValueError, OSError)):
        return str(exc) if str(path) in str(exc) else f"{path}: {exc}"
    return f"{path}: failed ({type(exc).__name__}: {exc}); the other files go on"


def _zoom(text: str) -> float | None:
    """``--zoom``: "auto" (None) or a magnification."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number such as 2, got {text!r}") from None


def _tile_bar(bar, step) -> None:
    if step.stage in ("predict", "zoom", "tta", "window", "measuring", "planes", "orientations"):
        bar.unit = "plane" if step.stage in ("measuring", "planes", "orientations") else "tile"
        bar.total, bar.n = step.total, step.done
        bar.refresh()
