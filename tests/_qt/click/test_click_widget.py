"""The click tool in a viewer: simulated mouse events through napari's callbacks."""

from __future__ import annotations

import numpy as np
import pytest
from _click_models import disk_image, threshold_click_unet, touching_pair
from _clicking import CENTRES, WAIT_MS, click, disk, masks, settle
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import mouse_move_callbacks
from qtpy.QtCore import Qt

from napari_unet._qt.click.widget import ClickWidget
from napari_unet._qt.session import session_for
from napari_unet.clicks.segmenter import farthest_point


def test_a_first_click_takes_the_segmentation_models_object(clicker, qtbot):
    from napari_unet import segment_click

    viewer, widget = clicker()
    session = session_for(viewer)
    widget.first_from_model.setChecked(True)
    click(viewer, (70, 50))
    settle(qtbot, widget)
    expected = segment_click(disk_image(), [(70, 50)], model=session.click_model, segmentation_model=session.model)
    assert np.array_equal(masks(viewer).data == 1, expected)
    assert (expected & disk((96, 128), (70, 50))).sum() / (expected | disk((96, 128), (70, 50))).sum() > 0.8
    click(viewer, (70, 58), modifiers=["Shift"])  # a negative click refines it: the click network
    settle(qtbot, widget)
    assert (masks(viewer).data == 1).sum() < expected.sum()


def test_click_adds_a_label_and_undo_removes_it(clicker, qtbot):
    viewer, widget = clicker()
    click(viewer, (30, 30))
    settle(qtbot, widget)
    labels = masks(viewer).data
    assert set(np.unique(labels)) == {0, 1}
    assert np.array_equal(labels == 1, disk(labels.shape, (30, 30)))
    masks(viewer).undo()
    assert not masks(viewer).data.any()


def test_a_click_just_outside_the_object_extends_it(clicker, qtbot):
    """Through the Plugins menu, where every layer read comes back as a new proxy object."""
    viewer, widget = clicker()
    click(viewer, (30, 30))
    settle(qtbot, widget)
    click(viewer, (30, 43))  # on the background, 3 px outside the disk: the same object
    settle(qtbot, widget)
    assert set(np.unique(masks(viewer).data)) == {0, 1}
    assert widget.status.text().startswith("Object 1: ") and "after 2 click(s)" in widget.status.text()


def test_each_object_gets_its_own_label_and_escape_ends_one(clicker, qtbot):
    viewer, widget = clicker()
    click(viewer, (30, 30))
    settle(qtbot, widget)
    click(viewer, (70, 50))  # far from the first object: a new one
    settle(qtbot, widget)
    assert set(np.unique(masks(viewer).data)) == {0, 1, 2}
    widget.tool.end_object()
    assert widget.tool.current is None


def test_negative_click_removes_part_in_one_undo_step(clicker, qtbot):
    viewer, widget = clicker()
    click(viewer, (30, 30))
    settle(qtbot, widget)
    full = masks(viewer).data.copy()
    click(viewer, (30, 38), modifiers=["Shift"])
    settle(qtbot, widget)
    shrunk = masks(viewer).data
    assert shrunk[30, 38] == 0 and shrunk[30, 30] == 1 and (shrunk == 1).sum() < (full == 1).sum()
    masks(viewer).undo()
    assert np.array_equal(masks(viewer).data, full)


def test_other_objects_pixels_are_kept(clicker, qtbot):
    viewer, widget = clicker()
    labels = viewer.add_labels(np.zeros((96, 128), np.int32), name="cells masks")
    left = disk((96, 128), (30, 30)) & (np.mgrid[:96, :128][1] < 30)
    labels.data[left] = 7
    click(viewer, (30, 36))  # on the disk's unlabelled half: a new object
    settle(qtbot, widget)
    assert (labels.data == 7).sum() == left.sum()
    new = labels.data == 8
    assert new.any() and not (new & left).any()


