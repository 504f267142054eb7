"""The Segment widget says when the shipped nuclei model meets an image it was not made for."""

from __future__ import annotations

import numpy as np
from _qt_helpers import run_segment

from napari_unet.synth.images import synth_image
from napari_unet.synth.phantom import PhantomConfig, synth_phantom


def _segment_with_shipped_model(qtbot, make_napari_viewer, image, name):
    viewer = make_napari_viewer()  # no model loaded: the widget uses the shipped nuclei model
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    viewer.add_image(image, name=name)
    assert "made for 2D fluorescence nuclei" in widget.model_info.text()  # before any answer
    run_segment(qtbot, widget)
    return widget.status.text()


def test_an_mri_slice_gets_a_warning_instead_of_a_confident_count(qtbot, make_napari_viewer):
    phantom = synth_phantom(3, PhantomConfig(modality="MR"))
    said = _segment_with_shipped_model(qtbot, make_napari_viewer, phantom.image[phantom.image.shape[0] // 2], "mri")
    assert "trained for 2D fluorescence nuclei" in said
    assert "New model" in said and "% of the image" in said
    assert "zoom" not in said  # the zoom's story would read as a confident answer


def test_nuclei_get_their_count_without_a_warning(qtbot, make_napari_viewer):
    said = _segment_with_shipped_model(qtbot, make_napari_viewer, synth_image(5).image.astype(np.float32), "nuclei")
    assert "objects" in said and "trained for" not in said
