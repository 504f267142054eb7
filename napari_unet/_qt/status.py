"""The status line under each widget's buttons: wrapped text that is never clipped."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel


class StatusLabel(QLabel):
    """A word-wrapped label that asks its layout for the height its text needs.

    Qt lays out a wrapped ``QLabel`` by its one-line minimum, so in a short dock a
    message of three or four lines was cut off at the bottom. This one sets its minimum
    height from the wrapped text at its current width, whenever the text or the width
    changes; the dock then grows (or scrolls) instead of hiding the end of the message.
    """

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # copy an error

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        needed = self.heightForWidth(max(self.width(), 1)) if self.text() else 0
        if needed != self.minimumHeight():
            self.setMinimumHeight(max(needed, 0))
