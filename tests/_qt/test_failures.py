"""Failure behaviour: cancel, errors in the worker, closing the viewer while a run goes on."""

from __future__ import annotations

import threading
import time

import numpy as np
from _qt_helpers import WAIT_MS, disks, run_segment

import napari_unet._qt.segment.widget as sw
from napari_unet.progress import Progress

REAL_JOB = sw.segment_job


def slow_job(image, model, **kwargs):
    """The real job behind 100 slow progress steps, so a test can act mid-run."""
    for i in range(100):
        time.sleep(0.02)
        yield Progress(i, 100, "predict")
    return (yield from REAL_JOB(image, model, **kwargs))


def start_and_wait_for_progress(qtbot, widget):
    from qtpy.QtWidgets import QApplication

    widget.run_button.click()
    assert widget.running and widget.run_button.text() == "Cancel"
    qtbot.waitUntil(lambda: widget.bar.value() > 0, timeout=WAIT_MS)
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # a press now is not the end of a double click
    return widget._worker


def test_a_double_click_on_segment_does_not_cancel_the_run_it_started(qtbot, viewer_widget, monkeypatch):
    monkeypatch.setattr(sw, "segment_job", slow_job)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    widget.run_button.click()
    widget.run_button.click()  # the second press lands on Cancel
    assert widget.running
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert viewer.layers["img masks"].data.max() == 6


def test_cancel_mid_run_changes_no_layer(qtbot, viewer_widget, monkeypatch):
    monkeypatch.setattr(sw, "segment_job", slow_job)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    worker = start_and_wait_for_progress(qtbot, widget)
    widget.run_button.click()  # Cancel
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert worker.abort_requested
    assert [layer.name for layer in viewer.layers] == ["img"]
    assert "Cancelled" in widget.status.text()
    assert widget.run_button.text() == "Segment" and widget.image.isEnabled()


def test_error_in_worker_notifies_and_widget_stays_usable(qtbot, viewer_widget, monkeypatch, notifications):
    def broken_job(image, model, **kwargs):
        yield Progress(0, 1, "predict")
        raise RuntimeError("boom")

    monkeypatch.setattr(sw, "segment_job", broken_job)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    assert any("boom" in str(n.message) for n in notifications)
    assert "failed: boom" in widget.status.text()
    assert widget.run_button.isEnabled() and widget.run_button.text() == "Segment"

    monkeypatch.setattr(sw, "segment_job", REAL_JOB)  # usable again
    run_segment(qtbot, widget)
    assert viewer.layers["img masks"].data.max() == 6


def test_core_value_error_is_a_clear_notification(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    image = disks()
    image[0, 0] = np.nan
    viewer.add_image(image, name="nan", contrast_limits=(0, 120))
    run_segment(qtbot, widget)
    assert any("NaN" in str(n.message) for n in notifications)
    assert "nan masks" not in viewer.layers


def test_closing_the_window_mid_run_aborts_with_no_late_write(qtbot, viewer_widget, monkeypatch):
    monkeypatch.setattr(sw, "segment_job", slow_job)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    worker = start_and_wait_for_progress(qtbot, widget)
    viewer.window.close()  # the window goes; the layer list stays (as with the close button)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=WAIT_MS)
    qtbot.wait(100)
    assert worker.abort_requested
    assert [layer.name for layer in viewer.layers] == ["img"]


def test_result_already_queued_when_the_window_closes_is_dropped(qtbot, viewer_widget, monkeypatch):
    done = threading.Event()

    def quick_job(image, model, **kwargs):
        result = yield from REAL_JOB(image, model, **kwargs)
        done.set()
        return result

    monkeypatch.setattr(sw, "segment_job", quick_job)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    widget.run_button.click()
    assert done.wait(WAIT_MS / 1000)
    time.sleep(0.2)  # the worker has emitted `returned`; Qt has not delivered it yet
    viewer.window.close()
    qtbot.wait(200)
    assert [layer.name for layer in viewer.layers] == ["img"]


def test_viewer_close_mid_run(qtbot, viewer_widget, monkeypatch):
    monkeypatch.setattr(sw, "segment_job", slow_job)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    worker = start_and_wait_for_progress(qtbot, widget)
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=WAIT_MS)
    assert worker.abort_requested
    assert len(viewer.layers) == 0


def test_closing_the_dock_mid_run(qtbot, viewer_widget, monkeypatch):
    monkeypatch.setattr(sw, "segment_job", slow_job)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    worker = start_and_wait_for_progress(qtbot, widget)
    viewer.window.remove_dock_widget(widget)  # what the panel's close button does
    qtbot.waitUntil(lambda: not worker.is_running, timeout=WAIT_MS)
    qtbot.wait(100)
    assert worker.abort_requested
    assert [layer.name for layer in viewer.layers] == ["img"]
