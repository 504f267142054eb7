"""The per-viewer session shared by the widgets, and the model/device pickers over it."""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import torch
from _qt_helpers import disks, run_segment

import napari_unet._qt.segment.widget as sw
from napari_unet._qt.segment.widget import SegmentWidget
from napari_unet._qt.session import Prediction, session_for
from napari_unet._qt.threads import BACKGROUND_NICE, gui_threads, thread_priorities
from napari_unet.devices import available_devices
from napari_unet.model import files as modelfile


def test_one_session_per_viewer(make_napari_viewer):
    a, b = make_napari_viewer(), make_napari_viewer()
    assert session_for(a) is session_for(a)
    assert session_for(a) is not session_for(b)
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")  # gets a proxy of the viewer
    assert widget.session is session_for(viewer)


def test_model_change_is_signalled_and_drops_cached_predictions(make_napari_viewer, model_file):
    viewer = make_napari_viewer()
    layer = viewer.add_image(disks(), name="img")
    session = session_for(viewer)
    seen = []
    session.model_changed.connect(seen.append)
    session.load_model(model_file)
    probs = np.zeros((3, 96, 128), np.float32)
    session.store_prediction(layer, Prediction(probs, None, session.model_version, "instances"))
    assert session.prediction(layer) is not None
    session.load_model(model_file)  # e.g. fine-tuning swapped the weights
    assert len(seen) == 2 and seen[-1] is session.model
    assert session.prediction(layer) is None


def test_widgets_of_a_viewer_share_the_session(viewer_widget, tmp_path):
    from _qt_helpers import threshold_unet

    viewer, first = viewer_widget
    second = SegmentWidget(viewer)
    viewer.window.add_dock_widget(second, name="Segment 2")
    assert second.session is first.session
    path = modelfile.save_model(threshold_unet(), tmp_path / "other.safetensors")
    first.model.load(path)
    assert second.model.currentText() == first.model.currentText()
    assert "other.safetensors" in second.model.currentText()


def test_device_picker_lists_real_devices(viewer_widget):
    _, widget = viewer_widget
    items = [widget.device.itemText(i) for i in range(widget.device.count())]
    assert items == available_devices()
    widget.device.setCurrentText("cpu")
    assert widget.session.device == "cpu"


def test_missing_default_model_is_said_in_the_widget(make_napari_viewer, monkeypatch, tmp_path):
    monkeypatch.setattr(modelfile, "DEFAULT_MODEL", tmp_path / "missing.safetensors")
    viewer = make_napari_viewer()
    viewer.add_image(disks(), name="img")
    widget = SegmentWidget(viewer)
    assert "no such model file" in widget.model_info.text()
    widget.run_button.click()  # no traceback: a message, and nothing starts
    assert not widget.running
    assert "no such model file" in widget.status.text()


def test_gui_runs_use_the_viewers_thread_policy(qtbot, viewer_widget, monkeypatch):
    seen = []
    real = sw.segment_job

    def spy(image, model, **kwargs):
        job = real(image, model, **kwargs)
        step = next(job)  # torch_threads is in force once the job has started
        seen.append((torch.get_num_threads(), thread_nice()))
        yield step
        return (yield from job)

    monkeypatch.setattr(sw, "segment_job", spy)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    main_nice = thread_nice()
    run_segment(qtbot, widget)
    worker_nice = max(main_nice, BACKGROUND_NICE) if thread_priorities() else main_nice
    assert seen == [(gui_threads(), worker_nice)]  # every core, at background priority (Linux)
    assert thread_nice() == main_nice  # the UI thread keeps its priority


def thread_nice() -> int:
    if not thread_priorities():
        return 0
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_plugin_proxy_main_thread_and_no_private_access(qtbot, make_napari_viewer_proxy, model_file):
    viewer = make_napari_viewer_proxy()  # NAPARI_ENSURE_PLUGIN_MAIN_THREAD=1, as napari gives plugins
    session_for(viewer).load_model(model_file)
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.add_image(disks(), name="img")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Pp]rivate attribute.*")
        run_segment(qtbot, widget)
    assert viewer.layers["img masks"].data.max() == 6


def test_a_click_model_is_refused_with_a_message(viewer_widget, tmp_path):
    from dataclasses import replace

    from _qt_helpers import threshold_unet

    from napari_unet.model.files import model_card

    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    model = threshold_unet()
    model.card = replace(model_card(model), task="click")
    widget.model.load(modelfile.save_model(model, tmp_path / "click.safetensors"))
    widget.run_button.click()
    assert not widget.running and "click-to-segment model" in widget.status.text()


def test_a_session_for_a_viewer_model_without_window():
    from napari.components import ViewerModel

    viewer = ViewerModel()
    session = session_for(viewer)
    assert session is session_for(viewer) and not session.closed
