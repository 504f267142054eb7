"""A layer held lazily from a zarr on disk is segmented block by block into zarr-backed labels."""

from __future__ import annotations

import dask.array as da
import numpy as np
import zarr
from _qt_helpers import disk_labels, disks, run_segment
from napari.layers._source import layer_source  # napari 0.9: how readers tag a layer with its file


def _zarr_layer(viewer, path, image):
    zarr.save_array(str(path), image, zarr_format=2)
    lazy = da.from_zarr(str(path))
    with layer_source(path=str(path)):
        return viewer.add_image(lazy, name="big")


def test_a_zarr_backed_layer_becomes_zarr_backed_labels_without_loading_it(viewer_widget, qtbot, tmp_path):
    viewer, widget = viewer_widget
    tiled = np.tile(disks((96, 128), n=6), (3, 3))  # (stitching across blocks: tests/distributed)
    layer = _zarr_layer(viewer, tmp_path / "scan.zarr", (tiled * 1000).astype(np.uint16))
    assert isinstance(layer.data, da.Array)
    widget.image.set_current(layer)
    run_segment(qtbot, widget)

    masks = viewer.layers["big masks"]
    assert isinstance(masks.data, zarr.Array), type(masks.data)  # on disk, not in memory
    assert (tmp_path / "scan_masks.zarr").is_dir()
    found = np.asarray(masks.data[:])
    expected = disk_labels(tiled)
    assert len(np.unique(found)) - 1 == len(np.unique(expected)) - 1  # one object per disk
    assert "objects in 'big masks', written block by block" in widget.status.text()

    masks.data[0:4, 0:4] = 99  # what a brush stroke does: it lands in the file
    assert zarr.open_array(str(tmp_path / "scan_masks.zarr"), mode="r")[0, 0] == 99


def test_segment_again_resumes_the_run_already_on_disk(viewer_widget, qtbot, tmp_path):
    viewer, widget = viewer_widget
    layer = _zarr_layer(viewer, tmp_path / "scan.zarr", (disks((96, 128), n=6) * 1000).astype(np.uint16))
    widget.image.set_current(layer)
    run_segment(qtbot, widget)
    run_segment(qtbot, widget)
    assert "from an earlier run" in widget.status.text()
    assert not (tmp_path / "scan_masks-2.zarr").exists()
    assert len(viewer.layers) == 2  # the image and one masks layer
