"""Where the user has corrected each Labels layer: what "only the regions I edited" means.

napari 0.9 emits ``Labels.events.paint`` with a list of history atoms for every
committed change. The brush, eraser, fill bucket and polygon record mask atoms
(``slice_key``, ``mask``, ``new_value``); ``data_setitem`` — the Segment widget's
undoable writes, fine-tuning's refresh, scripts — records ``(indices, old, new)``
tuples. Mask atoms are the user's corrections; the click tool, which writes through
``data_setitem``, reports its objects with :meth:`EditLog.mark`.

Undo and redo emit no event, so an edit is not trusted to still be there: a pixel
counts as edited while the layer still holds the value the edit wrote. Undo puts the
old value back, and the pixel stops counting; redo brings both back. A program that
overwrites an edited pixel (Segment again) ends the edit the same way, and undoing
that write brings it back.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from napari.layers import Labels

from napari_unet._qt._napari import unwrap


@dataclass(frozen=True, eq=False)
class _Edit:
    where: tuple  # a box of slices (strokes), or a numpy multi-index (clicks)
    mask: np.ndarray | None  # a stroke's changed pixels within its box; None = the whole box
    new: np.ndarray | int  # what the edit wrote there
    changed: np.ndarray | None = None  # a click: which of its pixels it changed (the rest it confirmed)

    def holds(self, data) -> np.ndarray:
        """Bool per pixel of ``where`` (within ``mask``): the edit is still in the layer."""
        region = np.asarray(data[self.where])
        values = region if self.mask is None else region[self.mask]
        held = values == self.new
        if self.changed is None:  # a stroke: pixel by pixel
            return held
        # a click counts as a whole: while any pixel it changed holds (undo reverts them
        # all), or, if it changed nothing, while the object it confirmed is unchanged
        whole = held[self.changed].any() if self.changed.any() else held.all()
        return np.full(held.shape, bool(whole))


class EditLog:
    """The edits made to every Labels layer of a viewer since the log was created."""

    def __init__(self, viewer):
        self._edits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> [_Edit]
        viewer.layers.events.inserted.connect(self._watch)
        for layer in viewer.layers:
            self._watch(layer)

    def edited(self, layer) -> np.ndarray | None:
        """Bool mask (the layer's shape) of pixels the user painted or clicked and that
        still hold what they wrote (not undone, not overwritten); None if none.
        """
        edits = self._edits.get(unwrap(layer))
        if not edits:
            return None
        data = layer.data
        out = np.zeros(np.shape(data), bool)
        for edit in edits:
            held = edit.holds(data)
            if edit.mask is None:
                out[edit.where] |= held
            else:
                out[edit.where][edit.mask] |= held  # a box is a view: writes land in ``out``
        return out if out.any() else None

    def mark(self, layer, where, before: np.ndarray) -> None:
        """Count ``where`` (an index of the layer) as corrected by the user, who just wrote
        it; ``before`` holds its values before the write.
        """
        where = tuple(np.asarray(ix) for ix in where)
        new = np.array(layer.data[where], copy=True)
        self._edits.setdefault(unwrap(layer), []).append(_Edit(where, None, new, new != np.asarray(before)))

    def clear(self, layer) -> None:
        self._edits.pop(unwrap(layer), None)

    def _watch(self, event_or_layer) -> None:
        layer = getattr(event_or_layer, "value", event_or_layer)
        if isinstance(layer, Labels):
            layer.events.paint.connect(self._on_paint)
            layer.events.data.connect(self._on_data)

    def _on_paint(self, event) -> None:
        strokes = [_Edit(tuple(atom.slice_key), atom.mask, atom.new_value)
                   for atom in event.value if hasattr(atom, "slice_key")]  # brush, eraser, fill, polygon
        if strokes:
            self._edits.setdefault(unwrap(event.source), []).extend(strokes)

    def _on_data(self, event) -> None:
        self.clear(event.source)  # new data replaced the layer: earlier edits are gone
