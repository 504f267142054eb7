"""Region layers whose scale and translate differ from the image's, on the image's pixel grid."""

from __future__ import annotations

import numpy as np
import pytest
from _qt_helpers import disks

from napari_unet._qt.finetune.annotations import REGION, snapshot
from napari_unet._qt.finetune.region_layers import region_mask
from napari_unet._qt.session import session_for


@pytest.fixture
def viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((40, 60), np.float32), name="img", scale=(0.5, 0.5), translate=(10, 0))
    return viewer


def test_a_half_resolution_labels_region_is_resampled(viewer):
    image = viewer.layers["img"]
    coarse = np.zeros((10, 15), np.int32)
    coarse[2:4, 3:6] = 1  # world y 12..16 (translate 10 + 2..4), x 6..12
    region = viewer.add_labels(coarse, scale=(2, 2), translate=(6, 0))  # world y = 2 * row + 6
    mask = region_mask(region, image, (0, 1), (40, 60))
    expected = np.zeros((40, 60), bool)
    ys, xs = np.mgrid[:40, :60]
    wy, wx = ys * 0.5 + 10, xs * 0.5  # image pixel centres in world coordinates
    row, col = np.floor((wy - 6) / 2 + 0.5), np.floor(wx / 2 + 0.5)
    expected[(row >= 2) & (row < 4) & (col >= 3) & (col < 6)] = True
    np.testing.assert_array_equal(mask, expected)
    # region rows 2-3 cover world y 9..13, columns 3-5 world x 5..11: image rows 0-5, columns 10-21
    ys, xs = np.nonzero(mask)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (0, 5, 10, 21) and mask.sum() == 6 * 12


def test_a_moved_shapes_region_lands_on_the_image_grid(viewer):
    image = viewer.layers["img"]
    box = np.array([[0, 0], [0, 10], [5, 10], [5, 0]], float)  # shapes data coords
    region = viewer.add_shapes([box], shape_type="rectangle", translate=(12, 4))  # world y 12..17, x 4..14
    mask = region_mask(region, image, (0, 1), (40, 60))
    ys, xs = np.nonzero(mask)
    # world -> image data: ((y 12..17) - 10) / 0.5 = rows 4..14, (x 4..14) / 0.5 = cols 8..28
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (4, 14, 8, 28)


def test_a_2d_region_covers_every_plane_of_a_stack(make_napari_viewer):
    viewer = make_napari_viewer()
    stack = viewer.add_image(np.zeros((3, 20, 20), np.float32), name="stack")
    region = viewer.add_labels(np.pad(np.ones((5, 5), np.int32), ((0, 15), (0, 15))))
    mask = region_mask(region, stack, (0, 1, 2), (3, 20, 20))
    assert mask.shape == (3, 20, 20) and mask[:, :5, :5].all() and mask.sum() == 75


def test_a_rotated_region_is_refused_with_a_message(viewer):
    region = viewer.add_labels(np.ones((40, 60), np.int32), rotate=30)
    with pytest.raises(ValueError, match="rotated"):
        region_mask(region, viewer.layers["img"], (0, 1), (40, 60))


def test_fine_tuning_learns_from_a_scaled_region(make_napari_viewer):
    viewer = make_napari_viewer()
    session = session_for(viewer)
    image = viewer.add_image(disks(), name="img", scale=(2, 2))
    from _qt_helpers import disk_labels

    masks = viewer.add_labels(disk_labels(disks()), name="img masks", scale=(2, 2))
    region = viewer.add_labels(np.zeros((24, 32), np.int32), scale=(8, 8), name="checked")
    region.data[:2, :2] = 1  # world 0..16 (pixel centres -4..12): image rows/cols 0..7
    data = snapshot(viewer, [(image, masks)], REGION, 1, session.edits, region=region)
    annotated = data.parts[0].annotated
    assert annotated[:6, :6].all() and annotated.sum() == 36  # image pixels at world 0..10
    assert data.n_objects == 1  # only the first disk reaches into the region
