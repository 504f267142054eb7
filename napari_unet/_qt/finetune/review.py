"""Stepping through what a refresh changed, plane by plane: keep each plane's new masks or undo them."""

from __future__ import annotations

from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_unet._qt.finetune.job import PlaneChange
from napari_unet._qt.layers import write_labels


class ChangeReview(QWidget):
    """Previous / next change, and Keep / Undo for the plane on screen; hidden when there is nothing to review."""

    def __init__(self, viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self.pending: list[PlaneChange] = []  # planes not yet kept or undone
        self._at = 0
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.previous_button = QPushButton("◀ previous")
        self.previous_button.setToolTip("Show the previous plane the refresh changed")
        self.next_button = QPushButton("next ▶")
        self.next_button.setToolTip("Show the next plane the refresh changed")
        self.keep_button = QPushButton("Keep")
        self.keep_button.setToolTip("Keep the new masks of this plane")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Bring back this plane's masks as they were before the refresh")
        self.keep_all_button = QPushButton("Keep all")
        self.keep_all_button.setToolTip("Keep every plane's new masks and close the review")
        row = QHBoxLayout()
        for button in (self.previous_button, self.next_button, self.keep_button, self.undo_button,
                       self.keep_all_button):
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addLayout(row)
        self.previous_button.clicked.connect(lambda: self.go(self._at - 1))
        self.next_button.clicked.connect(lambda: self.go(self._at + 1))
        self.keep_button.clicked.connect(self.keep)
        self.undo_button.clicked.connect(self.undo)
        self.keep_all_button.clicked.connect(lambda: self.review([]))
        self.review([])

    def review(self, changes: list[PlaneChange]) -> None:
        """Start reviewing ``changes`` (none: hide); shows the first."""
        self.pending = list(changes)
        self.setVisible(bool(self.pending))
        self.go(0)

    @property
    def current(self) -> PlaneChange | None:
        """The change on screen."""
        return self.pending[self._at] if self.pending else None

    def go(self, index: int) -> None:
        """Show change ``index`` (wrapping round): move the viewer to its plane and select its layer."""
        if not self.pending:
            self.setVisible(False)
            return
        self._at = index % len(self.pending)
        change = self.pending[self._at]
        if change.layer in self.viewer.layers:
            self.viewer.layers.selection.active = change.layer
            if change.plane is not None:
                axis = self.viewer.dims.ndim - change.layer.ndim  # the layer's first axis in the viewer
                self.viewer.dims.set_current_step(axis, change.plane)
        where = "" if change.plane is None else f"plane {change.plane}: "
        self.label.setText(f"Change {self._at + 1} of {len(self.pending)}: {where}{change.changes.words()} "
                           f"in '{change.layer.name}'.")

    def keep(self) -> None:
        """Keep the new masks of the plane on screen and go to the next change."""
        if self.pending:
            self.pending.pop(self._at)
            self.go(self._at)

    def undo(self) -> None:
        """Put back the masks the plane on screen held before the refresh, and go to the next change."""
        change = self.current
        if change is None:
            return
        if change.layer in self.viewer.layers:
            write_labels(change.layer, change.before, change.plane)
        self.keep()
