"""The Fine-tune widget in a real viewer: training in a worker, the session's model, the user's labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _click_models import threshold_click_unet
from _qt_helpers import WAIT_MS, disk_labels, disks, threshold_unet

import napari_unet._qt.finetune.widget as fw
from napari_unet import load_model
from napari_unet._qt.finetune.annotations import EDITED, REGION, WHOLE
from napari_unet._qt.session import session_for
from napari_unet.finetune.regions import merge_outside
from napari_unet.model.files import model_card
from napari_unet.progress import Progress


def populate(viewer, steps: int, image=None):
    """The threshold models, an image, its masks layer, and the Fine-tune widget on a step budget."""
    session = session_for(viewer)
    session.set_model(threshold_unet(), "threshold", click_model=threshold_click_unet())
    image = disks() if image is None else image
    viewer.add_image(image, name="img")
    masks = viewer.add_labels(disk_labels(image), name="img masks")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    widget.settings.unit.setCurrentText("steps")
    widget.settings.budget.setValue(steps)
    return widget, session, masks


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    return viewer, *populate(viewer, steps=4)  # 3 for the segmentation model, 1 for the click network


def brush(masks, where=(30, 40), label=9) -> None:
    """A brush dab, recorded in the layer's history like a stroke with the mouse."""
    masks.brush_size = 5
    masks.paint(where, label)


def train(qtbot, widget, choose_new: bool = True) -> None:
    """Press Fine-tune and wait; ``choose_new``: when the check keeps the old model (the
    threshold model is already right on these disks), press "Use the new model", as a user
    who wants it anyway does, and wait for its masks.
    """
    widget.run_button.click()
    assert widget.running, widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    if choose_new:
        take_new(qtbot, widget)


def take_new(qtbot, widget) -> None:
    """Press "Use the new model" if the check kept the old one, and wait for the refresh."""
    if not widget.use_new_button.isHidden():
        widget.use_new_button.click()
        qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_fine_tune_replaces_the_session_model_and_keeps_the_edits(qtbot, setup):
    viewer, widget, session, masks = setup
    old, old_click = session.model, session.click_model
    brush(masks)  # the user corrects one object
    edited = masks.data.copy()
    assert widget.pairs.pairs() == [(viewer.layers["img"], masks)]
    train(qtbot, widget)
    assert session.model is not old and session.history[-1].model is old
    card = session.model.card
    assert card.name.endswith("(fine-tuned)") and card.provenance["steps"] == 3
    # the click network learnt from the same correction, in the same budget
    assert session.click_model is not old_click and session.history[-1].click_model is old_click
    assert session.click_model.card.provenance["steps"] == 1
    assert not torch.equal(weights(session.click_model), weights(old_click))
    assert "click tool's network learnt for 1 steps" in widget.status.text()
    assert "outside your corrections" in widget.status.text()
    painted = edited == 9
    np.testing.assert_array_equal(masks.data[painted], 9)  # the correction survived the refresh
    touched = np.isin(edited, np.unique(edited[painted]))
    np.testing.assert_array_equal(masks.data[touched], edited[touched])
    assert len(widget.plot.steps) == 3
    assert widget.revert_button.isEnabled() and widget.run_button.isEnabled()


def test_new_layer_option_leaves_the_labels_alone(qtbot, setup):
    viewer, widget, session, masks = setup
    before = masks.data.copy()
    widget.mode.setCurrentText(WHOLE)
    widget.after.setCurrentText(fw.NEW_LAYER)
    train(qtbot, widget)
    np.testing.assert_array_equal(masks.data, before)
    assert viewer.layers[-1].name == "img masks (fine-tuned)"
    assert viewer.layers[-1].data.shape == before.shape


def test_edits_during_training_do_not_reach_the_snapshot(qtbot, setup):
    viewer, widget, session, masks = setup
    widget.mode.setCurrentText(WHOLE)
    widget.settings.budget.setValue(10_000)
    before = masks.data.copy()
    widget.run_button.click()
    qtbot.waitUntil(lambda: len(widget.plot.steps) > 0, timeout=WAIT_MS)  # training, past the check on the corrections
    widget.pause_or_resume()
    qtbot.waitUntil(lambda: widget.paused, timeout=WAIT_MS)
    masks.data_setitem(np.nonzero(masks.data >= 0), 0)  # the user erases everything meanwhile
    snapshot = widget._data.parts[0].labels  # what the run learns from
    np.testing.assert_array_equal(snapshot, before)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    take_new(qtbot, widget)
    assert session.model.card.name.endswith("(fine-tuned)")


