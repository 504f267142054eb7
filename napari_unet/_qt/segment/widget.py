"""The Segment dock widget: pick an image, press Segment, edit the masks with napari's tools."""

from __future__ import annotations

import time
import weakref
from pathlib import Path

import numpy as np
from napari.utils.notifications import notification_manager, show_error
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_unet._qt._napari import unwrap
from napari_unet._qt._perf import add_labels_in_turns, set_bar, software_opengl, warm_up_in_background
from napari_unet._qt.help import help_link
from napari_unet._qt.jobs import STAGES, instances_job, segment_job, start_job
from napari_unet._qt.layers import (
    STACK_AXIS,
    ModelInput,
    axes_of,
    displayed_plane,
    find_masks,
    layer_spacing,
    masks_name,
    new_labels,
    show_probabilities,
    spatial_transform,
    stack_kind,
    write_labels,
)
from napari_unet._qt.pickers import DevicePicker, ImageLayerPicker, ModelPicker
from napari_unet._qt.remember import current, remember, restore_defaults
from napari_unet._qt.segment.blockwise import destination, open_labels_array, zarr_source
from napari_unet._qt.segment.series import (
    ALL_TIMES,
    ONE_TIME,
    is_series,
    segment_input,
    series_axes,
    series_order,
    swap_tz,
    time_axis,
    time_point,
)
from napari_unet._qt.segment.settings import AdvancedSettings
from napari_unet._qt.session import Prediction, session_for
from napari_unet._qt.widgets import StatusLabel, combo, scroll_body
from napari_unet.distributed.local import segment_blocks_iter
from napari_unet.inference.doubts import PURPOSES, out_of_depth
from napari_unet.inference.instances import model_params
from napari_unet.model.card import what_was_found
from napari_unet.model.files import DEFAULT_MODEL, image_channels, model_card
from napari_unet.progress import Progress
from napari_unet.settings import load_settings, save_settings

PLANE, STACK = "displayed plane", "whole stack"
DEPTH, TIME, ASK = "Z: depth (3D objects)", "T: time (each frame in 2D)", "Z or T? (choose)"
REPLACE, NEW_LAYER = "replace (undoable)", "add a new layer"
RECOMPUTE_DELAY_MS = 150  # a spin box held down recomputes once it settles
PROGRESS_INTERVAL_S = 0.25  # the bar moves at most 4 times a second: each move repaints the window
SETTINGS = "segment"  # this widget's section of napari_unet.settings


