"""Clicks in a volume: 3D objects through planes, in the 2D and the 3D view, and the click markers."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from _clicking import WAIT_MS, click, masks, settle
from scipy import ndimage as ndi

from napari_unet._qt.layers import commit_memory
from napari_unet._qt.session import session_for
from napari_unet.model.onnx_runtime import OnnxUNet, cached_network
from napari_unet.synth.volumes import VolumeConfig, synth_volume

# well-separated, evenly bright nuclei: the threshold click model sees each one alone
SPARSE = VolumeConfig(z_ratio=(1.5, 1.5), size=(16, 18), coverage=(0.08, 0.1), p_clustered=0.0, packing=(1.3, 1.4),
                      attenuation=(0.0, 0.0), haze=(0.0, 0.0), background=(0.05, 0.05), photons=(2000, 3000),
                      texture=(0.0, 0.05), spots=(0.0, 0.0), brightness_spread=(0.05, 0.1), dome=(0.0, 0.1))


def nuclei():
    volume = synth_volume(1, (24, 96, 96), SPARSE)
    return volume.image, volume.labels


def inside(truth, label):
    """A voxel deep inside nucleus ``label`` (its centre of mass)."""
    return tuple(int(round(c)) for c in ndi.center_of_mass(truth == label))


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def ellipsoid(shape=(20, 64, 64), centre=(10, 32, 32), radii=(7, 12, 12)):
    grid = np.mgrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1


def test_one_click_gives_the_3d_object_with_one_id_through_its_planes(clicker, qtbot):
    image, truth = nuclei()
    viewer, widget = clicker(image)
    voxel = inside(truth, 5)
    viewer.dims.set_point(0, voxel[0])
    click(viewer, voxel)
    settle(qtbot, widget)
    labels = masks(viewer).data
    assert set(np.unique(labels)) == {0, 1}
    planes = np.unique(np.nonzero(labels)[0])
    assert len(planes) >= 8 and np.all(np.diff(planes) == 1)  # one id through consecutive planes
    assert iou(labels == 1, truth == 5) > 0.8
    assert "through planes" in widget.status.text()


def test_a_click_in_another_plane_extends_the_3d_object_and_undo_takes_it_back(clicker, qtbot):
    body = ellipsoid()
    image = np.where(body, 110.0, 10.0).astype(np.float32)
    image[11] = 10.0  # a dark plane cuts the nucleus: carrying stops there
    viewer, widget = clicker(image)
    click(viewer, (7, 32, 32))
    settle(qtbot, widget)
    first = masks(viewer).data.copy()
    assert np.array_equal(np.unique(np.nonzero(first)[0]), np.arange(4, 11))  # planes 3 and 17: one pixel
    click(viewer, (13, 32, 32))  # the same nucleus beyond the dark plane: the same object
    settle(qtbot, widget)
    both = masks(viewer).data
    assert set(np.unique(both)) == {0, 1}
    assert np.array_equal(np.unique(np.nonzero(both)[0]), [*range(4, 11), *range(12, 17)])
    assert np.array_equal(both[12:17] == 1, body[12:17]) and np.array_equal(both[:11], first[:11])
    markers = viewer.layers["cells clicks"]
    assert len(markers.data) == 2
    masks(viewer).undo()  # one step takes back every plane the second click changed ...
    assert np.array_equal(masks(viewer).data, first)
    qtbot.waitUntil(lambda: len(markers.data) == 1, timeout=WAIT_MS)  # ... and its marker (drawn by the event loop)
    masks(viewer).undo()
    assert not masks(viewer).data.any()
    qtbot.waitUntil(lambda: len(markers.data) == 0, timeout=WAIT_MS)


def test_a_negative_click_in_another_plane_changes_the_3d_object_there(clicker, qtbot):
    body = ellipsoid()
    viewer, widget = clicker(np.where(body, 110.0, 10.0).astype(np.float32))
    click(viewer, (10, 32, 32))
    settle(qtbot, widget)
    whole = masks(viewer).data.copy()
    assert np.array_equal(whole == 1, body & (whole == 1)) and (whole == 1).sum() > 0.9 * body.sum()
    click(viewer, (6, 32, 40), modifiers=["Shift"])  # off the object in plane 6
    settle(qtbot, widget)
    after = masks(viewer).data
    assert after[6, 32, 40] == 0 and after[6, 32, 32] == 1 and after[10, 32, 40] == 1
    assert np.array_equal(np.nonzero(after != whole)[0], np.full((after != whole).sum(), 6))
    masks(viewer).undo()
    assert np.array_equal(masks(viewer).data, whole)


def test_a_click_in_the_3d_view_takes_the_object_along_the_ray(clicker, qtbot):
    image, truth = nuclei()
    viewer, widget = clicker(image)
    viewer.dims.ndisplay = 3
    _, y, x = inside(truth, 5)
    click(viewer, (-5.0, y, x), view_direction=(1.0, 0.0, 0.0))  # looking down the planes at (y, x)
    settle(qtbot, widget)
    labels = masks(viewer).data
    assert set(np.unique(labels)) == {0, 1}
    assert iou(labels == 1, truth == 5) > 0.8
    click(viewer, (-5.0, 2, 2), view_direction=(1.0, 0.0, 0.0))  # a corner with nothing bright
    settle(qtbot, widget)
    assert widget.status.text().startswith("Nothing bright along that line of sight")


def test_the_3d_view_says_why_a_time_series_is_not_clicked_there(clicker, qtbot):
    image, _ = nuclei()
    viewer, widget = clicker(image, metadata={"napari_unet_stack_axis": "T"})
    viewer.dims.ndisplay = 3
    click(viewer, (-5.0, 40, 40), view_direction=(1.0, 0.0, 0.0))
    settle(qtbot, widget)
    assert "needs a volume" in widget.status.text() and not masks(viewer).data.any()


def test_markers_show_the_clicks_until_the_object_is_finished(clicker, qtbot):
    from napari.layers import Points

    viewer, widget = clicker()  # the 2D image of three disks
    click(viewer, (70, 50))
    click(viewer, (70, 58), modifiers=["Shift"])
    settle(qtbot, widget)
    markers = viewer.layers["cells clicks"]
    assert isinstance(markers, Points)  # never a Labels layer: nothing to write or to fine-tune on
    assert np.allclose(markers.data, [(70, 50), (70, 58)])
    green, red = markers.face_color
    assert green[1] > 0.8 > green[0] and red[0] > 0.8 > red[1]
    assert set(np.unique(masks(viewer).data)) == {0, 1}  # the markers are not in the labels
    assert viewer.layers.selection.active is not markers
    widget.end_button.click()
    qtbot.waitUntil(lambda: len(markers.data) == 0, timeout=WAIT_MS)
    click(viewer, (30, 30))  # the next object shows only its own click
    settle(qtbot, widget)
    assert np.allclose(markers.data, [(30, 30)])


def test_markers_are_redrawn_once_for_clicks_handled_in_one_go(clicker, qtbot):
    viewer, widget = clicker()
    click(viewer, (70, 50))
    settle(qtbot, widget)
    markers = viewer.layers["cells clicks"]
    redrawn = []
    markers.events.set_data.connect(redrawn.append)
    click(viewer, (30, 30))  # two new objects before the event loop runs (a fast user) ...
    click(viewer, (30, 80))
    settle(qtbot, widget)
    assert np.allclose(markers.data, [(30, 80)]) and len(redrawn) == 1  # ... one redraw: the last object's click
    widget.tool.end_object()
    qtbot.waitUntil(lambda: len(markers.data) == 0, timeout=WAIT_MS)
    redrawn.clear()
    click(viewer, (70, 50))  # a click, then Esc at once: nothing to redraw
    widget.tool.end_object()
    settle(qtbot, widget)
    qtbot.wait(20)
    assert len(markers.data) == 0 and redrawn == []
    assert set(np.unique(masks(viewer).data)) == {0, 1, 2, 3}  # every click still made its object


def test_hovering_in_a_volume_prepares_the_first_click(clicker, qtbot):
    from _qt_helpers import threshold_unet
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_move_callbacks

    from napari_unet._qt.session import session_for

    body = ellipsoid()
    viewer, widget = clicker(np.where(body, 110.0, 10.0).astype(np.float32))
    seg_model = threshold_unet()
    session_for(viewer).set_model(seg_model)
    widget.first_from_model.setChecked(True)  # the segmentation model answers the clicked plane
    passes = []
    seg_model.register_forward_hook(lambda *_: passes.append(1))
    settle(qtbot, widget)
    viewer.dims.set_point(0, 10)
    hover = read_only_mouse_event(type="mouse_move", position=(10.0, 32.0, 32.0), dims_displayed=[1, 2],
                                  pos=np.zeros(2))
    mouse_move_callbacks(viewer, hover)
    qtbot.waitUntil(lambda: len(passes) > 0, timeout=60_000)  # the cursor rests: its window is segmented
    settle(qtbot, widget)
    hovered = len(passes)
    click(viewer, (10, 32, 32))
    settle(qtbot, widget)
    assert len(passes) == hovered  # the clicked plane needed no pass of the segmentation model
    labels = masks(viewer).data
    assert set(np.unique(labels)) == {0, 1} and (labels == 1).sum() > 0.9 * body.sum()


@pytest.mark.slow
def test_click_mode_on_a_volume_exports_the_click_network_and_later_clicks_run_it(clicker, qtbot, monkeypatch):
    monkeypatch.setenv("NAPARI_UNET_ONNX", "1")  # the test suite turns it off elsewhere
    image, truth = nuclei()
    viewer, widget = clicker(image)  # click mode on: the volume prepared, the export started
    model = session_for(viewer).click_model
    qtbot.waitUntil(lambda: cached_network(model) is not None, timeout=240_000)
    passes = []
    run = OnnxUNet.forward
    monkeypatch.setattr(OnnxUNet, "forward", lambda self, x: passes.append(x.shape) or run(self, x))
    voxel = inside(truth, 5)
    viewer.dims.set_point(0, voxel[0])
    click(viewer, voxel)
    settle(qtbot, widget)
    assert passes, "the click did not run the exported graph"
    labels = masks(viewer).data
    assert set(np.unique(labels)) == {0, 1} and iou(labels == 1, truth == 5) > 0.8


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise(MADV_POPULATE_WRITE) is Linux's")
def test_a_masks_layers_memory_is_committed_without_changing_a_value():
    data = np.zeros((64, 512, 512), np.int32)  # 64 MB of pages the kernel has not handed out yet
    data[3, 4, 5] = 7
    before = _resident()
    assert commit_memory(data)
    assert _resident() - before > 0.9 * data.nbytes  # the pages are the process's now: no fault at a click
    assert data[3, 4, 5] == 7 and data.sum() == 7


def _resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