def test_stop_keeps_the_weights_trained_so_far(qtbot, setup):
    viewer, widget, session, masks = setup
    widget.mode.setCurrentText(WHOLE)
    widget.settings.budget.setValue(10_000)
    widget.run_button.click()
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 2, timeout=WAIT_MS)
    widget.stop_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    take_new(qtbot, widget)
    steps = session.model.card.provenance["steps"]
    assert 2 <= steps < 10_000
    assert "stopped" in widget.status.text()
    assert not torch.equal(weights(session.model), weights(session.history[-1].model))
    assert session.click_model is session.history[-1].click_model  # stopped before its turn
    assert "click network was left as it was (stopped before its turn)" in widget.status.text()


@pytest.mark.slow
def test_pause_holds_training_and_resume_continues(qtbot, setup):
    viewer, widget, session, masks = setup
    widget.mode.setCurrentText(WHOLE)
    widget.settings.unit.setCurrentText("seconds")
    widget.settings.budget.setValue(5)  # a first step on a busy 2-core machine can take seconds
    widget.run_button.click()
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 1, timeout=WAIT_MS)
    widget.pause_button.click()
    assert widget.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: widget.paused, timeout=WAIT_MS)
    qtbot.wait(200)  # steps yielded before the pause are still being delivered
    seen = len(widget.plot.steps)
    qtbot.wait(5500)  # longer than the whole time budget
    assert len(widget.plot.steps) == seen and widget.running
    widget.pause_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert len(widget.plot.steps) > seen  # the paused time did not use up the budget


def test_revert_goes_back_to_the_previous_model(qtbot, setup):
    viewer, widget, session, masks = setup
    old, old_click = session.model, session.click_model
    widget.mode.setCurrentText(WHOLE)
    train(qtbot, widget)
    assert session.model is not old and session.click_model is not old_click
    widget.revert_button.click()
    assert session.model is old and session.model_name == "threshold"
    assert session.click_model is old_click  # both networks go back
    assert not widget.revert_button.isEnabled()


def test_saved_model_loads_with_its_provenance(qtbot, setup, tmp_path, make_napari_viewer):
    viewer, widget, session, masks = setup
    widget.mode.setCurrentText(WHOLE)
    train(qtbot, widget)
    path = widget.save(tmp_path / "tuned.safetensors")
    loaded = load_model(path)
    assert torch.equal(weights(loaded), weights(session.model.cpu()))
    provenance = loaded.card.provenance
    assert provenance["base_model"] == model_card(session.history[-1].model).name
    assert provenance["steps"] == 3 and provenance["fine_tuned_on"].endswith("annotated objects")
    assert loaded.card.name.endswith("(fine-tuned)")
    click = load_model(tmp_path / "tuned_click.safetensors")  # the click network beside it
    assert click.card.task == "click" and click.card.provenance["base_model"] == "threshold-click"
    assert torch.equal(weights(click), weights(session.click_model))
    assert "tuned_click.safetensors" in widget.status.text()
    other = session_for(make_napari_viewer())  # loading the model brings its click network too
    other.load_model(path)
    assert torch.equal(weights(other.ensure_click_model()), weights(click))


def test_closing_the_viewer_while_training_aborts_and_keeps_the_model(qtbot, setup):
    viewer, widget, session, masks = setup
    old = session.model
    widget.mode.setCurrentText(WHOLE)
    widget.settings.budget.setValue(10_000)
    widget.run_button.click()
    worker = widget._worker
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 1, timeout=WAIT_MS)
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=WAIT_MS)
    qtbot.wait(100)
    assert worker.abort_requested
    assert session.model is old


