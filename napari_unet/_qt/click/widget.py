"""The Click to segment dock widget: a switch for click mode and what the clicks did."""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_unet._qt.click.tool import TOGGLE_KEY, ClickTool
from napari_unet._qt.help import help_link
from napari_unet._qt.pickers import ImageLayerPicker
from napari_unet._qt.remember import remember
from napari_unet._qt.session import session_for
from napari_unet._qt.widgets import StatusLabel, scroll_body

HELP = (
    "Click an object to add it as a new label; click again to extend it.\n"
    "Shift-click (or right-click) removes a wrong part.\n"
    "Click an existing label to refine it.\n"
    "Esc ends the object; Ctrl+Z undoes the last click.\n"
    "In a Z stack a click makes the 3D object (also in the 3D view).\n"
    "Markers show the object's clicks: green on it, red off it."
)


class ClickWidget(QWidget):
    """Click mode switch, image picker and options; the work is done by :class:`ClickTool`."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session_for(napari_viewer)
        self.image = ImageLayerPicker(napari_viewer, self.session)
        self.tool = ClickTool(napari_viewer, self.session, self.image.current_layer)
        self.toggle = QCheckBox(f"click mode ({TOGGLE_KEY.upper()})")
        self.toggle.setToolTip("Clicks on the canvas segment objects; drags still pan")
        self.preserve = QCheckBox("keep other objects' pixels")
        self.preserve.setChecked(True)
        self.preserve.setToolTip("Off: a clicked object may take pixels from its neighbours")
        self.first_from_model = QCheckBox("first click: the segmentation model's object")
        self.first_from_model.setChecked(True)
        self.first_from_model.setToolTip(
            "A lone click on a new object takes the object the segmentation model finds there "
            "(sharper outlines); later clicks refine it with the click network. Off: the click "
            "network answers every click")
        self.through_planes = QCheckBox("3D objects in Z stacks")
        self.through_planes.setChecked(True)
        self.through_planes.setToolTip(
            "On: in a stack whose first axis is depth, a click makes the 3D object, carried through the "
            "planes above and below, and a click in any plane refines it (one undo step each); in napari's "
            "3D view a click takes the first bright object along the line of sight. Off, or a time series: "
            "clicks segment the plane on screen")
        self.end_button = QPushButton("End object (Esc)")
        self.end_button.setToolTip("Finish the object being clicked: the next click starts a new one")
        self.help = QLabel(HELP)
        self.help.setWordWrap(True)
        self.status = StatusLabel()

        layout = QVBoxLayout(scroll_body(self))
        widgets = (help_link("clicking.md", "Clicking objects"), self.image, self.toggle, self.preserve,
                   self.first_from_model, self.through_planes, self.end_button, self.help, self.status)
        for widget in widgets:
            layout.addWidget(widget)
        layout.addStretch(1)

        self.toggle.toggled.connect(self.tool.set_enabled)
        self.tool.enabled_changed.connect(self._show_enabled)
        self.preserve.toggled.connect(lambda on: setattr(self.tool, "preserve_labels", on))
        self.first_from_model.toggled.connect(lambda on: setattr(self.tool, "first_from_model", on))
        self.through_planes.toggled.connect(lambda on: setattr(self.tool, "through_planes", on))
        self.end_button.clicked.connect(self.tool.end_object)
        self.tool.message.connect(self._say)
        remember("click", {"keep other objects": self.preserve, "first click from the model": self.first_from_model,
                           "3D objects in Z stacks": self.through_planes})
        tool = self.tool  # not self: the lambdas must not keep the widget alive
        self.session.closing.connect(lambda: tool.set_enabled(False))
        self.destroyed.connect(lambda *_: tool.close())

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _show_enabled(self, on: bool) -> None:
        self.toggle.blockSignals(True)
        self.toggle.setChecked(on)
        self.toggle.blockSignals(False)
        self.status.setText("Click on an object." if on else "")
