"""Fixtures for the viewer tests: the threshold model as a file, a viewer with the widget docked."""

from __future__ import annotations

import pytest
from _qt_helpers import threshold_unet

from napari_unet.model.files import save_model


@pytest.fixture
def model_file(tmp_path):
    return save_model(threshold_unet(), tmp_path / "threshold.safetensors")


@pytest.fixture
def viewer_widget(make_napari_viewer, model_file):
    """A viewer with the Segment widget docked from the Plugins menu and the threshold model in its session."""
    from napari_unet._qt.session import session_for

    viewer = make_napari_viewer()
    session_for(viewer).load_model(model_file)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    return viewer, widget


@pytest.fixture
def notifications():
    """Every napari notification shown while the test runs."""
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)
