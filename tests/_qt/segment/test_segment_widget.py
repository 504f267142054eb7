"""The Segment widget in a real viewer: results, edits and undo, recompute, layer kinds."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from _qt_helpers import disks, run_segment
from napari.layers import Image, Labels


def masks(viewer, name="img masks") -> Labels:
    layer = viewer.layers[name]
    assert isinstance(layer, Labels)
    return layer


def test_segment_gives_labels_with_image_scale(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img", scale=(0.5, 0.25), translate=(10, 20))
    assert widget.scope.isHidden()  # no plane/stack choice for a 2D image
    run_segment(qtbot, widget)
    labels = masks(viewer)
    assert labels.data.dtype == np.uint16  # ids fit: napari draws it without re-mapping
    assert labels.data.shape == (96, 128)
    assert len(np.unique(labels.data)) - 1 == 6  # the six disks
    np.testing.assert_allclose(labels.scale, (0.5, 0.25))
    np.testing.assert_allclose(labels.translate, (10, 20))
    assert viewer.layers.selection.active is labels  # ready for the brush
    assert "6 objects" in widget.status.text()


def test_resegment_after_edit_is_undoable_back_to_the_edit(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    labels = masks(viewer)
    labels.data_setitem((np.array([50, 50]), np.array([60, 61])), 99)  # the user paints
    edited = labels.data.copy()

    run_segment(qtbot, widget)  # default: replace in the same layer, undoably
    assert len(viewer.layers) == 2
    assert labels.data[50, 60] == 0
    assert "Ctrl+Z" in widget.status.text()
    labels.undo()
    np.testing.assert_array_equal(labels.data, edited)


def test_new_layer_option_keeps_the_edited_layer(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    masks(viewer).data_setitem((np.array([50]), np.array([60])), 99)
    widget.existing.setCurrentText("add a new layer")
    run_segment(qtbot, widget)
    assert masks(viewer).data[50, 60] == 99
    assert isinstance(viewer.layers[-1], Labels) and viewer.layers[-1] is not masks(viewer)
    assert "new layer" in widget.status.text()


def test_threshold_change_recomputes_from_cache_without_the_network(qtbot, viewer_widget, monkeypatch):
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    labels = masks(viewer)
    assert labels.data.max() == 6

    import napari_unet._qt.segment.widget as sw

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran again")

    monkeypatch.setattr(sw, "segment_job", no_network)
    widget.advanced.min_size.setValue(10_000)  # removes every disk
    qtbot.waitUntil(lambda: labels.data.max() == 0, timeout=10_000)
    widget.advanced.min_size.setValue(10)
    qtbot.waitUntil(lambda: labels.data.max() == 6, timeout=10_000)
    labels.undo()  # each recompute is one undo step
    assert labels.data.max() == 0


def test_zoom_setting_and_the_automatic_zoom_are_said(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    widget.advanced.zoom.setCurrentText("2×")
    widget.show_probabilities.setChecked(True)
    run_segment(qtbot, widget)
    assert masks(viewer).data.shape == (96, 128) and masks(viewer).data.max() == 6
    assert viewer.layers["img probabilities"].data.shape == (96, 128)  # at the image's pixels
    assert "at zoom ×2 " in widget.status.text() and "small" not in widget.status.text()
    # the cache holds the magnified probabilities: re-thresholding gives the image's pixels
    assert widget.image.current_layer().name == "img"  # not the probabilities layer
    widget.advanced.min_size.setValue(10_000)
    qtbot.waitUntil(lambda: masks(viewer).data.max() == 0, timeout=10_000)
    widget.advanced.min_size.setValue(10)
    qtbot.waitUntil(lambda: masks(viewer).data.max() == 6, timeout=10_000)
    assert masks(viewer).data.shape == (96, 128)
    viewer.add_image(disks((200, 200), n=3, radius=22), name="big")  # 44 px across: shrunk
    widget.advanced.zoom.setCurrentText("auto")
    widget.image.set_current(viewer.layers["big"])
    run_segment(qtbot, widget)
    assert masks(viewer, "big masks").data.max() == 3
    assert "The objects are large" in widget.status.text()
    from dataclasses import replace

    from napari_unet._qt.session import session_for
    from napari_unet.model.files import model_card

    session = session_for(viewer)
    tuned = copy.deepcopy(session.model)
    tuned.card = replace(model_card(tuned), zoom=1.5)  # as fine-tuning on small objects leaves it
    session.set_model(tuned)
    run_segment(qtbot, widget)  # zoom on auto: the model's own zoom, one pass
    assert "at zoom ×1.5, the zoom it was fine-tuned at" in widget.status.text()


def test_test_time_augmentation_setting_reaches_the_network_pass(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    widget.advanced.tta.setChecked(True)
    assert widget.advanced.predict_kwargs()["tta"] is True
    seen = []
    widget.bar.valueChanged.connect(lambda _: seen.append(widget.bar.format()))
    run_segment(qtbot, widget)
    assert masks(viewer).data.max() == 6  # the threshold model sees the same disks in every view
    assert any("8 views" in text for text in seen), set(seen)


def test_probabilities_layer(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img", scale=(2, 2))
    widget.show_probabilities.setChecked(True)
    run_segment(qtbot, widget)
    probs = viewer.layers["img probabilities"]
    assert isinstance(probs, Image) and probs.data.shape == (96, 128)
    assert 0.0 <= probs.data.min() and probs.data.max() <= 1.0
    np.testing.assert_allclose(probs.scale, (2, 2))


@pytest.mark.parametrize(
    "name, data, kwargs",
    [
        ("uint16", disks(dtype=np.uint16), {}),
        ("odd", disks((97, 131)), {}),
        ("rgb", np.repeat(disks(dtype=np.uint8)[..., None], 3, axis=-1), {"rgb": True}),
    ],
)
def test_layer_kinds(qtbot, viewer_widget, name, data, kwargs):
    viewer, widget = viewer_widget
    layer = viewer.add_image(data, name=name, scale=(3, 3), **kwargs)
    assert widget.image.current_layer() is layer or widget.image.current_layer() == layer
    run_segment(qtbot, widget)
    labels = masks(viewer, f"{name} masks")
    assert labels.data.shape == data.shape[:2]
    assert labels.data.max() == 6
    np.testing.assert_allclose(labels.scale, (3, 3))


def test_stack_displayed_plane_then_whole_stack(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    stack = np.stack([disks(seed=0), np.full((96, 128), 10, np.float32), disks(seed=1)])
    viewer.add_image(stack, name="img")
    viewer.dims.set_current_step(0, 2)
    assert not widget.scope.isHidden() and widget.scope.currentText() == "whole stack"  # the default
    widget.scope.setCurrentText("displayed plane")
    run_segment(qtbot, widget)
    labels = masks(viewer)
    assert labels.data.shape == stack.shape
    assert labels.data[0].max() == 0 and labels.data[1].max() == 0
    assert len(np.unique(labels.data[2])) - 1 == 6
    widget.advanced.min_size.setValue(10_000)  # re-threshold: only the segmented plane changes
    qtbot.waitUntil(lambda: labels.data[2].max() == 0, timeout=10_000)
    labels.undo()
    assert len(np.unique(labels.data[2])) - 1 == 6
    widget.advanced.min_size.setValue(10)

    widget.scope.setCurrentText("whole stack")
    widget.run_button.click()  # nobody said what the stack's axis is: the widget asks
    assert not widget.running and "Z: 3D objects) or time (T: frames)" in widget.status.text()
    widget.stack_axis.setCurrentText("T: time (each frame in 2D)")
    run_segment(qtbot, widget)
    ids0 = set(np.unique(labels.data[0])) - {0}
    ids2 = set(np.unique(labels.data[2])) - {0}
    assert len(ids0) == 6 and len(ids2) == 6 and not ids0 & ids2  # unique across the stack


def test_incompatible_layers_are_explained(viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(np.zeros((2, 2, 2, 16, 16), np.float32), name="5d")
    rgb_stack = viewer.add_image(np.zeros((5, 16, 16, 3), np.uint8), name="rgb stack", rgb=True)
    assert widget.image.combo.findText("5d") < 0
    assert "'5d' is not listed" in widget.image.note.text()
    assert "spatial dimensions" in widget.image.note.text()
    assert widget.image.current_layer() == rgb_stack  # planes of RGB for a 1-channel model


def test_wrong_channel_count_is_explained(qtbot, viewer_widget, tmp_path):
    from napari_unet.model.files import save_model
    from napari_unet.model.unet import UNet

    viewer, widget = viewer_widget
    viewer.add_image(np.zeros((16, 16, 3), np.uint8), name="rgb", rgb=True)
    viewer.add_image(np.zeros((16, 16), np.uint8), name="gray")
    assert widget.image.combo.count() == 2
    path = save_model(UNet(2, 3, base_channels=4, depth=2), tmp_path / "two.safetensors")
    widget.model.load(path)
    note = widget.image.note.text()
    assert widget.image.combo.count() == 0 and not widget.run_button.isEnabled()
    assert "'rgb' is not listed: the model expects 2 channel(s), the image has 3" in note
    assert "'gray' is not listed" in note


def test_model_input_rejects_empty_and_ambiguous():
    from types import SimpleNamespace

    from napari_unet._qt.layers import model_input

    def layer(data, rgb=False):
        return SimpleNamespace(data=data, rgb=rgb, multiscale=False)

    with pytest.raises(ValueError, match="empty"):
        model_input(layer(np.zeros((0, 16))), 1)
    with pytest.raises(ValueError, match="ambiguous"):
        model_input(layer(np.zeros((8, 16, 3))), 1)
    assert model_input(layer(np.zeros((2, 5, 16, 16))), 2).channel_axis == 0
    assert model_input(layer(np.zeros((5, 16, 16, 3)), rgb=True), 1).spatial_axes == (0, 1, 2)


def test_write_labels_is_one_undo_step_and_refuses_ids_that_do_not_fit():
    from napari_unet._qt.layers import write_labels

    layer = Labels(np.zeros((2, 4, 4), np.uint16))
    layer.data_setitem((np.array([1]), np.array([0]), np.array([0])), 7)
    plane = np.zeros((4, 4), np.int32)
    plane[1:3, 1:3] = 1
    assert write_labels(layer, plane, plane=0) == 4
    assert set(np.unique(layer.data[0])) == {0, 8}  # shifted past the other plane's ids
    assert write_labels(layer, np.full((4, 4), 70_000, np.int32), plane=0) is None
    assert set(np.unique(layer.data[0])) == {0, 8}
    layer.undo()
    assert layer.data[0].max() == 0 and layer.data[1, 0, 0] == 7


@pytest.mark.parametrize("software", [False, True])
def test_napari_progress_bar_unless_software_opengl(qtbot, viewer_widget, monkeypatch, software):
    from napari.utils import progress

    import napari_unet._qt.jobs as jobs

    seen = []

    class Recorded(progress):  # napari's progress bar, noting that it was made
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self)

    monkeypatch.setattr(jobs, "progress", Recorded)
    monkeypatch.setattr(jobs, "software_opengl", lambda: software)
    viewer, widget = viewer_widget
    viewer.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    assert bool(seen) is not software  # the widget's own bar shows progress either way
    assert viewer.layers["img masks"].data.max() == 6


def test_new_masks_layer_is_shown_over_later_turns_and_stays_editable(qtbot, make_napari_viewer):
    from napari_unet._qt._perf import add_labels_in_turns

    viewer = make_napari_viewer()
    data = np.zeros((64, 64), np.uint16)
    layer = add_labels_in_turns(viewer, data, name="masks", scale=(2, 2))
    assert layer in viewer.layers and np.array_equal(layer.scale, (2, 2))
    layer.data_setitem((np.array([5]), np.array([6])), 3)  # editable before it shows
    assert layer.data[5, 6] == 3
    qtbot.waitUntil(lambda: layer.visible)  # shown a few turns later
    layer.mode = "polygon"  # napari's drawing tools work on it
    layer.paint_polygon(np.array([[10, 10], [10, 20], [20, 20], [20, 10]]), 4)
    assert (layer.data == 4).sum() > 50

    closed = add_labels_in_turns(viewer, data, alive=lambda: False, name="late")
    qtbot.wait(100)
    assert not closed.visible  # not shown once the viewer is going
    closed.visible = True  # and whole when shown by hand
    closed.mode = "polygon"
    closed.paint_polygon(np.array([[10, 10], [10, 20], [20, 20], [20, 10]]), 4)
    assert (closed.data == 4).sum() > 50


def test_set_bar_moves_the_bar_and_leaves_it_painting(qtbot):
    from qtpy.QtWidgets import QProgressBar

    from napari_unet._qt._perf import set_bar

    bar = QProgressBar()
    qtbot.addWidget(bar)
    set_bar(bar, 3, 8, "tiles %v/%m")
    assert (bar.value(), bar.maximum(), bar.text()) == (3, 8, "tiles 3/8")
    assert bar.updatesEnabled()


def test_a_models_tuned_settings_are_shown_and_used(qtbot, viewer_widget, tmp_path):
    """Loading a model whose card carries post-processing settings shows and uses them; a
    fine-tuned version of it (same card) keeps what the user has set since."""
    import copy
    from dataclasses import replace

    from _qt_helpers import threshold_unet

    from napari_unet._qt.session import session_for
    from napari_unet.model.files import model_card, save_model

    viewer, widget = viewer_widget
    assert widget.advanced.min_size.value() == 10  # the threshold model's card names none
    model = threshold_unet()
    model.card = replace(model_card(model), postprocess={"min_size": 10_000, "interior_threshold": 0.35})
    session = session_for(viewer)
    session.load_model(save_model(model, tmp_path / "tuned.safetensors"))
    assert (widget.advanced.min_size.value(), widget.advanced.interior.value()) == (10_000, 0.35)
    viewer.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    assert masks(viewer).data.max() == 0  # the card's minimum size removed every disk
    widget.advanced.min_size.setValue(10)
    session.set_model(copy.deepcopy(session.model))  # as fine-tuning does: same card
    assert widget.advanced.min_size.value() == 10


def test_a_fresh_viewer_gets_the_shipped_model_and_its_thresholds(make_napari_viewer):
    from napari_unet._qt.segment.widget import SegmentWidget
    from napari_unet.inference.instances import model_params
    from napari_unet.model.files import load_model, model_card

    viewer = make_napari_viewer()  # no model in its session yet: the widget loads the shipped one
    widget = SegmentWidget(viewer)
    expected = model_params(model_card(load_model()))
    assert (widget.advanced.interior.value(), widget.advanced.foreground.value(),
            widget.advanced.min_relative.value()) == (
        expected.interior_threshold, expected.foreground_threshold, expected.min_relative_size)


def test_a_z_stack_gives_3d_objects_and_the_answer_is_remembered(qtbot, viewer_widget):
    from _qt_helpers import disk_labels

    viewer, widget = viewer_widget
    plane = disks()
    volume = np.stack([np.full_like(plane, 10), plane, plane, plane, np.full_like(plane, 10)])
    layer = viewer.add_image(volume, name="vol", scale=(2, 1, 1))
    widget.stack_axis.setCurrentText("Z: depth (3D objects)")
    assert layer.metadata["napari_unet_stack_axis"] == "Z"  # asked once, kept with the layer
    run_segment(qtbot, widget)
    labels = masks(viewer, "vol masks").data
    assert labels.max() == 6  # six disks through three planes: six 3D objects
    assert np.array_equal(labels[1] > 0, disk_labels(plane) > 0) and np.array_equal(labels[1], labels[3])
    widget.advanced.min_size.setValue(10_000)  # re-thresholding keeps the objects 3D
    qtbot.waitUntil(lambda: masks(viewer, "vol masks").data.max() == 0, timeout=10_000)
    widget.advanced.min_size.setValue(10)
    qtbot.waitUntil(lambda: masks(viewer, "vol masks").data.max() == 6, timeout=10_000)
    assert np.array_equal(masks(viewer, "vol masks").data[1], masks(viewer, "vol masks").data[2])


def test_a_volume_with_the_shipped_model_gets_the_3d_network_and_its_thresholds(qtbot, make_napari_viewer):
    from napari_unet import segment
    from napari_unet.inference.instances import model_params
    from napari_unet.model.files import VOLUME_MODEL, load_model, model_card
    from napari_unet.synth.volumes import synth_volume

    viewer = make_napari_viewer()  # the shipped model, as a new user has it
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    volume = synth_volume(4321, shape=(16, 64, 64))
    viewer.add_image(volume.image, name="nuclei", scale=volume.spacing)
    widget.stack_axis.setCurrentText("Z: depth (3D objects)")
    run_segment(qtbot, widget)
    labels = masks(viewer, "nuclei masks").data
    assert np.array_equal(labels, segment(volume.image, axes="ZYX", spacing=volume.spacing, device="cpu"))
    assert "3D network shipped for volumes" in widget.status.text()  # the picker still names the 2D model
    tuned, flat = (model_params(model_card(load_model(path))) for path in (VOLUME_MODEL, None))
    assert tuned != flat  # the two networks' post-processing differs (its minimum relative size)
    assert widget.advanced.params() == tuned
    viewer.add_image(disks(), name="img")  # a 2D image: the 2D model, and its own thresholds back
    run_segment(qtbot, widget)
    assert widget.advanced.params() == flat
    assert masks(viewer).data.max() > 0
