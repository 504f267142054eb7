"""Where the user has corrected each Labels layer: what "only the regions I edited" means.

napari 0.9 emits ``Labels.events.paint`` with a list of history atoms for every
committed change. The brush, eraser, fill bucket and polygon record mask atoms
(``slice_key`` + ``mask``); ``data_setitem`` — the Segment widget's undoable writes,
fine-tuning's refresh, scripts — records ``(indices, old, new)`` tuples. So mask atoms
are the user's corrections and tuples are programs overwriting pixels, which are then
no longer the user's. The click tool, which writes through ``data_setitem``, reports
its objects with :meth:`EditLog.mark`.

Undo and redo emit no paint event: an undone stroke stays marked. That errs on the
side of "checked": the region is trained on with the labels it has now.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from napari.layers import Labels

from .session import unwrap


@dataclass(frozen=True, eq=False)
class _Edit:
    where: tuple  # a box of slices, or a numpy multi-index
    mask: np.ndarray | None  # the changed pixels within a box; None = all of ``where``
    by_user: bool  # False: a program overwrote these pixels


class EditLog:
    """The edits made to every Labels layer of a viewer since the log was created."""

    def __init__(self, viewer):
        self._edits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> [_Edit]
        viewer.layers.events.inserted.connect(self._watch)
        for layer in viewer.layers:
            self._watch(layer)

    def edited(self, layer) -> np.ndarray | None:
        """Bool mask (the layer's shape) of pixels the user painted or clicked; None if none."""
        edits = self._edits.get(unwrap(layer))
        if not edits:
            return None
        out = np.zeros(np.shape(layer.data), bool)
        for edit in edits:
            if edit.mask is None:
                out[edit.where] = edit.by_user
            else:
                out[edit.where][edit.mask] = edit.by_user  # a box is a view: writes land in ``out``
        return out if out.any() else None

    def mark(self, layer, where) -> None:
        """Count ``where`` (a bool mask of the layer's shape, or an index) as corrected by the user."""
        where = np.nonzero(where) if np.asarray(where).dtype == bool else where
        self._edits.setdefault(unwrap(layer), []).append(_Edit(tuple(where), None, True))

    def clear(self, layer) -> None:
        self._edits.pop(unwrap(layer), None)

    def _watch(self, event_or_layer) -> None:
        layer = getattr(event_or_layer, "value", event_or_layer)
        if isinstance(layer, Labels):
            layer.events.paint.connect(self._on_paint)
            layer.events.data.connect(self._on_data)

    def _on_paint(self, event) -> None:
        layer = unwrap(event.source)
        edits = self._edits.setdefault(layer, [])
        for atom in event.value:
            if hasattr(atom, "slice_key"):  # brush, eraser, fill, polygon
                edits.append(_Edit(tuple(atom.slice_key), atom.mask, True))
            elif edits:  # a program overwrote pixels; before any edit there is nothing to undo
                edits.append(_Edit(tuple(atom[0]), None, False))
        if not edits:
            del self._edits[layer]

    def _on_data(self, event) -> None:
        self.clear(event.source)  # new data replaced the layer: earlier edits are gone

