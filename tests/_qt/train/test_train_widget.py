"""The New model widget in a real viewer: a class model from three painted slices of the MR phantom."""

from __future__ import annotations

import numpy as np
import pytest
from _qt_helpers import WAIT_MS, disk_labels, disks, threshold_unet
from qtpy.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox

from napari_unet import load_model
from napari_unet._qt.session import session_for
from napari_unet._qt.train.widget import NewModelWidget, TrainOptions

IMAGE, CLASSES = "abdomen MR (synthetic)", "abdomen MR (synthetic) classes"
PAINTED = [12, 20, 28]  # the slices the "user" painted; 20 is held out and scored


@pytest.fixture
def dock(make_napari_viewer):
    """The MR phantom with labels on three slices only, and the New model widget on a 3-step budget."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-unet", "phantom_mr")
    labels = viewer.layers[CLASSES]
    painted = np.zeros_like(labels.data)
    painted[PAINTED] = labels.data[PAINTED]
    labels.data = painted
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "New model")
    widget.options = TrainOptions(base_channels=4, score_every=0)  # a tiny network, scored every step
    widget.unit.setCurrentText("steps")
    widget.budget.setValue(3)
    return viewer, widget


def train(qtbot, widget) -> None:
    widget.run_button.click()
    assert widget.running, widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)


def test_class_model_from_three_slices_then_segment_uses_it(qtbot, dock, tmp_path):
    viewer, widget = dock
    assert isinstance(widget, NewModelWidget)
    assert widget.image.current_layer().name == IMAGE and widget.labels.currentText() == CLASSES
    names = widget.table.names()  # prefilled from the layer's features
    assert names == {0: "background", 1: "body", 2: "organ", 3: "fluid"}
    widget.table.item(2, 1).setText("liver")  # the user renames a class
    train(qtbot, widget)

    assert widget.first_score_s is not None
    assert widget.score.text().startswith("Held-out slice 20, step ") and "Dice body" in widget.score.text()
    assert len(widget.plot.steps) == 3
    session = session_for(viewer)
    assert session.model is widget.model and session.model.card.task == "semantic"
    assert session.model.card.classes == ("background", "body", "liver", "fluid")
    assert "Segment now uses it" in widget.status.text()

    answer = viewer.layers[f"{IMAGE} classes (new model)"]
    assert answer.data.shape == viewer.layers[IMAGE].data.shape
    assert set(np.unique(answer.data)) <= {0, 1, 2, 3}
    assert list(answer.features["class"]) == ["background", "body", "liver", "fluid"]
    assert np.allclose(answer.scale, viewer.layers[IMAGE].scale)
    assert answer.colormap.map(2).tolist() == viewer.layers[CLASSES].colormap.map(2).tolist()  # same colours

    _, segment = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    assert "classes of abdomen MR" in segment.model.currentText()
    segment.scope.setCurrentText("displayed plane")
    segment.image.set_current(viewer.layers[IMAGE])
    segment.run_button.click()
    qtbot.waitUntil(lambda: not segment.running, timeout=WAIT_MS)
    masks = viewer.layers[f"{IMAGE} masks"].data
    assert masks.any() and set(np.unique(masks)) <= {0, 1, 2, 3}  # class values, not object ids
    assert segment.status.text().startswith("class map: ") and " objects" not in segment.status.text()

    saved = widget.save(tmp_path / "abdomen.safetensors")
    assert load_model(saved).card.classes == ("background", "body", "liver", "fluid")


def test_objects_from_a_2d_image_scored_on_a_held_out_band_and_stopped(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(disks(), name="img")
    viewer.add_labels(disk_labels(image.data), name="painted")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "New model")
    widget.options = TrainOptions(init=threshold_unet(), score_every=0)
    widget.task.setCurrentText("objects")
    assert widget.table.isHidden()
    widget.unit.setCurrentText("steps")
    widget.budget.setValue(1000)
    widget.run_button.click()
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 2, timeout=WAIT_MS)
    widget.stop_button.click()  # Stop keeps the model so far, which is then put in use
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert widget.model.card.provenance["steps"] < 1000
    assert "Held-out rows " in widget.score.text() and "AP@0.5" in widget.score.text()
    assert widget.plot.val  # AP drawn as the plot's orange line
    assert session_for(viewer).model.card.task == "instances"
    answer = viewer.layers["img objects (new model)"].data
    assert answer.shape == image.data.shape and answer.max() >= 1


def test_a_newly_painted_class_gets_a_row(qtbot, dock):
    viewer, widget = dock
    labels = viewer.layers[CLASSES]
    labels.brush_size = 5
    labels.paint((PAINTED[0], 80, 80), 4)  # a brush dab with a new value, as the user paints it
    qtbot.waitUntil(lambda: widget.table.names().get(4) == "lesion", timeout=5000)  # named by the features


def test_bad_input_gets_a_message_not_a_traceback(dock, notifications):
    viewer, widget = dock
    shape = viewer.layers[IMAGE].data.shape
    one = np.zeros(shape, np.uint8)
    one[5] = 2
    cases = {
        "empty": (np.zeros(shape, np.uint8), "the labels layer is empty"),
        "one class": (one, "only one class (2) is painted"),
        "other shape": (np.ones((10, 10), np.uint8), "the labels are 10 x 10 but the image is 40 x 160 x 160"),
    }
    for name, (data, message) in cases.items():
        viewer.add_labels(data, name=name)
        widget.labels.setCurrentText(name)
        widget.run_button.click()
        assert not widget.running and message in widget.status.text(), name
    for name in [*cases, CLASSES]:
        viewer.layers.remove(name)
    widget.run_button.click()
    assert not widget.running and "add a Labels layer" in widget.status.text()
    assert not notifications


def test_every_control_has_a_tooltip(make_napari_viewer):
    _, widget = make_napari_viewer().window.add_plugin_dock_widget("napari-unet", "New model")
    controls = widget.findChildren((QAbstractButton, QComboBox, QAbstractSpinBox))
    bare = [c for c in controls if not c.toolTip() and not (c.parent() is not None and c.parent().toolTip())]
    assert not bare, [type(c).__name__ for c in bare]