def test_an_error_during_training_leaves_the_old_model(qtbot, setup, monkeypatch, notifications):
    def broken(*args, **kwargs):
        yield Progress(0, 1, "training")
        raise RuntimeError("boom")

    viewer, widget, session, masks = setup
    old, old_click = session.model, session.click_model
    widget.mode.setCurrentText(WHOLE)
    monkeypatch.setattr(fw, "finetune_job", broken)
    train(qtbot, widget)
    assert session.model is old and session.click_model is old_click and not session.history
    assert any("boom" in str(n.message) for n in notifications)
    assert "previous model is still in use" in widget.status.text()
    assert widget.run_button.isEnabled()


def test_nothing_edited_says_so_and_starts_nothing(qtbot, setup):
    viewer, widget, session, masks = setup
    widget.mode.setCurrentText(EDITED)
    widget.run_button.click()
    assert not widget.running
    assert "no edits recorded" in widget.status.text()


def test_a_shapes_region_limits_what_is_learned(qtbot, setup):
    viewer, widget, session, masks = setup
    viewer.add_shapes([np.array([[0, 0], [0, 40], [40, 40], [40, 0]])], shape_type="polygon", name="checked")
    widget.mode.setCurrentText(REGION)
    widget.region.setCurrentText("checked")
    assert not widget.region.isHidden()
    train(qtbot, widget)
    # the four disks that reach into the box, not the six of the image
    assert session.model.card.provenance["fine_tuned_on"] == "4 annotated objects"


def test_merge_outside_never_cuts_or_overwrites_protected_objects():
    current = np.zeros((10, 10), np.int32)
    current[1:4, 1:4] = 1  # corrected by the user
    current[1:4, 5:8] = 2  # an old prediction reaching into the protected margin
    new = np.zeros_like(current)
    new[6:9, 6:9] = 1  # a new object in free space
    new[2:5, 2:5] = 2  # overlaps the user's object: dropped
    current[4, 4] = 5  # an old prediction under the dropped object: stays
    protected = np.zeros_like(current, bool)
    protected[0:5, 0:6] = True
    merged = merge_outside(current, new, protected)
    np.testing.assert_array_equal(merged[1:4, 1:4], 1)
    np.testing.assert_array_equal(merged[1:4, 5:8], 2)
    assert set(np.unique(merged[6:9, 6:9])) == {6}  # ids start above the current ones
    assert merged[4, 4] == 5 and not (merged == 2 + 5).any()  # no trace of the dropped one


def stack_viewer(make_napari_viewer, labels_of):
    """A 3-plane stack of disks, its masks (``labels_of(labels)`` edits them first), plane 2 on screen."""
    viewer = make_napari_viewer()
    session_for(viewer).set_model(threshold_unet(), "threshold", click_model=threshold_click_unet())
    stack = np.stack([disks(seed=z) for z in range(3)])
    viewer.add_image(stack, name="img")
    labels = np.stack([disk_labels(plane) for plane in stack])
    labels[1:] += np.where(labels[1:] > 0, 10 * np.arange(1, 3)[:, None, None], 0).astype(np.int32)  # unique ids
    labels_of(labels)
    masks = viewer.add_labels(labels.copy(), name="img masks")
    viewer.dims.set_point(0, 2)
    widget = fw.FinetuneWidget(viewer)
    widget.settings.unit.setCurrentText("steps")
    widget.settings.budget.setValue(4)
    return viewer, widget, masks, labels


def test_a_stack_learns_from_the_displayed_plane(qtbot, make_napari_viewer):
    viewer, widget, masks, labels = stack_viewer(make_napari_viewer, lambda labels: None)
    train(qtbot, widget)
    assert session_for(viewer).model.card.provenance["fine_tuned_on"] == "6 annotated objects"
    np.testing.assert_array_equal(masks.data[2], labels[2])  # all of plane 2 was the user's