class SegmentWidget(QWidget):
    """Segment an image layer into an editable ``<image> masks`` Labels layer."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self._worker = None  # the running Segment job
        self._running_layer = None  # its input layer
        self._model_error = ""  # why no model could be loaded, shown in the widget
        self._shown_postprocess: dict | None = None  # the model settings the boxes were last set to
        self._recomputing = None  # the running threshold recompute
        self._outputs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # image -> (masks, series order)
        self._shown_step = (0.0, "")  # when the bar last moved, and the stage it showed
        self._started = 0.0  # when Segment was last pressed
        self._stages: set[str] = set()  # what the running Segment job has done (its progress stages)

        self.image = ImageLayerPicker(napari_viewer, self.session, accepts=segment_input)
        self.model = ModelPicker(self.session)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.device = DevicePicker(self.session)
        self.scope = combo((STACK, PLANE), tip="For 3D stacks and time series: every plane, or the one on screen")
        self.stack_axis = combo((ASK, DEPTH, TIME), tip=(
            "What a stack's first axis is. Z: the planes of one volume, each object one 3D label through its "
            "planes (split using the layer's scale as voxel size). T: a time series, every frame segmented on "
            "its own. Remembered for the layer"))
        self.times = combo((ALL_TIMES, ONE_TIME), tip=(
            "For a 4D layer (time points of volumes): every time point, or the one on screen; each volume "
            "segmented into 3D objects, ids unique over the series. Read as T, Z, Y, X unless napari's axis "
            "labels say otherwise: for Z before T, name the axes, e.g. "
            "viewer.dims.axis_labels = ('z', 't', 'y', 'x')"))
        self.existing = combo((REPLACE, NEW_LAYER), tip="What to do when '<image> masks' already exists")
        self.show_probabilities = QCheckBox("add a probabilities layer")
        self.show_probabilities.setToolTip("Also add the network's foreground probability (0-1) as an image "
                                           "layer: where it hesitates, masks are worth checking")
        self.advanced = AdvancedSettings()
        self.reset = QPushButton("Reset to defaults")
        self.reset.setToolTip("Put every option of this widget back as it was on first start (and forget the "
                              "model and device chosen last time)")
        self.advanced.addWidget(self.reset)
        self.run_button = QPushButton("Segment")
        self.run_button.setToolTip("Segment the picked image (or the displayed plane) into a masks layer; "
                                   "press again to cancel")
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.status = StatusLabel()

        form = self._form = QFormLayout()
        form.addRow("image", self.image)
        form.addRow("model", self.model)
        form.addRow("", self.model_info)
        form.addRow("device", self.device)
        form.addRow("stack axis", self.stack_axis)
        form.addRow("segment", self.scope)
        form.addRow("time points", self.times)
        form.addRow("existing masks", self.existing)
        form.addRow("", self.show_probabilities)
        layout = QVBoxLayout(scroll_body(self))
        layout.addWidget(help_link("segmenting.md", "Segmenting"))
        layout.addLayout(form)
        layout.addWidget(self.advanced)
        layout.addWidget(self.run_button)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self._recompute_timer = QTimer(self)
        self._recompute_timer.setSingleShot(True)
        self._recompute_timer.setInterval(RECOMPUTE_DELAY_MS)
        self._recompute_timer.timeout.connect(self.recompute)

        self.run_button.clicked.connect(self._run_or_cancel)
        self.stack_axis.currentTextChanged.connect(self._remember_stack_axis)
        self.image.changed.connect(self._update_state)
        self.advanced.postprocess_changed.connect(self._recompute_timer.start)
        self.session.model_changed.connect(self._update_state)
        self.session.model_changed.connect(self._show_model_settings)
        self.session.closing.connect(self._on_closing)
        self.session.masks_refreshed.connect(self._say)  # the masks it reports on were rewritten
        napari_viewer.layers.events.removed.connect(self._on_layer_removed)

        # options the user set last time (napari_unet.settings); the model and device are the
        # session's, shared with the other widgets, so only a fresh session takes them
        remembered = {"device": self.device, "scope": self.scope, "time points": self.times,
                      "side planes": self.advanced.side_planes, "existing masks": self.existing,
                      "probabilities layer": self.show_probabilities, "zoom": self.advanced.zoom,
                      "tta": self.advanced.tta, "tile size": self.advanced.tile_size,
                      "tile overlap": self.advanced.overlap}
        if self.session.model is not None:
            remembered.pop("device")
        self._defaults = current(remembered)
        remember(SETTINGS, remembered)
        self.reset.clicked.connect(self._reset)
        self.session.model_changed.connect(self._remember_model)

        software_opengl()  # asks OpenGL once, now rather than at the first Segment
        warm_up_in_background()
        if self.session.model is None:
            self._load_remembered_model()
        if self.session.model is None:
            try:
                self.session.ensure_model()
            except ValueError as exc:  # ModelFileError: the widget still opens and says why
                self._model_error = f"{exc}. Load a model file to segment."
        self._show_model_settings()
        self._update_state()

    def _load_remembered_model(self) -> None:
        """The model file used last time, if it still loads (else the shipped one, and why)."""
        path = load_settings(SETTINGS).get("model")
        if not isinstance(path, str):
            return
        try:
            self.session.load_model(path)
        except (ValueError, OSError) as exc:  # moved, deleted or broken since: say so once
            self._model_error = ""
            self._say(f"The model used last time could not be loaded ({exc}); using the shipped model.")
            save_settings(SETTINGS, {"model": None})

    def _remember_model(self, *_) -> None:
        source = self.session.model_source  # the shipped model is the default, not a choice to keep
        keep = source is not None and Path(source).resolve() != DEFAULT_MODEL.resolve()
        save_settings(SETTINGS, {"model": str(source) if keep else None})

    def _reset(self) -> None:
        restore_defaults(SETTINGS, self._defaults)
        save_settings(SETTINGS, {"model": None})
        self._say("Options are back to their defaults; the next start uses the shipped model.")

    def _show_model_settings(self) -> None:
        """Show the post-processing settings tuned for a newly chosen model (its card's);
        a fine-tuned version of the same model keeps what the user set.
        """
        if self.session.model is not None:
            self._show_settings_of(self.session.model)

    def _show_settings_of(self, model) -> None:
        """Show ``model``'s tuned post-processing settings unless they are the ones shown."""
        card = model_card(model)
        if card.postprocess != self._shown_postprocess:
            self._shown_postprocess = dict(card.postprocess)
            self.advanced.set_params(model_params(card))

    @property
    def running(self) -> bool:
        """Whether a Segment job is running."""
        return self._worker is not None

    @property
    def recomputing(self) -> bool:
        """Whether masks are being recomputed from cached probabilities."""
        return self._recomputing is not None

    # -- Segment ----------------------------------------------------------------------
    def segment(self) -> None:
        """Start segmenting the picked layer in a worker (no-op with a message if it can't)."""
        layer = self.image.current_layer()
        if layer is None or self._worker is not None:
            return
        source = zarr_source(layer)
        if source is not None:  # held lazily from a zarr: block by block, never loaded whole
            self._segment_blockwise(layer, source)
            return
        try:
            model = self.session.ensure_model()
            if model_card(model).task == "click":
                raise ValueError("this is a click-to-segment model; load a segmentation model here")
            source = segment_input(layer, image_channels(model))
            order = series_order(self.viewer, layer, source) if is_series(source) else None
        except ValueError as exc:  # ModelFileError too
            self._say(str(exc))
            return
        plane, axes, spacing = None, None, None
        job_input = source
        if order is not None:  # T and Z (in either order), Y, X: every time point a volume of 3D objects
            axes = series_axes(source, order)
            t = time_axis(source, order)
            spacing = layer_spacing(layer, tuple(ax for ax in source.spatial_axes if ax != t))
            if self.times.currentText() == ONE_TIME:
                plane = displayed_plane(self.viewer, layer, (t,))
                job_input, axes = time_point(source, plane, order)
        elif source.is_stack and self.scope.currentText() == PLANE:
            plane = displayed_plane(self.viewer, layer, source.spatial_axes)
            job_input = source.plane(plane)
        elif source.is_stack:
            kind = self._stack_kind(layer)
            if kind is None:
                self._say("Is this stack's first axis depth (Z: 3D objects) or time (T: frames)? "
                          "Choose it under 'stack axis', then press Segment.")
                return
            axes = axes_of(source, kind)
            spacing = layer_spacing(layer, source.spatial_axes)
        if axes is not None:  # a volume: the shipped 3D network while the shipped model is in use
            model = self.session.model_for(axes, np.shape(job_input.data))
        self._show_settings_of(model)  # the thresholds of the network that runs (switching shows its own)
        card = model_card(model)
        version, task = self.session.model_version, card.task
        run_settings = self.advanced.predict_kwargs()  # as they are now: the message says which zoom
        if getattr(getattr(model, "config", None), "spatial_dims", 2) == 3:
            run_settings["tile_size"] = None  # the panel's tile edge is a plane's: a 3D network takes its own
        # why the network sees the image at its zoom: the objects' size, the model's own, or the setting
        reason = "set" if run_settings["zoom"] is not None else ("model" if model_card(model).zoom else "auto")
        where = "" if plane is None else f" (time point {plane})" if order else f" (plane {plane})"
        self._stages = set()
        self._worker = start_job(
            self.session,
            segment_job,
            job_input.data,
            model,
            **({"axes": axes, "spacing": spacing} if axes else {"channel_axis": job_input.channel_axis}),
            device=self.session.device,
            params=self.advanced.params(),
            foreground=self.show_probabilities.isChecked(),
            **run_settings,
            desc=f"Segmenting {layer.name}",
            on_progress=self._progress,
            on_result=lambda result: self._show_result(layer, source, plane, Prediction(
                result[0].probabilities, plane, version, task, _core_shape(result[0].labels, order, plane),
                result[0].axes, result[0].spacing), result[0].labels, result[0].zoom, reason, result[1], card,
                order),
            on_error=self._failed,
            on_finished=self._finished,
        )
        self._running_layer = layer
        self._set_running(True)
        self._say(f"Segmenting '{layer.name}'{where} on {self.session.device}…")

    def _segment_blockwise(self, layer, source) -> None:
        try:
            model = self.session.ensure_model()
            if model_card(model).task != "instances":
                raise ValueError("block-wise segmentation of a zarr image takes an objects model")
        except ValueError as exc:
            self._say(str(exc))
            return
        dst = destination(source)
        self._worker = start_job(
            self.session, segment_blocks_iter, str(source), str(dst), model, ome=False,
            device=self.session.device, tile_size=self.advanced.predict_kwargs()["tile_size"],
            desc=f"Segmenting {layer.name} block by block",
            on_progress=self._progress,
            on_result=lambda report: self._show_blocks(layer, report),
            on_error=self._failed,
            on_finished=self._finished,
        )
        self._running_layer = layer
        self._set_running(True)
        self._say(f"Segmenting '{layer.name}' block by block from {source.name} into {dst.name} "
                  f"(never loaded whole) on {self.session.device}…")

    def _show_blocks(self, layer, report) -> None:
        if report.failed:
            self._say(f"{len(report.failed)} blocks failed ({report.failed[0]}); press Segment again to "
                      "retry them (blocks already written are kept).")
            return
        name = masks_name(layer)
        labels = open_labels_array(report.labels)
        if name in self.viewer.layers:  # a rerun resumed into the same file: show it anew
            self.viewer.layers.remove(name)
        target = self.viewer.add_labels(labels, name=name, scale=layer.scale[-labels.ndim:],
                                        translate=layer.translate[-labels.ndim:])
        self.viewer.layers.selection.active = target
        self._say(f"{report.objects} objects in '{name}', written block by block to {report.labels} "
                  f"({report.blocks} blocks, {report.empty} empty, {report.resumed} from an earlier run); "
                  "brush edits are saved into that file as you paint.")

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self._say("Cancelling after the current tile…")

    def _run_or_cancel(self) -> None:
        if self._worker is None:
            self._started = time.monotonic()
            self.segment()
        elif time.monotonic() - self._started > QApplication.doubleClickInterval() / 1000:
            self.cancel()
        # else: the second press of a double click on Segment, which turned into Cancel under the
        # cursor; it must not cancel the run the first press started

    def _progress(self, step: Progress) -> None:
        self._stages.add(step.stage)
        now = time.monotonic()
        if step.stage == self._shown_step[1] and now - self._shown_step[0] < PROGRESS_INTERVAL_S:
            return
        self._shown_step = (now, step.stage)
        set_bar(self.bar, step.done, max(step.total, 1), f"{STAGES.get(step.stage, step.stage)} %v/%m")

    def _show_result(self, layer, source: ModelInput, plane, prediction: Prediction, labels,
                     zoom: float = 1.0, reason: str = "auto", foreground=None, card=None,
                     order: str | None = None) -> None:
        if layer not in self.viewer.layers:
            self._say(f"'{layer.name}' was removed while it was segmented; the result was dropped.")
            return
        self.session.store_prediction(layer, prediction)
        if foreground is not None:
            show_probabilities(self.viewer, layer, source, plane, foreground, _time_position(order))
        replace = self.existing.currentText() == REPLACE
        where = _where(source, plane, labels, order)
        target, message = self._write_masks(layer, source, plane, labels, replace, card, where, order)
        if prediction.axes and not is_series(source):  # a whole stack: say how it was read, and which planes
            n = np.shape(labels)[0]
            kind = (f" 3D objects through its {n} planes" if "Z" in prediction.axes else
                    f" objects in its {n} frames (0-{n - 1}), each segmented in 2D")
            message = message.replace(" objects", kind, 1)
        self.viewer.layers.selection.active = target
        doubt = out_of_depth(labels, card) if card is not None else None
        if doubt:  # instead of the zoom's story: the count alone would read as a confident answer
            message += f" {doubt}"
        elif zoom != 1.0:
            if reason == "auto":
                message += (f" The objects are {'small' if zoom > 1 else 'large'}, so the network saw the "
                            f"image at zoom ×{zoom:g} (Advanced › zoom).")
            elif reason == "model":
                message += f" The network saw the image at zoom ×{zoom:g}, the zoom it was fine-tuned at."
            else:
                message += f" The network saw the image at zoom ×{zoom:g} (Advanced › zoom)."
        if "orientations" in self._stages:  # what the run did, whichever rule chose it
            message += " The ZY and ZX planes were averaged in with the XY planes (Advanced › side planes)."
        if card is not None and self.session.model is not None and card.name != model_card(self.session.model).name:
            message += f" The 3D network shipped for volumes ({card.name}) segmented it."
        self._say(message)

    def _write_masks(self, layer, source: ModelInput, plane, labels, replace: bool, card=None, where: str = "",
                     order: str | None = None):
        shape = tuple(np.shape(source.data)[ax] for ax in source.spatial_axes)
        target = find_masks(self.viewer, layer, shape) if replace else None
        found = (what_was_found(labels, card) if card is not None and card.task == "semantic"
                 else f"{int(labels.max())} objects")  # the core numbers objects 1..n (np.unique: 0.3 s at 2048²)
        axis = _time_position(order)  # where a time point goes in a series' masks
        changed = write_labels(target, labels, plane, axis) if target is not None else None
        if changed is not None:
            message = (
                f"{found}{where}. Replaced the masks in '{target.name}' "
                f"({changed} pixels changed): Ctrl+Z on that layer brings back what was there."
            )
        else:  # no layer to replace, the user asked for a new one, or the ids do not fit it
            target = add_labels_in_turns(
                self.viewer,
                new_labels(labels, shape, plane, axis),
                alive=lambda: not self.session.closed,
                name=masks_name(layer),
                **spatial_transform(layer, source.spatial_axes),
            )
            message = f"{found}{where} in the new layer '{target.name}'; edit them with the brush."
        self._outputs[unwrap(layer)] = (weakref.ref(unwrap(target)), order)
        return target, message

    def _failed(self, exc: Exception) -> None:
        if self.session.closed:
            return
        if isinstance(exc, ValueError):  # user-facing messages from the core
            show_error(f"napari-unet: segmentation failed: {exc}")
        else:  # a bug: keep the traceback one click away
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)
        self._say(f"Segmentation failed: {exc}")

    def _finished(self) -> None:
        worker, self._worker, self._running_layer = self._worker, None, None
        if worker is not None and worker.abort_requested and not self.session.closed:
            self._say("Cancelled; no layer was changed.")
        self._set_running(False)

    # -- instant post-processing --------------------------------------------------------
    def recompute(self) -> None:
        """Re-threshold the picked layer's cached probabilities into its masks (no network pass)."""
        layer = self.image.current_layer()
        prediction = self.session.prediction(layer) if layer is not None else None
        ref, order = self._outputs.get(unwrap(layer), (None, None)) if layer is not None else (None, None)
        target = ref() if ref is not None else None
        if prediction is None or target is None or target not in self.viewer.layers:
            return
        if self._recomputing is not None:  # one at a time; the latest settings win
            self._recompute_timer.start()
            return
        self._recompute_timer.stop()  # a pending one would redo this very work

        def write(labels) -> None:
            if target not in self.viewer.layers or self.session.prediction(layer) is not prediction:
                return
            if order is not None and prediction.plane is None:  # the core's T, Z, Y, X: the layer's order
                labels = swap_tz(labels, order)
            changed = write_labels(target, labels, prediction.plane, _time_position(order))
            if changed is None:
                self._say(f"Too many objects for '{target.name}'; press Segment for a new layer.")
            else:
                self._say(
                    f"Recomputed '{target.name}' from the cached probabilities ({changed} pixels "
                    "changed; Ctrl+Z on that layer undoes it)."
                )

        def done() -> None:
            self._recomputing = None

        self._recomputing = start_job(
            self.session,
            instances_job,
            prediction,
            self.advanced.params(),
            desc="Recomputing masks",
            show_progress=False,
            on_result=write,
            on_error=self._failed,
            on_finished=done,
        )

    # -- state ------------------------------------------------------------------------
    def _update_state(self, *_) -> None:
        model = self.session.model
        if model is not None:
            self._model_error = ""
            card = model_card(model)
            n = image_channels(model)
            made_for = f"made for {PURPOSES[card.name].split(' (')[0]}; " if card.name in PURPOSES else ""
            if not getattr(model, "fine_tunable", True):  # a Model Zoo model napari-unet did not write
                made_for = (f"Model Zoo model, its output read as {card.provenance['output']}; it segments "
                            "with its own processing; it cannot be fine-tuned or saved here; ")
            self.model_info.setText(f"{made_for}{card.task} model, {n} channel{'s' * (n != 1)} in")
        else:
            self.model_info.setText(self._model_error or "no model loaded")
        layer = self.image.current_layer()
        stack, series = self._stack_or_series(layer)  # the plane/stack choice only exists for stacks
        for field, shown in ((self.scope, stack), (self.stack_axis, stack), (self.times, series)):
            field.setVisible(shown)
            self._form.labelForField(field).setVisible(shown)
        if stack:
            kind = self._stack_kind(layer)
            self.stack_axis.blockSignals(True)
            self.stack_axis.setCurrentText({"Z": DEPTH, "T": TIME}.get(kind, ASK))
            self.stack_axis.blockSignals(False)
        can_run = layer is not None and not self.session.closed
        self.run_button.setEnabled(can_run or self._worker is not None)

    def _stack_kind(self, layer) -> str | None:
        """"Z" or "T" for the layer's stack axis (:func:`~napari_unet._qt.layers.stack_kind`); None
        when nobody said: a whole run's meaning depends on it, so Segment asks.
        """
        return stack_kind(self.viewer, layer, segment_input(layer, image_channels(self.session.model)))

    def _remember_stack_axis(self, text: str) -> None:
        layer = self.image.current_layer()
        if layer is not None and text in (DEPTH, TIME):
            layer.metadata[STACK_AXIS] = "Z" if text == DEPTH else "T"

    def _stack_or_series(self, layer) -> tuple[bool, bool]:
        """Whether ``layer`` is a stack (Z or T, Y, X) and whether a time series of volumes."""
        if layer is None or self.session.model is None:
            return False, False
        try:
            source = segment_input(layer, image_channels(self.session.model))
        except ValueError:
            return False, False
        return source.is_stack, is_series(source)

    def _set_running(self, running: bool) -> None:
        for widget in (self.image, self.model, self.device, self.scope, self.stack_axis, self.times,
                       self.existing, self.advanced):
            widget.setEnabled(not running)
        self.run_button.setText("Cancel" if running else "Segment")
        self.bar.setVisible(running)
        set_bar(self.bar, 0)
        self._update_state()

    def _on_layer_removed(self, event) -> None:
        if self._worker is not None and unwrap(event.value) is unwrap(self._running_layer):
            self.cancel()

    def event(self, event) -> bool:  # noqa: D102 (Qt API)
        # the panel's close button takes the widget out of its dock: nothing could cancel
        # the run any more, so stop it (results of finished runs stay)
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.cancel()
        return super().event(event)

    def _on_closing(self) -> None:
        if self._worker is not None:
            self._worker.quit()
        self.setEnabled(False)

    def _say(self, text: str) -> None:
        self.status.setText(text)


def _where(source: ModelInput, plane: int | None, labels, order: str | None = None) -> str:
    """Which part of the layer was segmented, for the status line ("" for all of an image or stack)."""
    if order is not None:
        along = "" if order == "TZ" else f", along axis {time_axis(source, order)} as its axis labels say"
        depth = np.shape(labels)[-3]
        if plane is not None:
            return f" in time point {plane}{along} (in 3D, through its {depth} planes)"
        n, depth = np.shape(swap_tz(labels, order))[:2]
        return f" in its {n} time points (0-{n - 1}{along}), each volume in 3D through its {depth} planes"
    return f" in plane {plane}" if plane is not None else ""


def _time_position(order: str | None) -> int:
    """Where a series' time points lie among its masks' axes (1 for Z, T, Y, X); 0 for a stack's planes."""
    return 0 if order is None else order.index("T")


def _core_shape(labels, order: str | None, plane: int | None) -> tuple[int, ...]:
    """The shape of labels in the core's order ([T][Z]YX), as the kept probabilities are."""
    return np.shape(swap_tz(labels, order)) if order is not None and plane is None else np.shape(labels)
