"""Where the user clicked: the current object's clicks as markers, until the object is finished.

The markers are a Points layer, ``<image> clicks``, over the image (its scale and
translate): a green disc for each positive click, a red cross for each negative one. It
is never a Labels layer, so nothing in it is written into the masks or read by
fine-tuning; it is emptied when the object is finished and follows undo.

The layer is updated when the event loop next runs, before it paints the next frame, with
the clicks of the last call: a burst of clicks handled in one go, or a click on a new
object and Esc, redraw it once or not at all (each update takes ~5-10 ms of the UI thread).
"""

from __future__ import annotations

import numpy as np
from napari.layers import Points
from qtpy.QtCore import QObject, Qt, Signal

from napari_unet._qt._napari import unwrap
from napari_unet._qt.click.objects import ClickedObject
from napari_unet._qt.layers import OUTPUT, spatial_transform

POSITIVE, NEGATIVE = (0.2, 0.9, 0.2, 1.0), (1.0, 0.2, 0.2, 1.0)  # green, red
SYMBOLS = {True: "disc", False: "cross"}  # told apart without colour too


def markers_name(image_layer) -> str:
    return f"{image_layer.name} clicks"


class ClickMarkers:
    """The markers of one viewer's click tool (see the module docstring)."""

    def __init__(self, viewer):
        self.viewer = viewer
        self._layers: dict[int, Points] = {}  # id(image layer) -> its markers layer
        self._wanted: tuple[ClickedObject | None, tuple[int, ...]] | None = None  # the last show(), not yet drawn
        self._later = _Later()
        self._later.posted.connect(self.flush, Qt.ConnectionType.QueuedConnection)

    def show(self, obj: ClickedObject | None, spatial_axes: tuple[int, ...] = ()) -> None:
        """Show ``obj``'s clicks (the user's, not the implicit ones) when the event loop next runs;
        ``None`` empties every markers layer. ``spatial_axes``: the image's axes that the masks
        have (needed to make the layer).
        """
        waiting = self._wanted is not None
        self._wanted = (obj, spatial_axes)
        if not waiting:
            self._later.posted.emit()

    def flush(self) -> None:
        """Update the markers layers now to the last :meth:`show` (if one is waiting)."""
        if self._wanted is None:
            return
        (obj, spatial_axes), self._wanted = self._wanted, None
        shown = [] if obj is None else [(c, p) for c, p, s in zip(obj.clicks, obj.planes, obj.shown) if s]
        for key, layer in list(self._layers.items()):
            if layer not in self.viewer.layers:
                del self._layers[key]
            elif (obj is None or key != id(obj.image)) and len(layer.data):
                _set(layer, np.empty((0, layer.ndim)), [])
        if obj is None or obj.image not in self.viewer.layers:
            return
        ndim = obj.layer.ndim
        points = np.array([(p, c.y, c.x) if ndim == 3 else (c.y, c.x) for c, p in shown], float).reshape(-1, ndim)
        layer = self._layer(obj.image, ndim, spatial_axes)
        _set(layer, points, [c.positive for c, _ in shown])

    def _layer(self, image, ndim: int, spatial_axes) -> Points:
        layer = self._layers.get(id(image))
        if layer is not None and layer in self.viewer.layers and layer.ndim == ndim:
            return layer
        selection = self.viewer.layers.selection
        active = unwrap(selection.active) if selection.active is not None else None
        transform = spatial_transform(image, spatial_axes or tuple(range(ndim)))
        transform["metadata"] = {OUTPUT: "clicks"}
        shape = np.shape(image.data)
        size = float(np.clip(0.015 * max(shape[a] for a in (spatial_axes or range(ndim))[-2:]), 3.0, 10.0))
        layer = unwrap(self.viewer.add_points(np.empty((0, ndim)), name=markers_name(image), size=size,
                                              border_color="white", border_width=0.1, **transform))
        if active is not None:  # the tool writes to the selected Labels layer: keep it selected
            selection.active = active
        self._layers[id(image)] = layer
        return layer


class _Later(QObject):
    """A queued signal: its slot runs when the event loop next runs, before the frame that the
    current handler's changes asked for is painted (a posted call goes ahead of Qt's
    low-priority paint request; a 0 ms QTimer fires after it, costing a frame more).
    """

    posted = Signal()


def _set(layer: Points, points: np.ndarray, positive: list[bool]) -> None:
    """Points, colours and symbols at once: one redraw (each one set alone redraws the layer and
    tells the viewer, ~90 ms of the UI thread per click on a 256×512×512 volume's markers).
    """
    with layer.events.blocker_all():
        layer.data = points
        if len(points):
            layer.face_color = np.array([POSITIVE if p else NEGATIVE for p in positive])
            layer.symbol = [SYMBOLS[p] for p in positive]
    layer.refresh()
