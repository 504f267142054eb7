"""The click tool's viewer fixture: the Click widget docked from the Plugins menu, in click mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _click_models import disk_image, threshold_click_unet

from napari_unet._qt.session import session_for

sys.path.insert(0, str(Path(__file__).parent))  # the click helpers next to these tests (_clicking)


@pytest.fixture
def clicker(make_napari_viewer, qtbot):
    """A viewer, the Click widget in click mode and the threshold click model."""

    def make(image=None, **layer_kwargs):
        viewer = make_napari_viewer()
        viewer.add_image(disk_image() if image is None else image, name="cells", **layer_kwargs)
        session_for(viewer).set_click_model(threshold_click_unet())
        _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
        widget.first_from_model.setChecked(False)  # the threshold model answers every click
        widget.toggle.setChecked(True)
        return viewer, widget

    return make