def test_the_refresh_redraws_every_segmented_plane_around_the_edits(qtbot, make_napari_viewer):
    def old_masks(labels):
        labels[0][labels[0] == labels[0][30, 51]] = 0  # the old prediction missed a disk on plane 0
        labels[1] = 0  # plane 1 was never segmented

    viewer, widget, masks, labels = stack_viewer(make_napari_viewer, old_masks)
    masks.brush_size = 5
    masks.paint((0, 9, 9), 99)  # the user corrects an object on plane 0 (not the plane on screen)
    corrected = masks.data[0].copy()
    touched = np.isin(corrected, [99, labels[0][9, 14]])
    bars = []
    widget.bar.valueChanged.connect(lambda _: bars.append((widget.bar.format(), widget.bar.maximum())))
    train(qtbot, widget)
    assert ("new masks: plane %v/%m", 2) in bars  # a worker job over planes 0 and 2, with progress
    assert "+1 new, −0 removed, 0 changed, in 1 plane" in widget.status.text()  # the disk on plane 0
    np.testing.assert_array_equal(masks.data[0][touched], corrected[touched])  # the correction is kept
    assert masks.data[0][30, 51] > 0  # the missed disk was found on plane 0, off screen
    assert not masks.data[1].any()  # never segmented: left alone
    np.testing.assert_array_equal(masks.data[2] > 0, labels[2] > 0)  # plane 2 redrawn, same disks
    new = set(np.unique(masks.data[0])) - set(np.unique(corrected))
    assert new and not new & set(np.unique(masks.data[2]))  # ids unique across the planes
    masks.undo()  # the whole refresh is one undo step
    np.testing.assert_array_equal(masks.data[0], corrected)
    np.testing.assert_array_equal(masks.data[2], labels[2])


def test_through_the_plugin_proxy_on_the_main_thread(qtbot, make_napari_viewer_proxy):
    import warnings

    viewer = make_napari_viewer_proxy()  # NAPARI_ENSURE_PLUGIN_MAIN_THREAD=1, as napari gives plugins
    widget, session, masks = populate(viewer, steps=2)
    brush(masks)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Pp]rivate attribute.*")
        train(qtbot, widget)
    assert session.model.card.name.endswith("(fine-tuned)")
    assert "outside your corrections" in widget.status.text()


def test_opens_from_the_plugins_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    assert isinstance(widget, fw.FinetuneWidget)
    assert widget.session is session_for(viewer)
    assert not widget.run_button.isEnabled()  # nothing to learn from yet
    assert widget.settings.budgets() == {"max_steps": None, "max_seconds": 60.0}  # CPU default


