"""Block-wise segmentation in this process: the same labels as one pass, across block faces,
in 2D and 3D, resumable, into OME-Zarr that reads back with its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _block_images import BLOCK, balls_3d, disks_2d, write_ome_zarr, write_zarr
from scipy import ndimage as ndi

from napari_unet.distributed import segment_blocks_iter
from napari_unet.distributed.block import fitted_tiles
from napari_unet.inference.segment import segment
from napari_unet.inference.tiling import tile_slices, tile_starts
from napari_unet.io.zarr import open_labels, open_zarr
from napari_unet.progress import run
from napari_unet.training.metrics import average_precision


def read_labels(path) -> np.ndarray:
    return np.asarray(open_labels(path, mode="r")[...])


def one_id(labels: np.ndarray, where: tuple) -> int:
    ids = np.unique(labels[where])
    return len(ids[ids > 0])


def test_blocks_match_one_pass_and_objects_cross_faces(tmp_path, threshold_model):
    image = disks_2d()
    src = write_zarr(tmp_path / "image.zarr", image)
    report = run(segment_blocks_iter(src, tmp_path / "labels.zarr", threshold_model, block_size=BLOCK))
    labels = read_labels(tmp_path / "labels.zarr")
    whole = segment(image, threshold_model)
    assert report.complete and report.blocks == 16 and report.segmented == 16
    assert average_precision(whole, labels, [0.5])[0] >= 0.98
    assert report.objects == len(np.unique(labels)) - 1 == whole.max()
    assert one_id(labels, np.s_[100:109, 44:84]) == 1  # the bar crosses a block border: one object
    assert report.empty >= 1  # the empty corner's block was skipped ...
    assert not labels[:BLOCK, 3 * BLOCK:].any()  # ... and holds no objects


def test_tiles_fitted_to_blocks_stay_within_tile_size_and_match_one_pass(tmp_path, threshold_model):
    for seen in [(800, 800), (960, 800), (1440, 1440), (513, 2560), (300, 300)]:
        fitted = fitted_tiles(seen, 512, 0.25, 16)
        assert all(t <= 512 and t % 16 == 0 for t in fitted)  # no tile larger than asked: memory holds
        assert len(tile_slices(seen, fitted, 0.25)) == len(tile_slices(seen, 512, 0.25))  # no more passes
        for n, t in zip(seen, fitted):
            starts = tile_starts(n, t, 0.25)
            assert all(b - a <= 0.75 * t for a, b in zip(starts, starts[1:]))  # neighbours overlap as asked
    image = disks_2d()
    src = write_zarr(tmp_path / "image.zarr", image)
    run(segment_blocks_iter(src, tmp_path / "labels.zarr", threshold_model, block_size=BLOCK, tile_size=40))
    whole = segment(image, threshold_model, tile_size=40)
    assert average_precision(whole, read_labels(tmp_path / "labels.zarr"), [0.5])[0] >= 0.98


def test_an_interrupted_run_resumes(tmp_path, threshold_model):
    src = write_zarr(tmp_path / "image.zarr", disks_2d())
    dst = tmp_path / "labels.zarr"
    job = segment_blocks_iter(src, dst, threshold_model, block_size=BLOCK)
    for step in job:  # stopped after 5 blocks, as a killed process would be
        if step.stage == "blocks" and step.done == 5:
            job.close()
            break
    report = run(segment_blocks_iter(src, dst, threshold_model))  # no size given: the run's own blocks
    assert report.resumed == 5 and report.segmented == 11 and report.complete
    fresh = run(segment_blocks_iter(src, tmp_path / "fresh.zarr", threshold_model, block_size=BLOCK))
    assert np.array_equal(read_labels(dst), read_labels(tmp_path / "fresh.zarr"))
    assert fresh.objects == report.objects


def test_ome_zarr_in_labels_group_out(tmp_path, threshold_model):
    image = disks_2d((128, 192))
    src = Path(write_ome_zarr(tmp_path / "image.zarr", image, "YX", (0.5, 0.25)))
    opened = open_zarr(src)
    assert opened.axes == "YX" and opened.spacing == (0.5, 0.25)
    run(segment_blocks_iter(src, src / "labels" / "nuclei", threshold_model, block_size=BLOCK))
    attrs = json.loads((src / "labels" / "nuclei" / ".zattrs").read_text())
    assert attrs["image-label"]["source"]["image"] == "../../"
    assert json.loads((src / "labels" / ".zattrs").read_text())["labels"] == ["nuclei"]
    labels = open_zarr(src / "labels" / "nuclei")
    assert labels.spacing == (0.5, 0.25) and labels.shape == image.shape
    assert average_precision(segment(image, threshold_model), np.asarray(labels.array[...]), [0.5])[0] >= 0.98


@pytest.mark.slow
def test_a_volume_is_stitched_in_3d(tmp_path, threshold_model):
    volume = balls_3d()
    src = write_zarr(tmp_path / "volume.zarr", volume, chunks=16)
    report = run(segment_blocks_iter(src, tmp_path / "labels.zarr", threshold_model, block_size=(16, 40, 40),
                                     spacing=(1.0, 1.0, 1.0)))
    labels = read_labels(tmp_path / "labels.zarr")
    whole = segment(volume, threshold_model, axes="ZYX")
    assert report.blocks == 2 * 2 * 2 and report.complete
    assert average_precision(whole, labels, [0.5])[0] >= 0.98
    ball = ndi.label(volume > 60)[0]
    crossing = ball == ball[16, 40, 20]  # centred on the Z face at 16 and the Y face at 40
    assert one_id(labels, crossing) == 1 and report.objects == ndi.label(volume > 60)[1]


def test_bad_destinations_say_what_to_do(tmp_path, threshold_model):
    src = write_zarr(tmp_path / "image.zarr", disks_2d((64, 64)))
    (tmp_path / "taken.zarr").mkdir()
    with pytest.raises(ValueError, match="exists; pass overwrite"):
        run(segment_blocks_iter(src, tmp_path / "taken.zarr", threshold_model))
    with pytest.raises(ValueError, match="over the image"):
        run(segment_blocks_iter(src, src, threshold_model))
    with pytest.raises(ValueError, match="not a zarr"):
        run(segment_blocks_iter(tmp_path / "taken.zarr", tmp_path / "out.zarr", threshold_model))
    run(segment_blocks_iter(src, tmp_path / "out.zarr", threshold_model, block_size=32))
    with pytest.raises(ValueError, match="another run"):
        run(segment_blocks_iter(src, tmp_path / "out.zarr", threshold_model, block_size=64))
