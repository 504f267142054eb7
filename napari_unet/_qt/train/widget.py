"""The New model dock widget: train a model for a new task from a painted Labels layer, in a worker."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import notification_manager, show_error
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_unet._qt._napari import unwrap
from napari_unet._qt._perf import add_labels_in_turns, set_bar
from napari_unet._qt.finetune.lossplot import LossPlot
from napari_unet._qt.help import help_link
from napari_unet._qt.jobs import segment_job, start_job, toggle_pause
from napari_unet._qt.layers import layer_spacing, model_input, spatial_transform
from napari_unet._qt.pickers import ImageLayerPicker
from napari_unet._qt.remember import remember
from napari_unet._qt.session import session_for
from napari_unet._qt.train.classes import ClassTable, class_map_kwargs, feature_names
from napari_unet._qt.train.job import (
    CLASSES,
    OBJECTS,
    SCORE_EVERY_S,
    Pair,
    Request,
    Trained,
    TrainStep,
    check_classes,
    check_kind,
    check_pair,
    more_images,
    painted_values,
    train_job,
    warm_up_training,
)
from napari_unet._qt.widgets import StatusLabel, combo, scroll_body
from napari_unet.model.files import model_card, save_model
from napari_unet.model.unet import UNet

SECONDS, STEPS = "seconds", "steps"
CPU_SECONDS = 180  # on a CPU a time budget: three minutes learns a few classes from a few slices
GPU_STEPS = 1000  # on a GPU a step budget: the same run on any card
TABLE_DELAY_MS = 700  # after painting pauses, list the painted values again
WARM_UP_DELAY_MS = 2000  # after the dock first shows, import what training needs (see warm_up_training)
ANSWERS = "(new model)"  # in the name of a layer this widget answered into: not painting to learn from


@dataclass(frozen=True)
class TrainOptions:
    """What the form does not show: for scripts, benchmarks and tests (``widget.options = ...``)."""

    base_channels: int | None = None  # classes: the new network's width; None: the plan's (16 on a CPU)
    init: UNet | None = None  # the network to start from; None: a fresh one (classes), the shipped one (objects)
    score_every: float = SCORE_EVERY_S  # training seconds between held-out scores


class PairList(QListWidget):
    """Other images with a painted Labels layer of their shape, each a checkbox (none ticked at first)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip("Tick other images to learn from as well, each with its painted Labels layer: one model "
                        "from all of them. They must all be 2D images or all volumes; the held-out slice, the "
                        "voxel size and the answer are those of the image picked above")
        self.setMaximumHeight(90)

    def show_pairs(self, pairs: list[tuple[str, str]]) -> None:
        """List ``(image, labels)`` layer names; a pair ticked before stays ticked."""
        ticked = set(self.checked())
        self.blockSignals(True)
        self.clear()
        for image, labels in pairs:
            item = QListWidgetItem(f"'{labels}' on '{image}'")
            item.setData(Qt.ItemDataRole.UserRole, (image, labels))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if (image, labels) in ticked else Qt.CheckState.Unchecked)
            item.setToolTip(f"Learn from '{image}' and its labels '{labels}' too")
            self.addItem(item)
        self.blockSignals(False)

    def checked(self) -> list[tuple[str, str]]:
        """The ticked ``(image, labels)`` layer names."""
        items = (self.item(row) for row in range(self.count()))
        return [tuple(item.data(Qt.ItemDataRole.UserRole)) for item in items
                if item.checkState() == Qt.CheckState.Checked]


