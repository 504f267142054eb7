"""Small widgets every dock shares: the status line, a combo box, a spin box, folded sections."""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import QComboBox, QDockWidget, QFrame, QLabel, QMainWindow, QScrollArea, QVBoxLayout, QWidget

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
    When the dock first shows, the docks beside it share the height by what each needs.
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
    widget.installEventFilter(_BalanceOnShow(widget))
    return body


class _BalanceOnShow(QObject):
    """On a widget's first show, share its dock area's height among the docks in it."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Show:
            obj.removeEventFilter(self)
            area = obj.findChild(QScrollArea)
            if area is not None and area.widget() is not None:  # as wide as the controls, beside the scroll bar
                bar = area.verticalScrollBar().sizeHint().width()
                area.setMinimumWidth(area.widget().minimumSizeHint().width() + bar)
            QTimer.singleShot(0, lambda: balance_docks(obj))
        return False


def balance_docks(widget: QWidget) -> None:
    """Resize the docks of ``widget``'s dock area so each gets a share of the height in
    proportion to what its contents ask for (Qt gives a new dock only its minimum).
    """
    dock = widget.parentWidget()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parentWidget()
    main = widget.window()
    if dock is None or not isinstance(main, QMainWindow):
        return
    area = main.dockWidgetArea(dock)
    docks = [d for d in main.findChildren(QDockWidget)
             if d.isVisible() and not d.isFloating() and main.dockWidgetArea(d) == area]
    wants = [max(1, d.widget().sizeHint().height()) if d.widget() is not None else 1 for d in docks]
    if len(docks) > 1:
        main.resizeDocks(docks, wants, Qt.Orientation.Vertical)
