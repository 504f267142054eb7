"""Block-wise segmentation of images larger than memory: zarr/OME-Zarr in, labels out.

One block function (:func:`~napari_unet.distributed.block.segment_block`) runs the same
inference as :func:`napari_unet.segment` on a block and its halo; stitching joins the
objects that cross block faces. Two drivers run it: :func:`segment_blocks_iter`, a
plain loop in this process, and :func:`segment_zarr` on dask.distributed (a local
cluster of processes, or any running cluster by address).
"""

from napari_unet._lazy import lazy_names

# Imported on first use (PEP 562): the Segment widget reads block plans (``plan``) to
# resume a zarr run, and dask.distributed (~0.2-0.6 s of imports) is needed only to run one.
_API = {
    "segment_zarr": "napari_unet.distributed.cluster",
    "segment_zarr_iter": "napari_unet.distributed.cluster",
    "BlockReport": "napari_unet.distributed.local",
    "segment_blocks_iter": "napari_unet.distributed.local",
    "BlockSettings": "napari_unet.distributed.plan",
}


__getattr__ = lazy_names(__name__, _API, globals())


__all__ = ["BlockReport", "BlockSettings", "segment_blocks_iter", "segment_zarr", "segment_zarr_iter"]
