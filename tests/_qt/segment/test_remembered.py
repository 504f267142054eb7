"""The Segment widget starts as the user left it: options, and the model file used last."""

from __future__ import annotations

import shutil

from napari_unet.model.files import DEFAULT_MODEL
from napari_unet.settings import load_settings


def _segment_widget(viewer):
    return viewer.window.add_plugin_dock_widget("napari-unet", "Segment")[1]


def test_options_and_model_come_back_in_a_new_viewer(make_napari_viewer, model_file):
    first = _segment_widget(make_napari_viewer())
    first.advanced.zoom.setCurrentText("2×")
    first.advanced.tile_size.setValue(256)
    first.advanced.tta.setChecked(True)
    first.existing.setCurrentText("add a new layer")
    first.session.load_model(model_file)  # as the model picker's "Load file…" does

    again = _segment_widget(make_napari_viewer())  # a new session: napari restarted
    assert again.advanced.zoom.currentText() == "2×" and again.advanced.tile_size.value() == 256
    assert again.advanced.tta.isChecked() and again.existing.currentText() == "add a new layer"
    assert again.session.model_source == model_file


def test_a_model_file_gone_since_is_said_and_the_shipped_model_used(make_napari_viewer, model_file, tmp_path):
    moved = shutil.copy(model_file, tmp_path / "mine.safetensors")
    _segment_widget(make_napari_viewer()).session.load_model(moved)
    (tmp_path / "mine.safetensors").unlink()
    widget = _segment_widget(make_napari_viewer())
    assert "could not be loaded" in widget.status.text() and "shipped model" in widget.status.text()
    assert widget.session.model_source == DEFAULT_MODEL and load_settings("segment")["model"] is None


def test_reset_to_defaults(make_napari_viewer, model_file):
    widget = _segment_widget(make_napari_viewer())
    widget.advanced.zoom.setCurrentText("0.5×")
    widget.advanced.overlap.setValue(0.5)
    widget.session.load_model(model_file)
    widget.reset.click()
    assert widget.advanced.zoom.currentText() == "auto" and widget.advanced.overlap.value() == 0.25
    assert load_settings("segment")["model"] is None and load_settings("segment")["zoom"] == "auto"
    assert _segment_widget(make_napari_viewer()).session.model_source == DEFAULT_MODEL  # the shipped one next


def test_click_and_finetune_options_come_back_in_a_new_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    click = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")[1]
    finetune = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")[1]
    click.preserve.setChecked(False)
    finetune.after.setCurrentIndex(1)
    finetune.settings.budget.setValue(123)
    finetune.settings.freeze_encoder.setChecked(not finetune.settings.freeze_encoder.isChecked())
    chosen = (finetune.after.currentText(), finetune.settings.freeze_encoder.isChecked())

    again = make_napari_viewer()
    click2 = again.window.add_plugin_dock_widget("napari-unet", "Click to segment")[1]
    finetune2 = again.window.add_plugin_dock_widget("napari-unet", "Fine-tune")[1]
    assert not click2.preserve.isChecked() and not click2.tool.preserve_labels  # the tool follows the box
    assert (finetune2.after.currentText(), finetune2.settings.freeze_encoder.isChecked()) == chosen
    assert finetune2.settings.budget.value() == 123
