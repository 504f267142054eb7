"""The widgets' status line: a long message makes room for itself instead of being cut off."""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from napari_unet._qt.widgets import StatusLabel

LONG = ("Fine-tuning done: 289 steps in 45 s; Segment now uses the new model, the click tool's "
        "network learnt for 70 steps (Revert goes back).\nNew masks: 'cells masks': 24679 pixels "
        "outside your corrections (Ctrl+Z undoes).")


def _minimum_height_in_a_column(label: QLabel, qtbot) -> tuple[int, int]:
    parent = QWidget()
    qtbot.addWidget(parent)
    layout = QVBoxLayout(parent)
    layout.addWidget(label)
    layout.addStretch(1)
    parent.resize(300, 400)
    parent.show()
    label.setText(LONG)
    qtbot.wait(50)
    return parent.minimumSizeHint().height(), label.heightForWidth(label.width())


def test_status_label_asks_for_the_height_of_its_wrapped_text(qtbot):
    asked, needed = _minimum_height_in_a_column(StatusLabel(), qtbot)
    assert needed > 60  # four or more lines at 300 px
    # so a short dock grows (or scrolls) rather than clipping the text; a plain wrapped QLabel
    # asks for less than it needs here (its one-line minimum), which is what cut messages off
    assert asked >= needed