def test_click_on_a_label_refines_it(clicker, qtbot):
    viewer, widget = clicker()
    labels = viewer.add_labels(np.zeros((96, 128), np.int32), name="cells masks")
    part = disk((96, 128), (70, 50), radius=5)
    labels.data[part] = 3
    click(viewer, (70, 50))
    settle(qtbot, widget)
    assert set(np.unique(labels.data)) == {0, 3}
    assert np.array_equal(labels.data == 3, disk((96, 128), (70, 50)))


def test_a_frame_of_a_time_series_is_clicked_alone(clicker, qtbot):
    stack = np.stack([disk_image(centres=((70 - 10 * z, 20 + 10 * z),)) for z in range(5)])
    viewer, widget = clicker(stack, metadata={"napari_unet_stack_axis": "T"})  # as told to Segment
    viewer.dims.set_point(0, 2)
    click(viewer, (2, 50, 40))
    settle(qtbot, widget)
    labels = masks(viewer).data
    assert labels.shape == stack.shape
    assert not labels[[0, 1, 3, 4]].any()
    assert np.array_equal(labels[2] > 0, disk((96, 128), (50, 40)))


def test_scale_and_translate(clicker, qtbot):
    viewer, widget = clicker(scale=(2.0, 0.5), translate=(10.0, -5.0))
    click(viewer, (10 + 2 * 70, -5 + 0.5 * 50))  # world position of the disk at (70, 50)
    settle(qtbot, widget)
    layer = masks(viewer)
    assert np.allclose(layer.scale, (2.0, 0.5)) and np.allclose(layer.translate, (10.0, -5.0))
    assert np.array_equal(layer.data > 0, disk((96, 128), (70, 50)))


def test_burst_of_clicks_is_not_lost(clicker, qtbot):
    viewer, widget = clicker()
    for centre in CENTRES:  # three objects, clicked faster than they are answered
        click(viewer, centre)
    click(viewer, (70, 58), modifiers=["Shift"])  # and a correction of the last one
    settle(qtbot, widget)
    labels = masks(viewer).data
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    for label, centre in enumerate(CENTRES, start=1):
        assert labels[centre] == label
    assert labels[70, 58] == 0


def test_drags_pan_and_outside_clicks_say_so(clicker, qtbot):
    viewer, widget = clicker()
    assert not masks(viewer).data.any()  # made when click mode started, still empty
    click(viewer, (30, 30), drag=20)
    click(viewer, (500, 30))
    settle(qtbot, widget)
    assert not masks(viewer).data.any()
    assert "outside" in widget.status.text()


def test_keys_toggle_click_mode_and_escape_ends_the_object(clicker, qtbot):
    viewer, widget = clicker()
    canvas = viewer.window._qt_viewer.canvas.native
    click(viewer, (30, 30))
    settle(qtbot, widget)
    assert widget.tool.current is not None
    viewer.layers.selection.active = masks(viewer)  # Labels layers bind Escape themselves
    qtbot.keyClick(canvas, Qt.Key_Escape)
    assert widget.tool.current is None
    qtbot.keyClick(canvas, Qt.Key_K)
    assert not widget.tool.enabled and not widget.toggle.isChecked()
    click(viewer, (70, 50))
    settle(qtbot, widget)
    assert set(np.unique(masks(viewer).data)) == {0, 1}  # click mode off: nothing new
    qtbot.keyClick(canvas, Qt.Key_K)
    assert widget.tool.enabled and widget.toggle.isChecked()


def test_widget_opens_from_the_plugins_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    assert isinstance(widget, ClickWidget) and widget.session is session_for(viewer)


def test_through_napari_plugin_proxy(make_napari_viewer_proxy, qtbot):
    """As napari gives plugins the viewer: public API only, layer writes on the main thread."""
    import warnings

    from napari_unet._qt._napari import unwrap

    viewer = make_napari_viewer_proxy()  # NAPARI_ENSURE_PLUGIN_MAIN_THREAD=1
    viewer.add_image(disk_image(), name="cells")
    session_for(viewer).set_click_model(threshold_click_unet())
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Pp]rivate attribute.*")
        widget = ClickWidget(viewer)
        widget.first_from_model.setChecked(False)  # the threshold model answers
        widget.toggle.setChecked(True)
        settle(qtbot, widget)
        click(unwrap(viewer), (30, 80))
        settle(qtbot, widget)
    assert np.array_equal(viewer.layers["cells masks"].data == 1, disk((96, 128), (30, 80)))


