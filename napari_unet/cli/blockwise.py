"""`napari-unet segment IMAGE.zarr -o OUT.zarr`: zarr/OME-Zarr images block by block.

In this process by default; ``--scheduler local`` on a local dask cluster of worker
processes, ``--scheduler tcp://HOST:PORT`` on a running one (see docs/scale.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from napari_unet.cli.common import error
from napari_unet.io.zarr import is_zarr
from napari_unet.progress import run


def add_block_options(p) -> None:
    """The options of ``napari-unet segment`` for zarr inputs."""
    g = p.add_argument_group("zarr and OME-Zarr images (segmented block by block, see docs/scale.md)")
    g.add_argument("--scheduler", help="'local' starts a dask cluster of worker processes on this machine; "
                                       "tcp://HOST:PORT uses a running one (default: blocks one after another "
                                       "in this process)")
    g.add_argument("--workers", type=int, help="worker processes of --scheduler local (default: up to 4)")
    g.add_argument("--threads-per-worker", type=int, default=1, help="tasks at once per worker (default 1)")
    g.add_argument("--memory-limit", default="auto", help="memory per worker of --scheduler local, e.g. 4GB "
                                                          "(default: the machine's shared out)")
    g.add_argument("--block-size", type=int, help="block edge in pixels (default 2048 in 2D, 192 in 3D)")
    g.add_argument("--plain-zarr", action="store_true", help="write a plain zarr array, not OME-Zarr labels")


def zarr_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """The inputs that are zarr arrays or OME-Zarr images, and the others."""
    zarrs = [Path(p) for p in inputs if is_zarr(p)]
    return zarrs, [p for p in inputs if not is_zarr(p)]


def zarr_output(src: Path, output: Path, single: bool) -> Path:
    """Where ``src``'s labels go: ``-o`` itself when it names one ``.zarr`` (or the image's
    ``labels/<name>``), otherwise ``<output>/<stem>_labels.zarr``.
    """
    if single and (output.suffix == ".zarr" or output.parent.name == "labels"):
        return output
    return output / f"{src.stem}_labels.zarr"


def segment_zarrs(zarrs: list[Path], model, device, params, args) -> int:
    """Segment each zarr input block by block; one line per input; returns the failures."""
    from napari_unet.distributed.cluster import progress_bar, segment_zarr_iter  # dask: only for zarr inputs
    from napari_unet.distributed.local import segment_blocks_iter

    failed = 0
    settings = {"block_size": args.block_size, "zoom": args.zoom, "params": params, "tile_size": args.tile_size,
                "overlap": args.overlap, "device": str(device), "ome": not args.plain_zarr,
                "spacing": tuple(args.spacing) if args.spacing else None}
    for src in zarrs:
        dst = zarr_output(src, args.output, len(zarrs) == 1)
        try:
            if args.scheduler:
                job = segment_zarr_iter(src, dst, model, client=args.scheduler, axes=args.axes,
                                        overwrite=args.overwrite, workers=args.workers,
                                        threads_per_worker=args.threads_per_worker, memory_limit=args.memory_limit,
                                        on_start=lambda link: print(f"dask dashboard: {link}", file=sys.stderr),
                                        **settings)
            else:
                job = segment_blocks_iter(src, dst, model, axes=args.axes, overwrite=args.overwrite, **settings)
            with tqdm(desc=src.name, unit="block", leave=False, file=sys.stderr) as bar:
                report = run(job, progress_bar(bar))
        except Exception as exc:  # one line per input, whatever went wrong; the others go on
            error(str(exc) if str(src) in str(exc) or str(dst) in str(exc) else f"{src}: {exc}")
            failed += 1
            continue
        if report.failed:
            for line in report.failed:
                error(f"{src}: {line}")
            error(f"{src}: {len(report.failed)} block(s) failed; run the same command again to retry them "
                  "(finished blocks are kept)")
            failed += 1
            continue
        notes = [f"{report.objects} objects", f"{report.blocks} blocks"]
        if report.resumed:
            notes.append(f"{report.resumed} done by an earlier run")
        if report.empty:
            notes.append(f"{report.empty} empty")
        print(f"{src} -> {dst} ({', '.join(notes)})")
    return failed
