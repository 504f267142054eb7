"""Layers context menu > Segment with U-Net: right-click an image layer, get its masks."""

from __future__ import annotations

import numpy as np
from _qt_helpers import disks
from napari._app_model.constants import MenuId
from napari._app_model.context import get_context
from napari._qt._qapp_model import build_qmodel_menu
from napari.layers import Labels

TITLE = "Segment with U-Net"


def _right_click(viewer, menu):
    """What napari 0.9's layer list does on a right-click: the menu follows the selection."""
    menu.update_from_context(get_context(viewer.layers))
    found = {a.text(): a for a in menu.actions()}
    return found.get(TITLE)


def test_right_click_on_an_image_layer_segments_it(make_napari_viewer, model_file, qtbot):
    from napari_unet._qt.session import session_for

    viewer = make_napari_viewer()
    menu = build_qmodel_menu(MenuId.LAYERLIST_CONTEXT)  # napari builds it on the first right-click
    session_for(viewer).load_model(model_file)
    viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")  # any of our docks adds the entry
    viewer.add_image(disks(), name="cells")
    viewer.add_image(np.zeros((64, 64), np.float32), name="other")
    viewer.layers.selection.active = viewer.layers["cells"]
    entry = _right_click(viewer, menu)
    assert entry is not None and entry.isVisible() and entry.isEnabled()
    entry.trigger()
    qtbot.waitUntil(lambda: "cells masks" in viewer.layers, timeout=30000)
    masks = viewer.layers["cells masks"]
    assert isinstance(masks, Labels) and len(np.unique(masks.data)) - 1 >= 4  # the disks, one object each
    assert "other masks" not in viewer.layers


def test_the_entry_is_for_image_layers_only(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="painted")
    viewer.layers.selection.active = viewer.layers["painted"]
    entry = _right_click(viewer, build_qmodel_menu(MenuId.LAYERLIST_CONTEXT))
    assert entry is None or not entry.isVisible()
