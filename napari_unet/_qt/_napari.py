"""Every touch of napari's internals, in one place, with the napari version it was written for.

napari gives plugins no public way to do these; each helper says what it reads and
degrades to doing nothing if napari stops having it.
"""

from __future__ import annotations

from collections.abc import Iterable


# napari >= 0.5: plugin widgets get a PublicOnlyProxy of the viewer, and every layer they
# read through it comes back as a new proxy (compare what they wrap, never identities).
def unwrap(obj):
    """The real object behind napari's ``PublicOnlyProxy`` (proxies can't be weak keys)."""
    return getattr(obj, "__wrapped__", obj)


def main_window(viewer):
    """Napari's Qt main window of ``viewer`` (a proxy too), or None (napari 0.9: ``Window._qt_window``)."""
    return getattr(getattr(unwrap(viewer), "window", None), "_qt_window", None)


def detach_overlays(layer, keys: Iterable[str]) -> list[tuple[str, object]]:
    """Take the overlays named ``keys`` off a layer, to put back with :func:`attach_overlays`.

    napari 0.9 keeps a Labels layer's drawing-tool overlays (polygon, brush stroke) in its
    private ``_overlays`` dict and makes a vispy overlay for each when the layer is shown.
    Nothing is taken (and nothing breaks) if the dict is gone.
    """
    overlays = getattr(layer, "_overlays", {})
    return [(key, overlays.pop(key)) for key in keys if key in overlays]


def attach_overlays(layer, held: list[tuple[str, object]]) -> None:
    """Put back overlays taken by :func:`detach_overlays` (those not already back)."""
    overlays = getattr(layer, "_overlays", None)
    if overlays is not None:
        overlays.update({key: overlay for key, overlay in held if key not in overlays})


def scene_canvas(viewer):
    """The vispy canvas that draws ``viewer`` (its ``events.draw`` fires after each frame), or None.

    napari 0.9.2: ``Window._qt_viewer.canvas._scene_canvas``.
    """
    qt_viewer = getattr(getattr(unwrap(viewer), "window", None), "_qt_viewer", None)
    return getattr(getattr(qt_viewer, "canvas", None), "_scene_canvas", None)


# napari 0.9.2 lets plugins' manifests add to the Layers menu (we are in Layers > Segment)
# but not to the layer list's context menu (MenuId.LAYERLIST_CONTEXT is not contributable),
# so the entry is registered with napari's app-model once our first dock opens.
SEGMENT_ACTION = "napari-unet.segment_layer"


def add_layer_context_action(title: str, callback) -> None:
    """Add ``title`` to the context menu of image layers, calling ``callback(viewer)``; once per process."""
    try:
        from app_model.types import Action
        from napari._app_model import get_app_model
        from napari._app_model.constants import MenuId
        from napari._app_model.context import LayerListSelectionContextKeys as LLSCK
    except ImportError:  # napari moved them: the Layers > Segment menu entry still works
        return
    app = get_app_model()
    if SEGMENT_ACTION in app.commands:
        return
    app.register_action(Action(
        id=SEGMENT_ACTION, title=title, callback=callback,
        menus=[{"id": MenuId.LAYERLIST_CONTEXT, "group": "8_napari_unet", "when": LLSCK.active_layer_type == "image"}],
    ))
