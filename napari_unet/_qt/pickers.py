"""Pickers shared by the napari-unet widgets: image layer, model and device."""

from __future__ import annotations

from pathlib import Path

from napari.layers import Image
from napari.utils.notifications import show_error
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFileDialog, QLabel, QVBoxLayout, QWidget

from napari_unet._qt.layers import is_output, model_input
from napari_unet.devices import available_devices
from napari_unet.model.files import DEFAULT_MODEL, ModelFileError, image_channels

LOAD_FILE = "Load model file…"
_DEFAULT = "shipped"  # item data of the model shipped with the package
_SESSION = "session"  # item data of a model that came from elsewhere (e.g. fine-tuning)


class ImageLayerPicker(QWidget):
    """Image layers the session's model can take; a note says why others are not listed.

    ``accepts(layer, n_channels)`` reads a layer as the widget feeds it to the model, or
    raises ValueError saying why it can't (default :func:`model_input`).

    Signals
    -------
    changed()
        The picked layer changed (or the list of layers did).
    """

    changed = Signal()

    def __init__(self, viewer, session, parent: QWidget | None = None, *, accepts=model_input):
        super().__init__(parent)
        self.viewer, self.session, self.accepts = viewer, session, accepts
        self.combo = QComboBox()
        self.combo.setToolTip("The image layer to work on; follows the layer you select. Layers the model "
                              "cannot take are left out, and the note below says why")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("napari_unet_note")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.note)
        self.combo.currentIndexChanged.connect(lambda *_: self._update_note())

        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved, events.reordered):
            event.connect(self.refresh)
        events.inserted.connect(self._watch_layer)
        viewer.layers.selection.events.active.connect(self._follow_active)
        session.model_changed.connect(self.refresh)
        for layer in viewer.layers:
            self._watch_layer(layer)
        self._rejected: dict[str, str] = {}
        self.refresh()

    def current_layer(self):
        name = self.combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def set_current(self, layer) -> None:
        index = self.combo.findText(layer.name)
        if index >= 0:
            self.combo.setCurrentIndex(index)

    def refresh(self, *_) -> None:
        """Re-list the image layers; keep the pick when it is still listed."""
        n_channels = image_channels(self.session.model) if self.session.model is not None else 1
        keep = self.combo.currentText()
        self._rejected = {}
        names = []
        for layer in self.viewer.layers:
            if not isinstance(layer, Image):
                continue
            try:
                self.accepts(layer, n_channels)
            except ValueError as exc:
                self._rejected[layer.name] = str(exc)
            else:
                names.append(layer.name)
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(names)
        active = self.viewer.layers.selection.active
        follow = active is not None and not is_output(active)
        for pick in (keep, active.name if follow else None):
            if pick in names:
                self.combo.setCurrentText(pick)
        self.combo.blockSignals(False)
        self._update_note()
        self.changed.emit()

    def _update_note(self) -> None:
        lines = [f"'{name}' is not listed: {why}" for name, why in self._rejected.items()]
        if not self.combo.count() and not lines:
            lines = ["Open an image (File › Open, or File › Open Sample › napari-unet)."]
        self.note.setText("\n".join(lines))
        self.note.setVisible(bool(lines))
        self.changed.emit()

    def _follow_active(self, event) -> None:
        layer = event.value
        if layer is not None and layer.name in self._rejected:
            self._update_note()
        elif layer is not None and not is_output(layer):
            self.set_current(layer)

    def _watch_layer(self, event_or_layer) -> None:
        layer = getattr(event_or_layer, "value", event_or_layer)
        if isinstance(layer, Image):
            layer.events.name.connect(self.refresh)
            layer.events.data.connect(self.refresh)


class ModelPicker(QComboBox):
    """The shipped model, files loaded this session, the session's current model, and
    "Load model file…"; picking one makes the session use it.
    """

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.addItem("nuclei (shipped)", _DEFAULT)
        self.addItem(LOAD_FILE, LOAD_FILE)
        self.activated.connect(self._picked)
        session.model_changed.connect(self._show_session_model)
        self.setToolTip("The network that segments; load a file saved by napari-unet to use another")
        self._show_session_model()  # a model put in use before this picker was made (New model, Fine-tune)

    def _picked(self, index: int) -> None:
        data = self.itemData(index)
        if data == _SESSION:  # the model already in use
            return
        path = None if data == _DEFAULT else data
        if data == LOAD_FILE:
            path, _ = QFileDialog.getOpenFileName(
                self, "Load napari-unet model", "",
                "Model files (*.safetensors *.zip rdf.yaml bioimageio.yaml);;All files (*)"
            )
            if not path:
                self._show_session_model()
                return
        self.load(path)

    def load(self, path: str | Path | None) -> bool:
        """Load a model file (None: the shipped one); says what went wrong if it can't."""
        try:
            self.session.load_model(path)
        except ModelFileError as exc:
            show_error(f"napari-unet: could not load the model: {exc}")
            self._show_session_model()
            return False
        return True

    def _show_session_model(self, *_) -> None:
        """Select the entry of the session's model, adding one for a new file or version."""
        session = self.session
        source = session.model_source
        if session.model is None or source == DEFAULT_MODEL:
            self.setCurrentIndex(0)
            return
        key = _SESSION if source is None else str(source)
        label = session.model_name if source is None else f"{session.model_name} ({source.name})"
        index = self.findData(key)
        if index < 0:
            index = self.count() - 1
            self.insertItem(index, label, key)
        self.setItemText(index, label)
        self.setCurrentIndex(index)


class DevicePicker(QComboBox):
    """The devices that really exist here; the pick is the session's device."""

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.addItems(available_devices())
        self.setCurrentText(session.device)
        self.currentTextChanged.connect(session.set_device)
        session.device_changed.connect(self._show)
        self.setToolTip("Where the network runs; only devices found on this machine are listed")

    def _show(self, device: str) -> None:
        self.setCurrentText(device)