class NewModelWidget(QWidget):
    """Train a new model (classes or objects) from an image and its painted labels; Segment then uses it."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.options = TrainOptions()
        self._worker = None
        self._job = None  # identifies the current job, so an earlier one's end is ignored
        self._stop: threading.Event | None = None
        self._pressed = 0.0  # when Train was pressed (time.perf_counter)
        self._request: tuple | None = None  # (image layer, labels layer, class names) of the run
        self.model: UNet | None = None  # the model this widget trained last
        self.first_score_s: float | None = None  # Train pressed -> first held-out figure shown

        self._table_timer = QTimer(self)  # painting in any Labels layer lists pairs and classes again
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(TABLE_DELAY_MS)
        self._table_timer.timeout.connect(self._list_pairs)

        self.image = ImageLayerPicker(napari_viewer, self.session)
        self.labels = combo((), tip="The Labels layer you painted on this image: a few slices are enough; on "
                                    "each painted slice, what is left at 0 counts as background")
        self.more = PairList()
        self.task = combo((CLASSES, OBJECTS), tip="classes: each label value is a class (tissues, organs); "
                                                  "objects: each label is one object, told apart from the others")
        self.table = ClassTable()
        self.unit = combo((SECONDS, STEPS), tip="End training after this long, or after this many steps")
        self.budget = QSpinBox()
        self.budget.setRange(1, 1_000_000)
        self.budget.setToolTip("How long training may run; Stop ends it sooner, keeping the model so far")
        self.hold = QCheckBox("hold out a painted slice to score")
        self.hold.setChecked(True)
        self.hold.setToolTip("Keep one painted slice (or, with one slice, its bottom quarter) out of training "
                             "and score it as the model learns: Dice per class, or AP@0.5 for objects")
        self.run_button = QPushButton("Train")
        self.run_button.setToolTip("Train a new model on the painted labels in the background; the viewer "
                                   "stays usable")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause training; press again to go on")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End now and keep the model so far")
        self.bar = QProgressBar()
        self.plot = LossPlot()
        self.score = StatusLabel()
        self.status = StatusLabel()
        self.save_button = QPushButton("Save model…")
        self.save_button.setToolTip("Save the new model to a file (load it in Segment, or with --model)")

        form = self._form = QFormLayout()
        form.addRow("image", self.image)
        form.addRow("labels", self.labels)
        form.addRow("also learn from", self.more)
        form.addRow("task", self.task)
        form.addRow("classes", self.table)
        budget = QHBoxLayout()
        budget.addWidget(self.budget)
        budget.addWidget(self.unit)
        form.addRow("budget", budget)
        form.addRow("", self.hold)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(scroll_body(self))
        layout.addWidget(help_link("new-task.md", "Teaching a new model"))
        layout.addLayout(form)
        layout.addLayout(buttons)
        for item in (self.bar, self.plot, self.score, self.status, self.save_button):
            layout.addWidget(item)
        layout.addStretch(1)

        self.use_defaults_for(self.session.device)
        remember("new model", {"task": self.task, "budget unit": self.unit, "budget": self.budget,
                               "hold out": self.hold})
        self.run_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause_or_resume)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(lambda: self.save())
        self.task.currentTextChanged.connect(self._update_state)
        self.image.changed.connect(self._list_labels)
        self.labels.currentTextChanged.connect(self._list_pairs)
        self.more.itemChanged.connect(self._show_classes)
        self.session.device_changed.connect(self.use_defaults_for)
        self.session.closing.connect(lambda: self.setEnabled(False))
        events = napari_viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self._list_labels)
        events.inserted.connect(lambda e: e.value.events.name.connect(self._list_labels))
        events.inserted.connect(lambda e: self._watch(e.value))
        for layer in napari_viewer.layers:
            self._watch(layer)
        self._list_labels()
        self._set_running(False)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        QTimer.singleShot(WARM_UP_DELAY_MS, warm_up_training)  # once the canvas has drawn (once per process)

    @property
    def running(self) -> bool:
        """Whether training (or the class map after it) is under way."""
        return self._worker is not None

    def use_defaults_for(self, device: str) -> None:
        on_cpu = device == "cpu"
        self.unit.setCurrentText(SECONDS if on_cpu else STEPS)
        self.budget.setValue(CPU_SECONDS if on_cpu else GPU_STEPS)

    # -- training ---------------------------------------------------------------------
    def start(self) -> None:
        """Check the picked layers, then train in a worker (a message instead when they won't do)."""
        if self._worker is not None:
            return
        image_layer, labels_layer = self.image.current_layer(), self._labels_layer()
        try:
            request = self._make_request(image_layer, labels_layer)
        except ValueError as exc:
            self._say(f"Cannot train: {exc}")
            return
        self._request = (unwrap(image_layer), unwrap(labels_layer), request.classes)
        self._stop, self._pressed, self.first_score_s = threading.Event(), time.perf_counter(), None
        self.plot.clear()
        self.score.setText("")
        self._start(train_job, request, device=self.session.device, stop=self._stop,
                    score_every=self.options.score_every, desc="Training a new model", on_result=self._trained,
                    on_error=self._failed)
        self._worker.paused.connect(lambda: self._say("Paused: the CPU is yours. Resume continues."))
        self._set_running(True)
        what = (f"{len(request.classes)} classes" if request.task == CLASSES else "objects")
        more = more_images(request)
        self._say(f"Learning {what} from '{labels_layer.name}'{more} on {self.session.device}; keep working, the "
                  "viewer stays usable.")

    def _start(self, job, *args, **kwargs) -> None:
        token = self._job = object()
        self._worker = start_job(self.session, job, *args, on_progress=self._progress,
                                 on_finished=lambda: self._finished(token), **kwargs)

    def _make_request(self, image_layer, labels_layer) -> Request:
        if image_layer is None:
            raise ValueError("open an image first (File › Open, or File › Open Sample › napari-unet)")
        if labels_layer is None:
            raise ValueError(f"add a Labels layer to '{image_layer.name}' (Layers › New Labels layer) and paint "
                             "a few slices")
        source = model_input(image_layer, 1)
        if source.channel_axis is not None:
            raise ValueError(f"'{image_layer.name}' has colour channels: training takes one channel (right-click "
                             "the layer › Split RGB, then pick one)")
        image, labels = np.asarray(source.data), np.array(labels_layer.data)  # a copy: painting goes on
        if image.ndim not in (2, 3):
            raise ValueError(f"'{image_layer.name}' has {image.ndim} dimensions: training takes a 2D image or "
                             "a volume (Z, Y, X)")
        task, spacing = self.task.currentText(), layer_spacing(image_layer, source.spatial_axes)
        check_pair(image, labels)
        more = self._more_pairs(image_layer.name, image)
        if task == CLASSES:
            check_classes(painted_values(labels, *(pair.labels for pair in more)))
        self._show_classes()
        names = self.table.names() if task == CLASSES else {}
        budget = self.budget.value()
        seconds = self.unit.currentText() == SECONDS
        return Request(image, labels, task, names, spacing,
                       max_seconds=float(budget) if seconds else None, max_steps=None if seconds else int(budget),
                       hold_out=self.hold.isChecked(), base_channels=self.options.base_channels,
                       init=self.options.init, more=more)

    def _more_pairs(self, first: str, image: np.ndarray) -> tuple[Pair, ...]:
        """The ticked pairs under 'also learn from', checked against the first image; ValueError says
        which pair won't do and why. Each keeps its own voxel size: training resamples them to one.
        """
        out = []
        for image_name, labels_name in self.more.checked():
            if image_name not in self.viewer.layers or labels_name not in self.viewer.layers:
                continue  # removed since: the list follows at once
            pair = f"'{labels_name}' on '{image_name}'"
            source = model_input(self.viewer.layers[image_name], 1)
            check_kind(image_name, source, first, image.ndim, f"untick {pair} under 'also learn from'")
            data = np.asarray(source.data)
            labels = np.array(self.viewer.layers[labels_name].data)  # a copy: painting goes on
            try:
                check_pair(data, labels)
            except ValueError as exc:
                raise ValueError(f"{pair} (under 'also learn from'): {exc}") from None
            out.append(Pair(data, labels, spacing=layer_spacing(self.viewer.layers[image_name], source.spatial_axes)))
        return tuple(out)

    def pause_or_resume(self) -> None:
        if toggle_pause(self._worker, self.pause_button):
            self._say("Training…")

    def stop(self) -> None:
        """End training after the current step (the model so far is kept), or skip the class map."""
        if self._stop is not None:
            self._stop.set()
            if self._worker is not None and self._worker.is_paused:
                self._worker.resume()
            self._say("Stopping after this step; the model so far is kept…")
        elif self._worker is not None:
            self._worker.quit()

    def _progress(self, step) -> None:
        set_bar(self.bar, step.done, max(step.total, 1))
        if not isinstance(step, TrainStep):  # the class map's tiles
            self.bar.setFormat("applying the new model %v/%m")
            return
        self.bar.setFormat(f"%v/%m {self.unit.currentText()}")
        record, score = step.record, step.score
        if score is not None and score.metric == "AP@0.5":  # the plot's orange line
            record = replace(record, val_ap50=score.mean)
        self.plot.add(record)
        if score is not None:
            self._show_score(score)

    def _show_score(self, score) -> None:
        if self.first_score_s is None:
            self.first_score_s = time.perf_counter() - self._pressed
        self.score.setText(score.text()[0].upper() + score.text()[1:])

    def _trained(self, result: Trained) -> None:
        image_layer, labels_layer, names = self._request
        model = result.model
        card = model_card(model)
        name = f"{'classes' if card.task == 'semantic' else 'objects'} of {image_layer.name}"
        model.card = replace(card, name=name)
        self.model = model
        self.session.set_model(model, name)
        if result.score is not None:
            self._show_score(result.score)
        steps = card.provenance.get("steps", "?")
        self._say(f"Trained '{name}' ({steps} steps). Segment now uses it (it is in Segment's model picker); "
                  "Save model… keeps it. Applying it to the image…")
        self._apply(model, image_layer, labels_layer, names)

    def _apply(self, model: UNet, image_layer, labels_layer, names: dict[int, str]) -> None:
        """Segment the image with the new model in a worker, into a layer beside the painted one."""
        if image_layer not in self.viewer.layers:
            return
        source = model_input(image_layer, 1)
        semantic = model_card(model).task == "semantic"
        self._stop = None  # Stop now cancels this
        spacing = layer_spacing(image_layer, source.spatial_axes)
        self._start(segment_job, source.data, model, device=self.session.device,
                    **({"spacing": spacing} if semantic else {}), desc="Applying the new model",
                    on_result=lambda result: self._show_result(result[0].labels, image_layer, labels_layer, names,
                                                               semantic),
                    on_error=lambda exc: self._say(f"The new model is in use, but applying it failed: {exc}"))
        self._set_running(True)

    def _show_result(self, labels: np.ndarray, image_layer, labels_layer, names: dict[int, str],
                     semantic: bool) -> None:
        if image_layer not in self.viewer.layers:
            return
        kind = "classes" if semantic else "objects"
        name = f"{image_layer.name} {kind} (new model)"
        extra = class_map_kwargs(names, labels_layer) if semantic else {}
        if name in self.viewer.layers and np.shape(self.viewer.layers[name].data) == np.shape(labels):
            layer = self.viewer.layers[name]
            layer.data = labels
            if "features" in extra:
                layer.features = extra["features"]
        else:
            source = model_input(image_layer, 1)
            layer = add_labels_in_turns(self.viewer, labels, alive=lambda: not self.session.closed, name=name,
                                        **spatial_transform(image_layer, source.spatial_axes), **extra)
        found = (", ".join(n for v, n in names.items() if v and (labels == v).any()) if semantic
                 else f"{int(labels.max())} objects")
        self._say(self.status.text().replace(" Applying it to the image…", "") +
                  f"\nIts answer is in '{layer.name}' ({found or 'background only'}); correct it with the brush.")

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, ValueError):
            show_error(f"napari-unet: training failed: {exc}")
        else:
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)
        self._say(f"Training failed: {exc}")

    def _finished(self, token) -> None:
        if token is not self._job:  # the training run whose result started the class map
            return
        worker = self._worker
        self._worker = self._stop = self._job = None
        if worker is not None and worker.abort_requested and not self.session.closed:
            self._say(self.status.text().replace(" Applying it to the image…", " (not applied: stopped)"))
        self._set_running(False)

    # -- the model ----------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the model trained here (atomically); asks where when ``path`` is None."""
        if self.model is None:
            return None
        name = model_card(self.model).name
        if path is None:
            default = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) + ".safetensors"
            path, _ = QFileDialog.getSaveFileName(self, "Save napari-unet model", default,
                                                  "Model files (*.safetensors)")
            if not path:
                return None
        try:
            saved = save_model(self.model, path)
        except OSError as exc:
            show_error(f"napari-unet: could not save the model: {exc}")
            return None
        self._say(f"Saved '{name}' to {saved}; load it in Segment or with --model.")
        return saved

    # -- state --------------------------------------------------------------------------
    def _labels_layer(self):
        name = self.labels.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _list_labels(self, *_) -> None:
        """List the Labels layers, those of the image's shape first; keep the pick if it is still there."""
        image = self.image.current_layer()
        shape = None
        if image is not None:
            try:
                source = model_input(image, 1)
                shape = tuple(np.shape(source.data)[ax] for ax in source.spatial_axes)
            except ValueError:
                pass
        layers = [layer for layer in self.viewer.layers if isinstance(layer, Labels)]
        layers.sort(key=lambda layer: (layer.data.shape != shape, "(new model)" in layer.name))
        keep = self.labels.currentText()
        self.labels.blockSignals(True)
        self.labels.clear()
        self.labels.addItems([layer.name for layer in layers])
        if keep in [layer.name for layer in layers]:
            self.labels.setCurrentText(keep)
        self.labels.blockSignals(False)
        self._list_pairs()

    def _list_pairs(self, *_) -> None:
        """List the other images that have a painted Labels layer of their shape (then the classes)."""
        image, labels = self.image.current_layer(), self._labels_layer()
        shapes = {}
        for layer in self.viewer.layers:
            if isinstance(layer, Image) and (image is None or unwrap(layer) is not unwrap(image)):
                try:
                    source = model_input(layer, 1)
                except ValueError:
                    continue
                shapes[layer.name] = tuple(np.shape(source.data)[ax] for ax in source.spatial_axes)
        painted = [layer for layer in self.viewer.layers if isinstance(layer, Labels) and ANSWERS not in layer.name
                   and (labels is None or unwrap(layer) is not unwrap(labels)) and layer.data.shape in shapes.values()
                   and np.asarray(layer.data).any()]
        self.more.show_pairs([(name, layer.name) for name, shape in shapes.items() for layer in painted
                              if layer.data.shape == shape])
        self.more.setVisible(self.more.count() > 0)
        self._form.labelForField(self.more).setVisible(self.more.count() > 0)
        self._show_classes()

    def _show_classes(self, *_) -> None:
        """The class table: every value painted in the picked labels and the ticked pairs' labels."""
        layers = [self._labels_layer()] + [self.viewer.layers[labels] for image, labels in self.more.checked()
                                           if labels in self.viewer.layers]
        layers = [layer for layer in layers if layer is not None]
        known = {}
        for layer in reversed(layers):  # the picked layer's names win
            known.update(feature_names(layer))
        self.table.show_values(painted_values(*(layer.data for layer in layers)), known)
        self._update_state()

    def _watch(self, layer) -> None:
        """Follow a Labels layer's painting, so a new class gets its row and a painted image its pair."""
        if isinstance(layer, Labels):
            layer = unwrap(layer)
            layer.events.paint.connect(self._painted)
            layer.events.data.connect(self._painted)

    def _painted(self, *_) -> None:
        if self._worker is None:
            self._table_timer.start()  # once the strokes pause: np.unique over a volume takes a moment

    def _update_state(self, *_) -> None:
        classes = self.task.currentText() == CLASSES
        self.table.setVisible(classes)
        self._form.labelForField(self.table).setVisible(classes)
        idle = self._worker is None and not self.session.closed
        self.run_button.setEnabled(idle)
        self.save_button.setEnabled(idle and self.model is not None)

    def _set_running(self, running: bool) -> None:
        for widget in (self.image, self.labels, self.more, self.task, self.table, self.budget, self.unit,
                       self.hold):
            widget.setEnabled(not running)
        self.pause_button.setEnabled(running and self._stop is not None)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.bar.setVisible(running)
        set_bar(self.bar, 0)
        self._update_state()

    def _say(self, text: str) -> None:
        self.status.setText(text)