def test_masks_made_after_the_widget_opened_are_picked(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    session_for(viewer).set_model(threshold_unet(), "threshold")
    widget = fw.FinetuneWidget(viewer)
    image = viewer.add_image(disks(), name="img")
    assert widget.pairs.pairs() == [] and not widget.run_button.isEnabled()
    masks = viewer.add_labels(disk_labels(disks()), name="img masks")  # as Segment does
    assert widget.pairs.pairs() == [(image, masks)] and widget.run_button.isEnabled()


def test_an_error_in_the_click_networks_turn_leaves_both_models(qtbot, setup, monkeypatch, notifications):
    import importlib

    fc = importlib.import_module("napari_unet.finetune.clicks")  # the package's finetune_click is the function

    def broken(*args, **kwargs):  # one real step of the click network, then a failure
        yield next(real(*args, **kwargs))
        raise RuntimeError("click boom")

    real = fc.train_click_iter

    viewer, widget, session, masks = setup
    old, old_click = session.model, session.click_model
    widget.mode.setCurrentText(WHOLE)
    monkeypatch.setattr(fc, "train_click_iter", broken)
    train(qtbot, widget)
    assert session.model is old and session.click_model is old_click and not session.history
    assert any("click boom" in str(n.message) for n in notifications)
    assert len(widget.plot.steps) == 3  # the segmentation model had trained
    assert "previous model is still in use" in widget.status.text()


def test_held_out_squares_are_scored_in_the_loss_plot(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    widget, session, _ = populate(viewer, steps=4, image=disks(shape=(140, 64), n=18))  # 6 rows: 3 held out
    widget.mode.setCurrentText(WHOLE)
    widget.run_button.click()
    assert "to check the new model on what it did not see" in widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    take_new(qtbot, widget)  # no better there (the threshold is right already): taken anyway
    assert [step for step, _ in widget.plot.val] == [2, 3]  # each half scored at its end: 2 + 1 steps
    assert widget.plot.pieces() == [[1, 2], [3]]  # each half a fresh copy: its own line
    assert widget.plot.smoothed[2] == pytest.approx(widget.plot.losses[2])  # its average starts afresh
    validation = session.model.card.provenance["validation"]
    assert validation["objects"] == 18
    assert "On your 18 corrected objects, each checked by a model trained without it: 18 → 18 right" in (
        widget.status.text())
    # each half was trained without the other's squares; the average learnt from all 18
    assert session.model.card.provenance["fine_tuned_on"] == "18 annotated objects"


def test_the_bar_says_when_the_models_are_checked(qtbot, make_napari_viewer):
    """Before and after training the models segment the corrections (~9 s on a whole corrected
    1024² image): the bar says so rather than standing still at the last step.
    """
    viewer = make_napari_viewer()
    widget, session, _ = populate(viewer, steps=4, image=disks(shape=(140, 64), n=18))
    widget.mode.setCurrentText(WHOLE)
    shown, progress = [], widget._progress

    def watched(step):  # what the bar shows after each progress record reaches the dock
        progress(step)
        shown.append(widget.bar.format().split(":")[0])

    widget._progress = watched
    train(qtbot, widget)
    phases = [k for i, k in enumerate(shown) if i == 0 or k != shown[i - 1]]
    checking = "checking on your corrections"
    assert phases[:4] == [checking, "%v/%m steps", checking, "%v/%m steps"], phases  # before and between halves
    assert checking in phases[4:], phases  # and after the second half


def test_stop_during_the_check_after_training_says_the_check_finishes(qtbot, make_napari_viewer):
    """Stop pressed while the trained model is checked: the check ends first (it decides which
    model is used), and the status says so rather than "after this step".
    """
    viewer = make_napari_viewer()
    widget, session, _ = populate(viewer, steps=10, image=disks(shape=(1024, 1024), n=64))
    widget.mode.setCurrentText(WHOLE)
    widget.run_button.click()
    qtbot.waitUntil(lambda: bool(widget.plot.steps) and widget.bar.format().startswith("checking"),
                    timeout=WAIT_MS)  # the first half trained, its check running
    widget.stop_button.click()
    assert "Stopping once the new model is checked on your corrections" in widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert "checked by a model trained without it" in widget.status.text(), widget.status.text()
    assert len(widget.plot.pieces()) == 1  # the second half never started


def test_stop_during_the_check_before_training_changes_nothing(qtbot, make_napari_viewer):
    """With validation the old model is first checked on every correction (seconds on a big
    image); Stop pressed then ends the run there, leaving the model and the masks as they were.
    """
    viewer = make_napari_viewer()
    image = disks(shape=(1024, 1024), n=64)
    widget, session, masks = populate(viewer, steps=10_000, image=image)
    old, before = session.model, masks.data.copy()
    widget.mode.setCurrentText(WHOLE)
    widget.run_button.click()
    assert "to check the new model on what it did not see" in widget.status.text()
    widget.stop_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert "Stopped before learning anything" in widget.status.text(), widget.status.text()
    assert session.model is old and not session.history and widget.use_new_button.isHidden()
    np.testing.assert_array_equal(masks.data, before)


def test_too_few_objects_for_validation_says_so(qtbot, setup):
    viewer, widget, session, masks = setup
    widget.mode.setCurrentText(WHOLE)
    widget.run_button.click()
    assert "Too few to hold some out for validation" in widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    take_new(qtbot, widget)
    assert not widget.plot.val and "validation" not in session.model.card.provenance


def test_a_new_layer_for_a_stack_holds_every_refreshed_plane():
    from napari.layers import Labels

    from napari_unet._qt.finetune.job import Refresh, new_layer_labels

    layer = Labels(np.zeros((3, 4, 4), np.int32))
    plane = np.zeros((4, 4), np.int32)
    plane[1:3, 1:3] = 1
    data = new_layer_labels(Refresh(None, layer, (0, 2)), [plane, plane])
    assert data.shape == (3, 4, 4) and not data[1].any()
    assert set(np.unique(data[0])) == {0, 1} and set(np.unique(data[2])) == {0, 2}  # unique ids


# -- after fine-tuning: which model is in use, the changes in objects, what learn-from starts with --
def finish(qtbot, widget) -> None:
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)


def test_a_model_no_better_stays_out_of_use_until_the_user_picks_it(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    widget, session, masks = populate(viewer, steps=3)
    old, before = session.model, masks.data.copy()
    widget.mode.setCurrentText(WHOLE)
    finish(qtbot, widget)
    # the threshold model is right on every disk already: nothing to gain, so nothing changes
    assert session.model is old and not session.history
    np.testing.assert_array_equal(masks.data, before)
    text = widget.status.text()
    assert "On your 6 corrected objects (all were trained on): 6 → 6 right" in text
    assert "old one stays in use" in text and not widget.use_new_button.isHidden()
    take_new(qtbot, widget)  # the user wants it anyway
    assert session.model is not old and session.model.card.name.endswith("(fine-tuned)")
    assert widget.use_new_button.isHidden() and "Segment now uses the new model" in widget.status.text()


def stack_with_a_missed_disk(make_napari_viewer):
    """A 3-plane stack whose plane-0 masks miss a disk, plane 2 on screen; Segment and
    Fine-tune opened from the Plugins menu."""
    viewer = make_napari_viewer()
    session_for(viewer).set_model(threshold_unet(), "threshold", click_model=threshold_click_unet())
    stack = np.stack([disks(seed=z) for z in range(3)])
    viewer.add_image(stack, name="img")
    labels = np.stack([disk_labels(plane) for plane in stack])
    labels[1:] += np.where(labels[1:] > 0, 10 * np.arange(1, 3)[:, None, None], 0).astype(np.int32)
    labels[0][labels[0] == labels[0][30, 51]] = 0  # the old prediction missed a disk on plane 0
    masks = viewer.add_labels(labels.copy(), name="img masks")
    viewer.dims.set_point(0, 2)
    _, segment = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    widget.settings.unit.setCurrentText("steps")
    widget.settings.budget.setValue(3)
    masks.brush_size = 5
    masks.paint((0, 9, 9), 99)  # the user corrects an object on plane 0 (not the plane on screen)
    return viewer, widget, segment, masks, labels


def test_the_refresh_is_reported_in_objects_and_reviewed_plane_by_plane(qtbot, make_napari_viewer):
    viewer, widget, segment, masks, labels = stack_with_a_missed_disk(make_napari_viewer)
    finish(qtbot, widget)
    take_new(qtbot, widget)
    assert masks.data[0][30, 51] > 0  # found on plane 0, off screen
    assert "+1 new, −0 removed, 0 changed, in 1 plane" in widget.status.text()
    assert "'img masks' now holds" in segment.status.text()  # Segment's status follows the refresh
    review = widget.review
    assert not review.isHidden() and "Change 1 of 1: plane 0: +1 new" in review.label.text()
    assert viewer.dims.current_step[0] == 0  # the viewer went to the changed plane
    corrected = masks.data[0].copy()
    corrected[corrected == corrected[30, 51]] = 0  # plane 0 without the new disk
    review.undo_button.click()  # the user does not want plane 0's change
    assert masks.data[0][30, 51] == 0 and review.isHidden()
    np.testing.assert_array_equal(masks.data[0] > 0, corrected > 0)  # the correction stays


def test_only_the_displayed_plane_can_be_refreshed(qtbot, make_napari_viewer):
    viewer, widget, segment, masks, labels = stack_with_a_missed_disk(make_napari_viewer)
    widget.only_shown.setChecked(True)
    finish(qtbot, widget)
    take_new(qtbot, widget)
    assert masks.data[0][30, 51] == 0  # plane 0 was not on screen: left alone
    assert "no object changed" in widget.status.text() and widget.review.isHidden()


def test_learn_from_starts_with_the_current_image_and_flags_an_unlike_one(make_napari_viewer):
    viewer = make_napari_viewer()
    session_for(viewer).set_model(threshold_unet(), "threshold")
    for name, image in (("a", disks(seed=0)), ("b", disks(seed=1)), ("bright", 50 * disks(seed=2))):
        viewer.add_image(image, name=name)
        viewer.add_labels(disk_labels(disks()), name=f"{name} masks")
    viewer.layers.selection.active = viewer.layers["b"]
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    names = [image.name for image, _ in widget.pairs.pairs()]
    assert names == ["b"]  # the image being worked on, only
    widget.pairs.add_all.click()  # one click for the rest
    assert [image.name for image, _ in widget.pairs.pairs()] == ["a", "b", "bright"]
    assert list(widget.pairs.flagged()) == ["bright"]
    assert "'bright': median intensity" in widget.pairs.note.text()
