"""Block-wise segmentation of images larger than memory: zarr/OME-Zarr in, labels out.

One block function (:func:`~napari_unet.distributed.block.segment_block`) runs the same
inference as :func:`napari_unet.segment` on a block and its halo; stitching joins the
objects that cross block faces. Two drivers run it: :func:`segment_blocks_iter`, a
plain loop in this process, and :func:`segment_zarr` on dask.distributed (a local
cluster of processes, or any running cluster by address).
"""

from napari_unet.distributed.cluster import segment_zarr, segment_zarr_iter
from napari_unet.distributed.local import BlockReport, segment_blocks_iter
from napari_unet.distributed.plan import BlockSettings

__all__ = ["BlockReport", "BlockSettings", "segment_blocks_iter", "segment_zarr", "segment_zarr_iter"]
