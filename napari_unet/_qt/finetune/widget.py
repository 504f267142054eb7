"""The Fine-tune dock widget: teach the session's models from the user's corrected masks, in a worker."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from napari.layers import Labels, Shapes
from napari.utils.notifications import notification_manager, show_error
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_unet._qt._perf import set_bar
from napari_unet._qt.finetune.annotations import MODES, REGION, TrainingSet, snapshot
from napari_unet._qt.finetune.classes import (
    ClassesTuned,
    class_request,
    classes_job,
    images_learnt,
    is_class_model,
    learnt_pairs,
    protected_region,
    write_class_map,
)
from napari_unet._qt.finetune.job import Refresh, TrainStep, finetune_job, refresh_job
from napari_unet._qt.finetune.lossplot import LossPlot
from napari_unet._qt.finetune.pairs import PairPicker
from napari_unet._qt.finetune.results import quality_of, refresh_targets, trained_message, write_masks
from napari_unet._qt.finetune.review import ChangeReview
from napari_unet._qt.finetune.settings import FinetuneSettings
from napari_unet._qt.help import help_link
from napari_unet._qt.jobs import segment_job, start_job, toggle_pause
from napari_unet._qt.layers import layer_spacing, model_input
from napari_unet._qt.remember import remember
from napari_unet._qt.session import session_for
from napari_unet._qt.train.job import more_images
from napari_unet._qt.widgets import StatusLabel, combo, scroll_body
from napari_unet.finetune.both import SEGMENTATION
from napari_unet.finetune.quality import CHECKING
from napari_unet.model.files import click_model_beside, image_channels, model_card, save_model, trainable
from napari_unet.training.holdout import MIN_OBJECTS

REFRESH, NEW_LAYER = "refresh the masks I did not correct", "add a new layer"
REFRESHING = "; refreshing the class map outside your corrections…"  # in the status until a class map is redrawn


class FinetuneWidget(QWidget):
    """Fine-tune on corrected Labels layers; the results replace the session's models (Revert undoes)."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self._worker = None  # training, then the refresh of predictions
        self._job = None  # identifies the current job, so an earlier one's end is ignored
        self._stop: threading.Event | None = None
        self._stage: str | None = None  # the latest progress's stage (CHECKING: the models segment the corrections)
        self._data: TrainingSet | None = None  # the snapshot being learned from
        self._candidate = None  # a fine-tuned result not put in use (not better on the check), and its data
        self._classes = None  # a class model's run: its Request, and its (image layer, class-map layer) pairs

        self.pairs = PairPicker(napari_viewer, self.session)
        self.mode = combo(MODES, tip="Pixels the loss sees; the rest is ignored, never taught as background")
        self.region = QComboBox()
        self.region.setToolTip("A Shapes or Labels layer outlining the checked area")
        self.after = combo((REFRESH, NEW_LAYER), tip="Where the new model's masks go when training ends")
        self.only_shown = QCheckBox("only the displayed plane")
        self.only_shown.setToolTip("In a stack, segment again only the plane on screen (else every plane "
                                   "that holds masks)")
        self.settings = FinetuneSettings(self.session.device)
        self.run_button = QPushButton("Fine-tune")
        self.run_button.setToolTip("Train the model on your corrected masks in the background; the viewer "
                                   "stays usable")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause training (the weights so far are kept); press again to go on")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End now and keep the best weights so far")
        self.bar = QProgressBar()
        self.plot = LossPlot()
        self.status = StatusLabel()
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip("Go back to the model used before")
        self.save_button = QPushButton("Save model…")
        self.save_button.setToolTip("Save the model in use to a file (with its click network beside it)")
        self.use_new_button = QPushButton("Use the new model")
        self.use_new_button.setToolTip("Put the fine-tuned model in use although the check found it no better")
        self.use_new_button.setVisible(False)
        self.review = ChangeReview(napari_viewer)

        form = self._form = QFormLayout()
        form.addRow("learn from", self.pairs)
        form.addRow("annotated", self.mode)
        form.addRow("region layer", self.region)
        form.addRow("afterwards", self.after)
        form.addRow("", self.only_shown)
        buttons, models = QHBoxLayout(), QHBoxLayout()
        for button in (self.run_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        models.addWidget(self.use_new_button)
        models.addWidget(self.revert_button)
        models.addWidget(self.save_button)
        layout = QVBoxLayout(scroll_body(self))
        items = (help_link("finetuning.md", "Fine-tuning"), form, self.settings, buttons, self.bar, self.plot,
                 self.status, self.review, models)
        for item in items:
            (layout.addLayout if isinstance(item, (QHBoxLayout, QFormLayout)) else layout.addWidget)(item)
        layout.addStretch(1)

        advanced = self.settings
        remember("finetune", {"annotated": self.mode, "afterwards": self.after, "only the displayed plane":
                              self.only_shown, "budget unit": advanced.unit, "budget": advanced.budget,
                              "learning rate": advanced.lr, "freeze the encoder": advanced.freeze_encoder,
                              "edit margin": advanced.margin, "click network share": advanced.click_share,
                              "validation patch": advanced.validate})
        self.run_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause_or_resume)
        self.stop_button.clicked.connect(self.stop)
        self.revert_button.clicked.connect(self.revert)
        self.use_new_button.clicked.connect(self.use_new_model)
        self.save_button.clicked.connect(lambda: self.save())
        self.mode.currentTextChanged.connect(self._update_state)
        self.pairs.changed.connect(self._update_state)
        self.session.model_changed.connect(self._update_state)
        self.session.model_changed.connect(self._drop_candidate)
        self.session.device_changed.connect(self.settings.use_defaults_for)
        self.session.closing.connect(lambda: self.setEnabled(False))
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._list_regions)
        self._list_regions()
        self._set_running(False)

    @property
    def running(self) -> bool:
        """Whether training (or the refresh after it) is under way."""
        return self._worker is not None

    @property
    def paused(self) -> bool:
        """Whether training is paused (Pause pressed and the worker now waiting)."""
        return self._worker is not None and getattr(self._worker, "is_paused", False)

    # -- training ---------------------------------------------------------------------
    def start(self) -> None:
        """Snapshot the picked labels and start fine-tuning copies of the session's models."""
        if self._worker is not None:
            return
        try:
            model = trainable(self.session.ensure_model())
            pairs = self.pairs.pairs()
            data = snapshot(self.viewer, pairs, self.mode.currentText(), image_channels(model),
                            self.session.edits, region=self._region_layer(), margin=self.settings.margin.value())
        except ValueError as exc:
            self._say(f"Cannot fine-tune: {exc}")
            return
        if is_class_model(model):
            self._start_classes(model, pairs, data)
            return
        try:
            click_model = self.session.ensure_click_model()
        except ValueError:  # no click network to teach (the shipped file is missing): the model gets it all
            click_model = None
        args = self.settings.job_args()
        self._data, self._stop = data, threading.Event()
        self._set_candidate(None)
        self.review.review([])
        self.plot.clear()
        self._start(finetune_job, model, click_model, data, **args, device=self.session.device, stop=self._stop,
                    desc="Fine-tuning", on_result=self._trained, on_error=self._failed)
        self._worker.paused.connect(self._paused)
        self._set_running(True)
        validation = ""
        if args["validate"]:
            validation = (" It learns in two halves, each without half of them (squares spread over "
                          "them), to check the new model on what it did not see (orange)." if
                          data.n_objects >= MIN_OBJECTS else f" Too few to hold some out for validation "
                          f"(that takes {MIN_OBJECTS}): all are trained on.")
        self._say(f"Learning from {data.n_objects} objects ({', '.join(sorted(set(data.modes)))}) "
                  f"on {self.session.device}; keep working, the viewer stays usable.{validation}")

    def _start_classes(self, model, pairs, data: TrainingSet) -> None:
        """A class model: its corrections as one request for its own plan (see ``classes``)."""
        try:
            request = class_request(model, pairs, data, self.session.edits, self.settings.margin.value(),
                                    self.settings.budgets(), self.settings.validate.isChecked())
        except ValueError as exc:
            self._say(f"Cannot fine-tune: {exc}")
            return
        layers = learnt_pairs(data)
        self._data, self._stop = data, threading.Event()
        self._classes = (request, layers)
        self._set_candidate(None)
        self.review.review([])
        self.plot.clear()
        self._start(classes_job, request, device=self.session.device, stop=self._stop, desc="Fine-tuning",
                    on_result=self._classes_trained, on_error=self._failed)
        self._worker.paused.connect(self._paused)
        self._set_running(True)
        held = (f" A painted slice (or band) of those in '{layers[0][1].name}' is held out to check the new model."
                if request.hold_out else "")
        more = more_images(request)
        self._say(f"Learning from your corrections of '{layers[0][1].name}'{more} "
                  f"({'class maps' if more else 'a class map'}: {', '.join(model_card(model).classes[1:])}) on "
                  f"{self.session.device}; keep working, the viewer stays usable.{held}")

    def _start(self, job, *args, **kwargs) -> None:
        token = self._job = object()
        self._worker = start_job(self.session, job, *args, on_progress=self._progress,
                                 on_finished=lambda: self._finished(token), **kwargs)

    def pause_or_resume(self) -> None:
        if toggle_pause(self._worker, self.pause_button):
            self._say("Training…")

    def _paused(self) -> None:
        self._say("Paused: the CPU is yours. Resume continues (paused time does not count).")

    def stop(self) -> None:
        """End training after the current step (the best weights so far are kept), or skip the refresh."""
        if self._stop is None and self._worker is not None:
            self._worker.quit()
        elif self._stop is not None:
            self._stop.set()
            if self._worker is not None and self._worker.is_paused:
                self._worker.resume()
            if self._stage == CHECKING and self.plot.steps:  # it trained: the check decides what is used
                self._say("Stopping once the new model is checked on your corrections (the check decides which "
                          "model is used)…")
            else:
                self._say("Stopping after this step; the best weights so far are kept…")

    def _progress(self, step) -> None:
        self._stage = step.stage
        set_bar(self.bar, step.done, max(step.total, 1))
        if isinstance(step, TrainStep) and step.record is not None:
            unit = "s" if self.settings.budgets()["max_seconds"] else "steps"
            if step.stage == SEGMENTATION:
                self.plot.add(step.record)
                self.bar.setFormat(f"%v/%m {unit}")
            else:
                self.bar.setFormat(f"click network: %v/%m {unit}")
        elif step.stage == CHECKING:
            self.bar.setFormat("checking on your corrections: %v/%m")
        else:
            self.bar.setFormat("new masks: plane %v/%m" if step.stage == "new masks" else "new masks %v/%m")

    def _trained(self, result) -> None:
        if result.model.steps == 0:  # stopped while the old model was checked: nothing learnt
            self._say("Stopped before learning anything: the model in use and every mask are as they were.")
            return
        quality = quality_of(result.model.model)
        if quality is not None and not quality.better:  # the check says no: the user's model stays
            self._set_candidate((result, self._data))
            self._say(trained_message(result, in_use=False))
            return
        self._use(result, self._data)

    def _classes_trained(self, result: ClassesTuned) -> None:
        if not result.better:  # the check says no: the user's model stays
            self._set_candidate((result, self._data))
            request, _ = self._classes
            self._say(f"Fine-tuned (learnt from {images_learnt(request)}): {result.words()}. Not better "
                      "there, so the old model stays in use and no class was changed; 'Use the new model' takes it "
                      "anyway.")
            return
        self._use(result, self._data)

    def _use_classes(self, result: ClassesTuned) -> None:
        """Put the fine-tuned class model in use, then redraw each class map learnt from outside its corrections."""
        request, layers = self._classes
        model = result.model
        self.session.set_model(model, model_card(model).name, None)
        self._say(f"Fine-tuned '{model_card(model).name}' (learnt from {images_learnt(request)}): "
                  f"{result.words()}. The new model is in use{REFRESHING}")
        trained_on = [request.annotated, *(pair.annotated for pair in request.more)]
        self._refresh_classes(model, [(*pair, mask) for pair, mask in zip(layers, trained_on)], len(layers) > 1)

    def _refresh_classes(self, model, targets: list[tuple], named: bool) -> None:
        """Segment the first target's image (image layer, class-map layer, pixels trained on) in a
        worker and redraw its class map; then the next target's. ``named``: say which map changed.
        """
        targets = [t for t in targets if t[0] in self.viewer.layers and t[1] in self.viewer.layers]
        if not targets:
            return
        (image_layer, labels_layer, trained_on), *rest = targets
        source = model_input(image_layer, 1)
        spacing = layer_spacing(image_layer, source.spatial_axes)
        self._stop = None  # Stop now skips the refresh
        self._start(segment_job, source.data, model, spacing=spacing, device=self.session.device,
                    desc="Refreshing the class map",
                    on_result=lambda out: self._write_classes(out[0].labels, labels_layer, trained_on, model,
                                                              rest, named),
                    on_error=lambda exc: self._say(f"The new model is in use, but its class map failed: {exc}"))

    def _write_classes(self, labels, labels_layer, trained_on, model, rest: list[tuple], named: bool) -> None:
        if self.session.model is not model:  # reverted meanwhile
            return
        line = None
        if labels_layer in self.viewer.layers and np.shape(labels) != np.shape(labels_layer.data):
            line = f"'{labels_layer.name}' changed shape meanwhile: not refreshed."
        elif labels_layer in self.viewer.layers:
            protected = protected_region(trained_on, labels_layer, self.session.edits, self.settings.margin.value())
            changed = write_class_map(labels_layer, labels, protected)
            note = (f"{changed} pixels changed class outside your corrections; Ctrl+Z on the layer undoes it."
                    if changed else "no pixel changed class outside your corrections.")
            line = f"Class map '{labels_layer.name}': {note}" if named else f"Class map: {note}"
            self.session.masks_refreshed.emit(f"Fine-tuned class model: {note}")
        if line is not None:
            self._say(self.status.text().replace(REFRESHING, ".") + "\n" + line)
        self._refresh_classes(model, rest, named)

    def _use(self, result, data: TrainingSet) -> None:
        if isinstance(result, ClassesTuned):
            self._use_classes(result)
            return
        seg, click = result.model, result.click
        model = seg.model
        self.session.set_model(model, model_card(model).name, None,
                               click_model=click.model if click is not None else None)
        self._say(trained_message(result, in_use=True))
        self._refresh(model, data)

    def use_new_model(self) -> None:
        """Put in use the fine-tuned model the check found no better (and refresh the masks with it)."""
        if self._candidate is None or self._worker is not None:
            return
        result, data = self._candidate
        self._set_candidate(None)
        self._use(result, data)
        if self._worker is not None:  # the refresh with it
            self._set_running(True)

    def _drop_candidate(self, *_) -> None:
        """Another model came into use: the one kept aside was fine-tuned from what is gone."""
        self._set_candidate(None)

    def _set_candidate(self, candidate) -> None:
        self._candidate = candidate
        self.use_new_button.setVisible(candidate is not None)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, ValueError):
            show_error(f"napari-unet: fine-tuning failed: {exc}")
        else:
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)
        self._say(f"Fine-tuning failed: {exc}. The previous model is still in use.")

    def _finished(self, token) -> None:
        if token is self._job:  # not the training run whose result started a refresh
            self._worker = self._job = self._stop = self._data = None
            self._set_running(False)

    # -- after training ---------------------------------------------------------------
    def _refresh(self, model, data: TrainingSet) -> None:
        """Segment again, off the main thread, what was segmented: the images, or every
        plane of a stack that holds masks (and the one on screen; only that one when asked).
        """
        n_channels = image_channels(model)
        targets = refresh_targets(self.viewer, data, n_channels, self.only_shown.isChecked())
        if not targets:
            return
        self._stop = None  # Stop now skips the refresh
        self._start(refresh_job, [t.inputs(n_channels) for t in targets], model, self.session.device,
                    desc="Refreshing masks", on_result=lambda results: self._write(targets, results, data, model),
                    on_error=lambda exc: self._say(f"The new model is in use, but its masks failed: {exc}"))

    def _write(self, targets: list[Refresh], results, data: TrainingSet, model) -> None:
        if self.session.model is not model:  # reverted meanwhile
            return
        notes, changed = write_masks(self.viewer, targets, results, data, self.session.edits,
                                     self.settings.margin.value(), new_layer=self.after.currentText() == NEW_LAYER,
                                     n_channels=image_channels(model), model=model)
        review = " Step through the changes below; Ctrl+Z undoes them all." if changed else ""
        self._say(self.status.text() + "\nNew masks: " + "; ".join(notes) + "." + review)
        self.review.review(changed)
        self.session.masks_refreshed.emit("Fine-tuned model: " + "; ".join(notes) + ".")

    # -- models -------------------------------------------------------------------------
    def revert(self) -> None:
        try:
            self.session.revert()
        except ValueError as exc:
            self._say(str(exc))
            return
        self._say(f"Back to '{self.session.model_name}'. Segment again to see its masks.")

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the session's model, provenance included; asks where when ``path`` is None.

        A fine-tuned click network goes beside it, as ``<name>_click.safetensors``:
        loading the model in Segment brings it back too.
        """
        if self.session.model is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save napari-unet model", "fine-tuned.safetensors",
                                                  "Model files (*.safetensors)")
            if not path:
                return None
        click = self.session.click_model
        tuned_click = click is not None and "fine_tuned_on" in model_card(click).provenance
        try:
            saved = save_model(self.session.model, path)
            click_saved = save_model(click, click_model_beside(saved)) if tuned_click else None
        except OSError as exc:
            show_error(f"napari-unet: could not save the model: {exc}")
            return None
        also = f" and its click network to {click_saved.name}" if click_saved is not None else ""
        self._say(f"Saved '{self.session.model_name}' to {saved}{also}; load it in Segment or with --model.")
        return saved

    # -- state --------------------------------------------------------------------------
    def _region_layer(self):
        name = self.region.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _list_regions(self, *_) -> None:
        keep = self.region.currentText()
        self.region.clear()
        self.region.addItems([lay.name for lay in self.viewer.layers if isinstance(lay, (Shapes, Labels))])
        self.region.setCurrentText(keep)
        self._update_state()

    def _update_state(self, *_) -> None:
        show_region = self.mode.currentText() == REGION
        self.region.setVisible(show_region)
        self._form.labelForField(self.region).setVisible(show_region)
        idle = self._worker is None and not self.session.closed
        self.run_button.setEnabled(idle and bool(self.pairs.pairs()))
        self.revert_button.setEnabled(idle and bool(self.session.history))
        own = self.session.model is not None and getattr(self.session.model, "fine_tunable", True)
        self.save_button.setEnabled(idle and own)  # a Model Zoo model from elsewhere stays in its package

    def _set_running(self, running: bool) -> None:
        for widget in (self.pairs, self.mode, self.region, self.after, self.only_shown, self.settings,
                       self.use_new_button):
            widget.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.bar.setVisible(running)
        set_bar(self.bar, 0)
        self._update_state()

    def _say(self, text: str) -> None:
        self.status.setText(text)
