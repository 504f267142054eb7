"""Small widgets every dock shares: the status line, a combo box, a spin box, folded sections."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

FOLD_ICONS = {"expandedIcon": "▼", "collapsedIcon": "▶"}  # every folded section (QCollapsible) of the widgets


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


def combo(items, *, tip: str) -> QComboBox:
    """A combo box of ``items`` with a tooltip."""
    box = QComboBox()
    box.addItems(list(items))
    box.setToolTip(tip)
    return box


def spin(box, low, high, value, step, tip: str):
    """Set up a (double) spin box: range, step, value, tooltip; it reports once typing is done."""
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)  # typing "0.35" recomputes once, not per keystroke
    return box


def scroll_body(widget: QWidget) -> QWidget:
    """The inner widget to lay ``widget``'s controls out on, inside a frameless vertical
    scroll area that fills ``widget``: a dock then takes what the window can give (three
    docks fit a 1366x768 screen) and scrolls the rest instead of pushing the window taller.
    """
    area = QScrollArea(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    body = QWidget()
    area.setWidget(body)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return body
