"""The three docks fit a 1366x768 laptop screen, and every control explains itself."""

from __future__ import annotations

from qtpy.QtWidgets import QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QSlider

DOCKS = ("Segment", "Click to segment", "Fine-tune")


def _dock_all(viewer):
    return {name: viewer.window.add_plugin_dock_widget("napari-unet", name) for name in DOCKS}


def test_three_docks_fit_a_1366x768_screen(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    docks = _dock_all(viewer)
    window.showNormal()
    window.resize(1366, 768)
    for _ in range(10):
        QApplication.processEvents()
    assert window.height() <= 768, f"the window grew to {window.height()} px"
    for name, (dock, _) in docks.items():
        assert dock.isVisible() and dock.height() >= 120, f"{name}: {dock.height()} px"  # a fair share each


def test_every_control_has_a_tooltip(make_napari_viewer):
    viewer = make_napari_viewer()
    for name, (_, widget) in _dock_all(viewer).items():
        controls = widget.findChildren((QAbstractButton, QComboBox, QAbstractSpinBox, QSlider))
        bare = [f"{type(c).__name__} {c.text() if hasattr(c, 'text') else ''}".strip() for c in controls
                if not c.toolTip() and not (c.parent() is not None and c.parent().toolTip())]
        assert not bare, f"{name}: no tooltip on {bare}"
