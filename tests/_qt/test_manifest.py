"""The npe2 manifest: valid, and napari builds the widget, menus and sample from it."""

from __future__ import annotations

import numpy as np
import pytest
from npe2 import PluginManifest

from napari_unet._qt.segment.widget import SegmentWidget
from napari_unet._qt.session import session_for


def test_manifest_is_valid_and_imports():
    manifest = PluginManifest.from_distribution("napari-unet")
    manifest.validate_imports()
    assert manifest.contributions.sample_data
    segment_menu = manifest.contributions.menus["napari/layers/segment"]
    assert [item.command for item in segment_menu] == ["napari-unet.segment_widget"]
    assert "napari/layers/context" not in manifest.contributions.menus  # napari drops those


def test_widget_opens_from_the_plugins_menu(make_napari_viewer, model_file):
    viewer = make_napari_viewer()
    session_for(viewer).load_model(model_file)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    assert isinstance(widget, SegmentWidget)
    assert widget.session is session_for(viewer)  # through napari's viewer proxy too


def test_layers_segment_menu_lists_the_widget(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    items = get_app_model().menus.get_menu("napari/layers/segment")
    assert "napari-unet.segment_widget" in [getattr(i, "command", None) and i.command.id for i in items]


def test_open_sample(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-unet", "nuclei")
    (layer,) = viewer.layers
    assert layer.data.dtype == np.uint16 and layer.data.ndim == 2


@pytest.mark.slow
def test_plugin_opens_in_a_napari_that_is_already_drawing():
    """As from the Plugins menu: the canvas (OpenGL) first, then the plugin's import.

    With Mesa's OpenGL, importing torchvision at that point used to crash the process
    (see napari_unet/_gl_guard.py); a fresh interpreter is the only way to test it.
    """
    import subprocess
    import sys

    script = (
        "import time, napari\n"
        "from qtpy.QtWidgets import QApplication\n"
        "v = napari.Viewer()\n"
        "for _ in range(10): QApplication.processEvents(); time.sleep(0.01)\n"
        "v.window.add_plugin_dock_widget('napari-unet', 'Segment')\n"
        "v.close()\n"
        "print('opened')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and "opened" in done.stdout, done.stderr[-2000:]
