"""Edited regions follow napari's undo: strokes painted with the mouse, clicks, program writes."""

from __future__ import annotations

import numpy as np
from _qt_helpers import disks
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

from napari_unet._qt.layers import write_labels
from napari_unet._qt.session import session_for


def stroke(layer, start, end, label: int) -> None:
    """A brush stroke dragged with the mouse from ``start`` to ``end`` (data coordinates)."""
    layer.mode, layer.selected_label, layer.brush_size = "paint", label, 5
    for kind, where, callbacks in (("mouse_press", start, mouse_press_callbacks),
                                   ("mouse_move", end, mouse_move_callbacks),
                                   ("mouse_release", end, mouse_release_callbacks)):
        event = read_only_mouse_event(type=kind, is_dragging=kind == "mouse_move", position=where,
                                      view_direction=None, dims_displayed=[0, 1])
        callbacks(layer, event)


def test_an_undone_stroke_is_no_longer_an_edit(make_napari_viewer):
    viewer = make_napari_viewer()
    masks = viewer.add_labels(np.zeros((60, 60), np.int32), name="masks")
    log = session_for(viewer).edits
    stroke(masks, (10, 10), (10, 40), label=3)
    painted = masks.data == 3
    assert painted.sum() > 100
    np.testing.assert_array_equal(log.edited(masks), painted)
    stroke(masks, (30, 10), (30, 40), label=4)
    masks.undo()  # what Ctrl+Z does: the second stroke goes, the first stays
    np.testing.assert_array_equal(log.edited(masks), painted)
    masks.undo()
    assert log.edited(masks) is None and not masks.data.any()
    masks.redo()
    np.testing.assert_array_equal(log.edited(masks), painted)


def test_an_eraser_edit_counts_until_undone(make_napari_viewer):
    viewer = make_napari_viewer()
    masks = viewer.add_labels(np.full((40, 40), 2, np.int32), name="masks")
    log = session_for(viewer).edits
    stroke(masks, (20, 5), (20, 35), label=0)  # erasing is painting label 0
    erased = masks.data == 0
    np.testing.assert_array_equal(log.edited(masks), erased)
    masks.undo()
    assert log.edited(masks) is None


def test_a_program_overwrite_ends_an_edit_and_undoing_it_brings_it_back(make_napari_viewer):
    viewer = make_napari_viewer()
    masks = viewer.add_labels(np.zeros((40, 40), np.int32), name="masks")
    log = session_for(viewer).edits
    stroke(masks, (20, 5), (20, 35), label=7)
    painted = masks.data == 7
    write_labels(masks, np.where(painted, 1, 0))  # Segment again, over the correction
    assert log.edited(masks) is None
    masks.undo()  # the segmentation goes, the correction is back
    np.testing.assert_array_equal(log.edited(masks), painted)


def test_after_undo_fine_tuning_finds_nothing_edited(qtbot, make_napari_viewer):
    import napari_unet._qt.finetune.widget as fw
    from napari_unet._qt.finetune.annotations import EDITED

    viewer = make_napari_viewer()
    viewer.add_image(disks(), name="img")
    masks = viewer.add_labels(np.zeros((96, 128), np.int32), name="img masks")
    widget = fw.FinetuneWidget(viewer)
    widget.mode.setCurrentText(EDITED)
    stroke(masks, (30, 30), (30, 60), label=5)
    masks.undo()
    widget.run_button.click()
    assert not widget.running and "no edits recorded" in widget.status.text()
