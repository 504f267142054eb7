"""Fine-tuning a class model in the Fine-tune dock, as for objects: the corrections of its class map."""

from __future__ import annotations

import numpy as np
import pytest
from _qt_helpers import WAIT_MS

from napari_unet import segment, train
from napari_unet._qt.session import session_for


def _volume(seed: int = 0, shape=(6, 48, 48)) -> tuple[np.ndarray, np.ndarray]:
    """Bright spots (class 5) in a mid-grey body (class 2): an easy class map."""
    rng = np.random.default_rng(seed)
    _, h, w = shape
    y, x = np.ogrid[:h, :w]
    body = (y - h / 2) ** 2 + (x - w / 2) ** 2 < (0.42 * h) ** 2
    labels = np.repeat(np.where(body, 2, 0)[None], shape[0], axis=0).astype(np.uint8)
    for z in range(shape[0]):
        cy, cx = rng.uniform(0.35, 0.65, 2) * (h, w)
        labels[z][((y - cy) ** 2 + (x - cx) ** 2 < 36) & body] = 5
    image = np.array([0.0, 0, 0.5, 0, 0, 1.0], np.float32)[labels] + 0.05 * rng.standard_normal(shape)
    return (image * 1000).astype(np.float32), labels


@pytest.fixture
def class_setup(make_napari_viewer):
    image, truth = _volume()
    painted = np.zeros_like(truth)
    painted[[1, 4]] = truth[[1, 4]]
    model = train(image, painted, classes={2: "body", 5: "spot"}, max_steps=2, base_channels=4, device="cpu")
    viewer = make_napari_viewer()
    session = session_for(viewer)
    session.set_model(model, "classes of mr")
    viewer.add_image(image, name="mr")
    answer = segment(image, model, device="cpu").astype(np.uint8)
    classes = viewer.add_labels(answer, name="mr classes (new model)")  # as New model leaves it
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    widget.settings.unit.setCurrentText("steps")
    widget.settings.budget.setValue(3)
    return viewer, widget, session, classes, truth


def test_corrections_of_a_class_map_fine_tune_the_class_model(qtbot, class_setup):
    viewer, widget, session, classes, truth = class_setup
    old = session.model
    assert widget.pairs.pairs() == [(viewer.layers["mr"], classes)]  # New model's layer is picked by default
    classes.selected_label = 5
    classes.brush_size = 7
    classes.paint((2, 20, 20), 5)  # the user paints a spot the model missed
    painted = classes.data.copy()
    widget.run_button.click()
    assert widget.running, widget.status.text()
    assert "class map: body, spot" in widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    if not widget.use_new_button.isHidden():  # the check kept the old model: take the new one, as a user may
        assert "old model stays in use" in widget.status.text()
        widget.use_new_button.click()
        qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    new = session.model
    assert new is not old and session.history[-1].model is old
    card = new.card
    assert card.task == "semantic" and card.label_values == (0, 2, 5) and card.classes == ("background", "body", "spot")
    assert "fine_tuned_on" in card.provenance
    stroke = painted == 5
    np.testing.assert_array_equal(classes.data[stroke], 5)  # the correction survived the refresh
    assert set(np.unique(classes.data)) <= {0, 2, 5}  # class values, never object ids
    assert "Class map:" in widget.status.text()
    assert widget.revert_button.isEnabled()


def test_with_a_whole_class_map_a_slice_is_held_out_and_both_models_scored(qtbot, class_setup):
    from napari_unet._qt.finetune.annotations import WHOLE

    viewer, widget, session, classes, truth = class_setup
    old = session.model
    classes.data = truth.copy()  # every slice corrected
    widget.mode.setCurrentText(WHOLE)
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    status = widget.status.text()
    assert "on the held-out slice 3: Dice body" in status and " → " in status
    if session.model is old:  # not better there: nothing changed, and the new one is on offer
        assert "old model stays in use" in status and not widget.use_new_button.isHidden()
        np.testing.assert_array_equal(classes.data, truth)
    else:
        assert "The new model is in use." in status


def test_a_class_value_the_model_does_not_know_is_refused_in_words(qtbot, class_setup):
    viewer, widget, session, classes, _ = class_setup
    old = session.model
    classes.brush_size = 5
    classes.paint((3, 24, 24), 7)
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert "value 7" in widget.status.text() and "does not know" in widget.status.text()
    assert session.model is old  # nothing changed


