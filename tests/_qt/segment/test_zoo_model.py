"""A Model Zoo model from another tool, picked in Segment's model picker as a user does:
it segments with its own processing and answers first clicks; Fine-tune and Save model
say they cannot train or save it, in words, without losing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _click_models import threshold_click_unet
from _qt_helpers import disk_labels, disks, run_segment
from _zoo_packages import foreign_package

from napari_unet._qt.session import session_for

sys.path.insert(0, str(Path(__file__).parents[1] / "click"))  # the click helpers (_clicking)
from _clicking import click, settle  # noqa: E402

pytest.importorskip("bioimageio.core")
pytestmark = pytest.mark.slow


def test_a_foreign_package_segments_and_is_not_fine_tuned(qtbot, make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    image = disks((96, 128))
    viewer.add_image(image, name="img")
    _, segment = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    assert segment.model.load(foreign_package("foreground+boundary", tmp_path))  # "Load model file…"
    info = segment.model_info.text()
    assert "Model Zoo model" in info and "foreground and boundary probabilities" in info
    assert "cannot be fine-tuned" in info

    run_segment(qtbot, segment)
    masks = viewer.layers["img masks"]
    assert masks.data.max() == disk_labels(image).max() == 6
    assert "6 objects" in segment.status.text()
    segment.advanced.min_size.setValue(10_000)  # the post-processing settings apply to its output too
    qtbot.waitUntil(lambda: masks.data.max() == 0, timeout=20_000)
    segment.advanced.min_size.setValue(10)
    qtbot.waitUntil(lambda: masks.data.max() == 6, timeout=20_000)

    _, tune = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    assert not tune.save_button.isEnabled()  # it stays in its own package
    tune.run_button.click()
    assert not tune.running
    assert "Cannot fine-tune" in tune.status.text() and "Model Zoo model" in tune.status.text()
    assert masks.data.max() == 6  # nothing the user has was touched


def test_clicks_work_with_the_foreign_model_answering_the_first_click(qtbot, make_napari_viewer, tmp_path):
    from _click_models import disk_image
    from _clicking import CENTRES, disk

    viewer = make_napari_viewer()
    viewer.add_image(disk_image(), name="cells")
    session = session_for(viewer)
    session.load_model(foreign_package("foreground", tmp_path))
    session.set_click_model(threshold_click_unet())
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    assert widget.first_from_model.isChecked()  # as a user leaves it: the foreign model's object comes first
    widget.toggle.setChecked(True)
    click(viewer, CENTRES[0])
    settle(qtbot, widget)
    masks = viewer.layers["cells masks"].data
    target = disk(masks.shape, CENTRES[0])
    assert (masks[target] > 0).mean() > 0.9 and (masks[~target] > 0).mean() < 0.01
