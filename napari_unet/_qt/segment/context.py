"""Layers context menu > *Segment with U-Net*: the Segment dock, on the clicked image layer."""

from __future__ import annotations

from napari.utils.notifications import show_info
from napari.viewer import Viewer

from napari_unet._qt._napari import add_layer_context_action
from napari_unet._qt.docks import inner


def segment_active_layer(viewer) -> None:
    """Open (or raise) the Segment dock, pick the selected image layer and segment it."""
    layer = viewer.layers.selection.active
    dock, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    dock.show()
    widget = inner(widget)
    if widget is None:
        show_info("Segment is still starting (PyTorch loads once); try again in a moment.")
        return
    if layer is not None:
        widget.image.set_current(layer)
    widget.segment()


def add_context_entry() -> None:
    """Put *Segment with U-Net* in the layer list's context menu (napari registers it once)."""
    add_layer_context_action("Segment with U-Net", _callback)


def _callback(viewer: Viewer) -> None:  # napari injects the viewer by this annotation
    segment_active_layer(viewer)