def test_an_undone_click_is_no_longer_an_edit(clicker, qtbot):
    viewer, widget = clicker()
    click(viewer, CENTRES[0])
    settle(qtbot, widget)
    log = session_for(viewer).edits
    edited = log.edited(masks(viewer))
    assert edited is not None and edited[disk((96, 128), CENTRES[0])].all()  # the object counts as checked
    masks(viewer).undo()
    assert log.edited(masks(viewer)) is None
    masks(viewer).redo()
    assert log.edited(masks(viewer))[CENTRES[0]]


def test_click_mode_without_an_image_says_to_open_one(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    widget.toggle.setChecked(True)
    assert not widget.toggle.isChecked() and not widget.tool.enabled
    assert widget.status.text().startswith("Open an image first")


@pytest.mark.slow  # a 2048² image and layer in a real viewer
def test_a_click_on_a_big_layer_changes_only_that_object_and_one_undo_restores_it(clicker, qtbot):
    centres = ((300, 300), (1500, 1700), (1900, 200))
    image = disk_image(shape=(2048, 2048), centres=centres)
    viewer, widget = clicker(image)
    before = np.zeros(image.shape, np.int32)
    before[disk(image.shape, centres[0])] = 1  # objects already there, e.g. from Segment
    before[disk(image.shape, centres[2])] = 7
    layer = viewer.add_labels(before.copy(), name="cells masks")
    click(viewer, centres[1])
    settle(qtbot, widget)
    changed = layer.data != before
    assert np.array_equal(changed, disk(image.shape, centres[1]))  # that object's pixels, nothing else
    assert set(np.unique(layer.data[changed])) == {8}  # a new label
    layer.undo()
    assert np.array_equal(layer.data, before)


def test_hovering_prepares_a_first_click_without_changing_its_answer(clicker, qtbot):
    from _qt_helpers import threshold_unet

    from napari_unet import segment_click

    viewer, widget = clicker()
    seg_model = threshold_unet()
    session = session_for(viewer)
    session.set_model(seg_model)
    widget.first_from_model.setChecked(True)
    passes = []
    seg_model.register_forward_hook(lambda *_: passes.append(1))
    settle(qtbot, widget)
    position = dict(position=(70.0, 50.0), dims_displayed=[0, 1], pos=np.zeros(2))
    mouse_move_callbacks(viewer, read_only_mouse_event(type="mouse_move", **position))
    qtbot.waitUntil(lambda: len(passes) > 0, timeout=WAIT_MS)  # the cursor rests: the window is segmented
    settle(qtbot, widget)
    hovered = len(passes)
    click(viewer, (71, 49))
    settle(qtbot, widget)
    assert len(passes) == hovered  # the click needed no network pass of its own
    expected = segment_click(disk_image(), [(71, 49)], model=session.click_model, segmentation_model=seg_model)
    assert np.array_equal(masks(viewer).data == 1, expected) and expected[70, 50]


@pytest.mark.slow
def test_a_shift_click_on_a_neighbour_the_first_click_took_along_removes_it(make_napari_viewer, qtbot):
    """The shipped models, as a user has them: the first click's object holds two touching
    nuclei; one Shift-click on the other one leaves the clicked nucleus alone."""
    image, clicked, neighbour = touching_pair()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="cells")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    assert widget.first_from_model.isChecked()
    widget.toggle.setChecked(True)
    click(viewer, farthest_point(clicked))
    settle(qtbot, widget)
    assert (masks(viewer).data[neighbour] == 1).mean() > 0.9, "the first answer no longer holds both"
    click(viewer, farthest_point(neighbour), modifiers=["Shift"])
    settle(qtbot, widget)
    mask = masks(viewer).data == 1
    assert mask[neighbour].mean() <= 0.05
    assert (mask & clicked).sum() / (mask | clicked).sum() > 0.8
