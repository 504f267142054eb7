"""New model learning from several painted images at once ('also learn from')."""

from __future__ import annotations

import numpy as np
from _qt_helpers import WAIT_MS, disk_labels, disks
from qtpy.QtCore import Qt

from napari_unet._qt.train.widget import TrainOptions


def new_model_dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "New model")
    widget.options = TrainOptions(base_channels=4, score_every=float("inf"))  # a tiny network, scored at the end
    widget.unit.setCurrentText("steps")
    widget.budget.setValue(3)
    return widget


def pick(widget, viewer, image: str, labels: str) -> None:
    widget.image.set_current(viewer.layers[image])
    widget.labels.setCurrentText(labels)


def listed(widget) -> list[str]:
    return [widget.more.item(row).text() for row in range(widget.more.count())]


def tick(widget, image: str, labels: str, state=Qt.CheckState.Checked) -> None:
    """Tick (or untick) a pair under 'also learn from', as the user clicks it."""
    widget.more.item(listed(widget).index(f"'{labels}' on '{image}'")).setCheckState(state)


def test_a_class_painted_only_in_the_second_image_is_learnt(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    first, second = disks((64, 64), n=4), disks((64, 80), n=4, seed=1)
    viewer.add_image(first, name="first")
    viewer.add_labels((disk_labels(first) > 0).astype(np.uint8), name="first painted")  # class 1 only
    viewer.add_image(second, name="second")
    viewer.add_labels((disk_labels(second) > 0).astype(np.uint8) * 2, name="second painted")  # class 2 only
    widget = new_model_dock(viewer)
    pick(widget, viewer, "first", "first painted")
    assert widget.more.isVisibleTo(widget) and widget.more.count() == 1 and not widget.more.checked()  # as today
    assert widget.table.names() == {0: "background", 1: "class 1"}

    tick(widget, "second", "second painted")
    assert widget.table.names() == {0: "background", 1: "class 1", 2: "class 2"}  # the union of both
    widget.table.item(2, 1).setText("other disks")
    widget.run_button.click()
    assert widget.running, widget.status.text()
    assert "from 'first painted' and 1 more image" in widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)

    card = widget.model.card
    assert card.classes == ("background", "class 1", "other disks") and card.label_values == (0, 1, 2)
    assert "Held-out rows " in widget.score.text()  # held out of the first image
    answer = viewer.layers["first classes (new model)"]
    assert answer.data.shape == first.shape  # the answer is the first image's
    assert listed(widget) == ["'second painted' on 'second'"]  # the answer is not painting to learn from


def test_a_pair_of_another_kind_is_refused_in_words(make_napari_viewer, notifications):
    viewer = make_napari_viewer()
    volume = np.random.default_rng(0).normal(size=(6, 32, 32)).astype(np.float32)
    painted = np.zeros(volume.shape, np.uint8)
    painted[2, :16], painted[2, 16:] = 1, 2
    viewer.add_image(volume, name="vol")
    viewer.add_labels(painted, name="vol painted")
    viewer.add_image(volume[0], name="flat")
    viewer.add_labels(painted[2], name="flat painted")
    widget = new_model_dock(viewer)
    pick(widget, viewer, "vol", "vol painted")
    tick(widget, "flat", "flat painted")
    widget.run_button.click()
    message = ("'flat' is a 2D image but 'vol' is a volume: one model learns from images of one kind (one channel; "
               "all 2D or all volumes); untick 'flat painted' on 'flat'")
    assert not widget.running and message in widget.status.text(), widget.status.text()
    assert not notifications


def test_a_pair_of_another_voxel_size_is_learnt_from_at_the_median_spacing(qtbot, make_napari_viewer, notifications):
    """Each pair keeps its own voxel size; training resamples them to one (the median)."""
    viewer = make_napari_viewer()
    fine = disks((64, 64), n=4)
    coarse = fine[::2, ::2].copy()  # the same disks at twice the pixel size
    viewer.add_image(fine, name="fine", scale=(0.5, 0.5))
    viewer.add_labels((disk_labels(fine) > 0).astype(np.uint8), name="fine painted", scale=(0.5, 0.5))
    viewer.add_image(coarse, name="coarse")
    viewer.add_labels((disk_labels(coarse) > 0).astype(np.uint8) * 2, name="coarse painted")
    widget = new_model_dock(viewer)
    pick(widget, viewer, "fine", "fine painted")
    tick(widget, "coarse", "coarse painted")
    widget.run_button.click()
    assert widget.running, widget.status.text()  # not refused
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)

    card = widget.model.card
    assert card.label_values == (0, 1, 2)
    assert card.provenance["spacings"] == [[0.5, 0.5], [1.0, 1.0]]  # each its own
    assert tuple(card.plan["target_spacing"]) == (0.75, 0.75)  # learnt at the median
    assert viewer.layers["fine classes (new model)"].data.shape == fine.shape  # answered at its own size
    assert not notifications
