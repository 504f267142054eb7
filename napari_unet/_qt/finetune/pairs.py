"""Picking what fine-tuning learns from: image layers, each with its corrected Labels layer."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QWidget

from napari_unet._qt._napari import unwrap
from napari_unet._qt.layers import masks_name, model_input
from napari_unet.model.files import image_channels

NONE = "—"


class PairPicker(QWidget):
    """One row per image layer the model can take: a check box and its labels layer.

    An image is ticked by default when a Labels layer named ``<image> masks`` exists (what
    the Segment widget writes); any Labels layer of the image's shape can be picked.

    Signals
    -------
    changed()
        The pairs changed.
    """

    changed = Signal()

    def __init__(self, viewer, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._rows: dict[str, tuple[QCheckBox, QComboBox]] = {}
        self._picked: dict[str, tuple[bool, str]] = {}  # image name -> (ticked, labels name)
        self.note = QLabel()
        self.note.setWordWrap(True)
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved, events.reordered):
            event.connect(self.refresh)
        events.inserted.connect(lambda e: e.value.events.name.connect(self.refresh))
        for layer in viewer.layers:
            layer.events.name.connect(self.refresh)
        session.model_changed.connect(self.refresh)
        self.refresh()

    def pairs(self) -> list[tuple[Image, Labels]]:
        """The ticked (image layer, labels layer) pairs: the layers themselves, not napari's
        proxies of them (a plugin's viewer hands out a new proxy on every access).
        """
        out = []
        for name, (box, combo) in self._rows.items():
            labels = combo.currentText()
            if box.isChecked() and labels in self.viewer.layers and name in self.viewer.layers:
                out.append((unwrap(self.viewer.layers[name]), unwrap(self.viewer.layers[labels])))
        return out

    def refresh(self, *_) -> None:
        """Rebuild the rows, keeping what the user picked."""
        self._remember()
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget() is not None and item.widget() is not self.note:
                item.widget().deleteLater()
        self._rows = {}
        n_channels = image_channels(self.session.model) if self.session.model is not None else 1
        for row, image in enumerate(layer for layer in self.viewer.layers if isinstance(layer, Image)):
            shape = _spatial_shape(image, n_channels)
            if shape is None:
                continue
            labels = [lay.name for lay in self.viewer.layers if isinstance(lay, Labels) and lay.data.shape == shape]
            default = masks_name(image) if masks_name(image) in labels else NONE
            ticked, pick = self._picked.get(image.name, (False, NONE))
            if pick not in labels:  # never picked, or its layer went: take the masks, if any
                ticked, pick = default != NONE, default
            box, combo = QCheckBox(image.name), QComboBox()
            combo.addItems([NONE, *labels])
            combo.setCurrentText(pick)
            combo.setToolTip(f"The corrected labels of '{image.name}'")
            box.setChecked(ticked and combo.currentText() != NONE)
            box.toggled.connect(self.changed)
            combo.currentTextChanged.connect(lambda text, b=box: (b.setChecked(text != NONE), self.changed.emit()))
            self._grid.addWidget(box, row, 0)
            self._grid.addWidget(combo, row, 1)
            self._rows[image.name] = (box, combo)
        self._grid.addWidget(self.note, len(self._rows) + 1, 0, 1, 2)
        self.note.setText("" if self._rows else "Open an image and segment it first.")
        self.note.setVisible(not self._rows)
        self.changed.emit()

    def _remember(self) -> None:
        for name, (box, combo) in self._rows.items():
            self._picked[name] = (box.isChecked(), combo.currentText())


def _spatial_shape(layer, n_channels: int) -> tuple[int, ...] | None:
    try:
        source = model_input(layer, n_channels)
    except ValueError:
        return None
    return tuple(np.shape(source.data)[ax] for ax in source.spatial_axes)
