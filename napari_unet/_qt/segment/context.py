"""Layers context menu > *Segment with U-Net*: the Segment dock, on the clicked image layer."""

from __future__ import annotations

from napari.viewer import Viewer

from napari_unet._qt._napari import add_layer_context_action


def segment_active_layer(viewer) -> None:
    """Open (or raise) the Segment dock, pick the selected image layer and segment it."""
    layer = viewer.layers.selection.active
    dock, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    dock.show()
    if layer is not None:
        widget.image.set_current(layer)
    widget.segment()


def add_context_entry() -> None:
    """Put *Segment with U-Net* in the layer list's context menu (napari registers it once)."""
    add_layer_context_action("Segment with U-Net", _callback)


def _callback(viewer: Viewer) -> None:  # napari injects the viewer by this annotation
    segment_active_layer(viewer)