def _second_image(viewer, model, name="mr2", seed=1, shape=(4, 40, 40), scale=(2.0, 1.0, 1.0)):
    """Another scan of another voxel size with the model's class map, as New model or Segment leaves it."""
    image, truth = _volume(seed, shape)
    viewer.add_image(image, name=name, scale=scale)
    answer = segment(image, model, device="cpu").astype(np.uint8)
    return viewer.add_labels(answer, name=f"{name} classes (new model)", scale=scale), truth


def _run(qtbot, widget) -> None:
    widget.run_button.click()
    assert widget.running, widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    if not widget.use_new_button.isHidden():  # the check kept the old model: take the new one, as a user may
        widget.use_new_button.click()
        qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)


def test_corrections_of_two_class_maps_teach_the_model_together(qtbot, class_setup):
    viewer, widget, session, classes, _ = class_setup
    second, _ = _second_image(viewer, session.model)
    for layer, where in ((classes, (2, 20, 20)), (second, (1, 18, 18))):  # the user corrects a spot in each
        layer.selected_label, layer.brush_size = 5, 7
        layer.paint(where, 5)
    strokes = [layer.data == 5 for layer in (classes, second)]
    widget.pairs.add_all.click()  # both ticked under "learn from"
    assert len(widget.pairs.pairs()) == 2
    widget.run_button.click()
    assert widget.running, widget.status.text()
    assert "of 'mr classes (new model)' and 1 more image (class maps: body, spot)" in widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    if not widget.use_new_button.isHidden():
        assert "learnt from 2 images" in widget.status.text() and "old model stays in use" in widget.status.text()
        widget.use_new_button.click()
        qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)

    status, card = widget.status.text(), session.model.card
    assert "(learnt from 2 images)" in status and "The new model is in use." in status
    assert card.provenance["fine_tuned_on"].startswith("2 image(s)")  # what `napari-unet info` shows
    assert card.provenance["fine_tuning"]["spacings"] == [[1.0, 1.0, 1.0], [2.0, 1.0, 1.0]]  # each its own
    for layer, stroke in zip((classes, second), strokes):  # both class maps redrawn, the corrections kept
        assert f"Class map '{layer.name}': " in status
        np.testing.assert_array_equal(layer.data[stroke], 5)
        assert set(np.unique(layer.data)) <= {0, 2, 5}


def test_with_two_whole_class_maps_the_first_ones_slice_is_held_out(qtbot, class_setup):
    from napari_unet._qt.finetune.annotations import WHOLE

    viewer, widget, session, classes, truth = class_setup
    second, second_truth = _second_image(viewer, session.model)
    classes.data, second.data = truth.copy(), second_truth.copy()  # every slice of both corrected
    widget.mode.setCurrentText(WHOLE)
    widget.pairs.add_all.click()
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    status = widget.status.text()
    assert "learnt from 2 images" in status
    assert "on the held-out slice 3: Dice body" in status and " → " in status  # the middle of the first's 6


@pytest.mark.parametrize("case", ["flat", "unknown value"])
def test_what_two_class_maps_cannot_teach_is_refused_in_words(qtbot, class_setup, case):
    viewer, widget, session, classes, truth = class_setup
    old = session.model
    if case == "flat":  # a 2D image beside the volume
        viewer.add_image(_volume()[0][2], name="flat")
        viewer.add_labels(truth[2].copy(), name="flat classes (new model)")
        expected = ("Cannot fine-tune: 'flat' is a 2D image but 'mr' is a volume: one model learns from images "
                    "of one kind (one channel; all 2D or all volumes); untick 'flat' under 'learn from'")
    else:  # a value the model does not know, in the second class map only
        second, _ = _second_image(viewer, old)
        second.brush_size = 5
        second.paint((1, 20, 20), 7)
        classes.paint((2, 20, 20), 5)
        expected = "Cannot fine-tune: 'mr2 classes (new model)': the labels hold value 7, which 'new classes' does not"
    widget.pairs.add_all.click()
    widget.run_button.click()
    assert not widget.running and expected in widget.status.text(), widget.status.text()
    assert session.model is old
