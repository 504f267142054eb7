"""Picking what fine-tuning learns from: image layers, each with its corrected Labels layer."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QPushButton, QWidget

from napari_unet._qt._napari import unwrap
from napari_unet._qt.layers import masks_name, model_input
from napari_unet.finetune.mixing import image_stats, odd_ones_out
from napari_unet.model.files import image_channels

NONE = "—"


class PairPicker(QWidget):
    """One row per image layer the model can take: a check box and its labels layer.

    Each image is paired by default with its Labels layer named ``<image> masks`` (what the
    Segment widget writes), else what New model wrote for it (``<image> classes (new model)``);
    any Labels layer of the image's shape can be picked. Only the
    current image (the selected one, or the one whose masks are selected) is ticked at
    first; "add all" ticks every image with masks. A ticked image whose size or
    intensities differ a lot from the other ticked ones is flagged (⚠, and in the note).

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
        self._flags: dict[str, QLabel] = {}
        self._stats: dict[int, object] = {}  # id of an image layer's data -> its ImageStats
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.add_all = QPushButton("add all")
        self.add_all.setToolTip("Learn from every image that has masks, not only the current one")
        self.add_all.clicked.connect(self.tick_all)
        self.changed.connect(self._flag_odd_ones)
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
            if item.widget() is not None and item.widget() not in (self.note, self.add_all):
                item.widget().deleteLater()
        self._rows, self._flags, self._shapes = {}, {}, {}
        n_channels = image_channels(self.session.model) if self.session.model is not None else 1
        current = self._current_image()
        any_ticked = any(ticked for ticked, _ in self._picked.values())
        for row, image in enumerate(layer for layer in self.viewer.layers if isinstance(layer, Image)):
            shape = _spatial_shape(image, n_channels)
            if shape is None:
                continue
            labels = [lay.name for lay in self.viewer.layers if isinstance(lay, Labels) and lay.data.shape == shape]
            # Segment's masks, else the class map (or objects) New model made for the image
            made = (masks_name(image), f"{image.name} classes (new model)", f"{image.name} objects (new model)")
            default = next((name for name in made if name in labels), NONE)
            ticked, pick = self._picked.get(image.name, (False, NONE))
            if pick not in labels:  # never picked, or its layer went: take the masks, if any; tick
                # them only for the current image, and only when nothing else is ticked
                ticked, pick = default != NONE and image.name == current and not any_ticked, default
                any_ticked |= ticked
            box, combo = QCheckBox(image.name), QComboBox()
            combo.addItems([NONE, *labels])
            combo.setCurrentText(pick)
            combo.setToolTip(f"The corrected labels of '{image.name}'")
            box.setChecked(ticked and combo.currentText() != NONE)
            box.toggled.connect(self.changed)
            combo.currentTextChanged.connect(lambda text, b=box: (b.setChecked(text != NONE), self.changed.emit()))
            flag = QLabel()
            self._grid.addWidget(box, row, 0)
            self._grid.addWidget(combo, row, 1)
            self._grid.addWidget(flag, row, 2)
            self._rows[image.name], self._flags[image.name], self._shapes[image.name] = (box, combo), flag, shape
        self._grid.addWidget(self.add_all, len(self._rows) + 1, 0)
        self._grid.addWidget(self.note, len(self._rows) + 2, 0, 1, 3)
        self.add_all.setVisible(len(self._rows) > 1)
        self.changed.emit()

    def tick_all(self) -> None:
        """Tick every image that has a labels layer picked."""
        for box, combo in self._rows.values():
            box.setChecked(combo.currentText() != NONE)
        self.changed.emit()

    def _current_image(self) -> str | None:
        """The image the user works on: the selected image, or the one whose masks are selected."""
        active = self.viewer.layers.selection.active
        if isinstance(active, Image):
            return active.name
        if isinstance(active, Labels):
            for layer in self.viewer.layers:
                if isinstance(layer, Image) and masks_name(layer) == active.name:
                    return layer.name
        images = [layer for layer in self.viewer.layers if isinstance(layer, Image)]
        return images[-1].name if images else None

    def flagged(self) -> dict[str, str]:
        """Ticked images that differ a lot from the other ticked ones, and how."""
        names = [name for name, (box, _) in self._rows.items() if box.isChecked() and name in self.viewer.layers]
        stats = []
        for name in names:
            data = self.viewer.layers[name].data
            key = id(data)
            if key not in self._stats:
                self._stats[key] = image_stats(np.asarray(data), self._shapes[name])
            stats.append(self._stats[key])
        return {name: why for name, why in zip(names, odd_ones_out(stats)) if why}

    def _flag_odd_ones(self) -> None:
        odd = self.flagged() if self._rows else {}
        for name, flag in self._flags.items():
            flag.setText("⚠" if name in odd else "")
            flag.setToolTip(f"Differs a lot from the other images: {odd[name]}" if name in odd else "")
        if not self._rows:
            text = "Open an image and segment it first."
        elif odd:
            text = "⚠ " + "; ".join(f"'{name}': {why}" for name, why in odd.items()) + (
                ". An image unlike the others can pull the model away from them: untick it unless it belongs.")
        else:
            text = ""
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _remember(self) -> None:
        for name, (box, combo) in self._rows.items():
            self._picked[name] = (box.isChecked(), combo.currentText())


def _spatial_shape(layer, n_channels: int) -> tuple[int, ...] | None:
    try:
        source = model_input(layer, n_channels)
    except ValueError:
        return None
    return tuple(np.shape(source.data)[ax] for ax in source.spatial_axes)
