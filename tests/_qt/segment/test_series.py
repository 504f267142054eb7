"""The Segment widget on 4D and 5D layers: time points of volumes, each in 3D, ids unique over time."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _qt_helpers import disks, run_segment
from napari.layers import Labels
from scipy import ndimage as ndi

from napari_unet._qt.segment.series import segment_input, series_axes, series_order, time_point
from napari_unet.model.files import save_model
from napari_unet.model.unet import UNet
from napari_unet.synth.volumes import VolumeConfig, synth_volume

T, Z = 3, 5
# five well-separated, evenly bright nuclei in (8, 64, 64): the threshold model finds each one whole
NUCLEI = VolumeConfig(z_ratio=(2.0, 2.0), size=(12, 14), coverage=(0.1, 0.12), p_clustered=0.0, packing=(1.4, 1.5),
                      attenuation=(0.0, 0.0), haze=(0.0, 0.0), background=(0.05, 0.05), photons=(2000, 3000),
                      texture=(0.0, 0.05), spots=(0.0, 0.0), brightness_spread=(0.05, 0.1), dome=(0.0, 0.1))
ZTYX = ("z", "t", "y", "x")


def volume(seed: int, **kwargs) -> np.ndarray:
    """Six disks (:func:`disks`) through three planes, a dim plane above and below: six 3D objects."""
    plane = disks(seed=seed, **kwargs)
    dim = np.full_like(plane, 10)
    return np.stack([dim, plane, plane, plane, dim])


def series() -> np.ndarray:
    return np.stack([volume(t) for t in range(T)])  # (T, Z, Y, X)


def masks(viewer) -> Labels:
    layer = viewer.layers["movie masks"]
    assert isinstance(layer, Labels)
    return layer


def ids(labels: np.ndarray) -> set[int]:
    return set(np.unique(labels).tolist()) - {0}


def test_all_time_points_give_3d_objects_with_ids_unique_over_time(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    data = series()
    viewer.add_image(data, name="movie", scale=(1, 2, 1, 1))
    assert widget.image.current_layer() is not None  # listed: 4D layers are segmented
    assert not widget.times.isHidden() and widget.times.currentText() == "all time points"
    assert widget.scope.isHidden() and widget.stack_axis.isHidden()  # T and Z are both known
    run_segment(qtbot, widget)
    labels = masks(viewer)
    assert labels.data.shape == data.shape
    np.testing.assert_allclose(labels.scale, (1, 2, 1, 1))
    per_time = [ids(labels.data[t]) for t in range(T)]
    assert [len(found) for found in per_time] == [6] * T
    assert not per_time[0] & per_time[1] and not per_time[1] & per_time[2]  # unique over the series
    for t in range(T):  # one id per object through its planes
        assert np.array_equal(labels.data[t, 1], labels.data[t, 3]) and labels.data[t, 0].max() == 0
    status = widget.status.text()
    assert "18 objects in its 3 time points (0-2), each volume in 3D through its 5 planes" in status

    widget.advanced.min_size.setValue(10_000)  # re-thresholding works on the whole series
    qtbot.waitUntil(lambda: masks(viewer).data.max() == 0, timeout=10_000)
    widget.advanced.min_size.setValue(10)
    qtbot.waitUntil(lambda: len(ids(masks(viewer).data)) == 18, timeout=10_000)
    assert np.array_equal(masks(viewer).data[2, 1], masks(viewer).data[2, 3])


def test_the_displayed_time_point_alone(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    data = series()
    viewer.add_image(data, name="movie", scale=(1, 2, 1, 1))  # coarse Z: no side planes, quick
    widget.times.setCurrentText("displayed time point")
    viewer.dims.set_current_step(0, 1)
    run_segment(qtbot, widget)
    labels = masks(viewer)
    assert labels.data.shape == data.shape
    assert labels.data[0].max() == 0 and labels.data[2].max() == 0  # only the time point on screen
    assert len(ids(labels.data[1])) == 6 and np.array_equal(labels.data[1, 1], labels.data[1, 2])
    assert "6 objects in time point 1 (in 3D, through its 5 planes)" in widget.status.text()

    viewer.dims.set_current_step(0, 2)  # the next one goes into the same layer, beside the first
    run_segment(qtbot, widget)
    assert len(ids(labels.data[1])) == 6 and len(ids(labels.data[2])) == 6
    assert not ids(labels.data[1]) & ids(labels.data[2])
    assert "time point 2" in widget.status.text() and "Ctrl+Z" in widget.status.text()
    labels.undo()  # one undo step takes time point 2 back out
    assert labels.data[2].max() == 0 and len(ids(labels.data[1])) == 6


def test_layers_the_model_cannot_take_are_explained(viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    viewer.add_image(np.zeros((2, 3, 4, 16, 16), np.float32), name="tczyx")
    note = widget.image.note.text()
    assert widget.image.combo.findText("tczyx") < 0
    assert "'tczyx' is not listed" in note and "more than 4 spatial dimensions" in note
    assert "model taking 1 channel" in note  # what is wrong, and what to do
    assert not widget.run_button.isEnabled()

    widget.model.load(save_model(UNet(2, 3, base_channels=4, depth=2), tmp_path / "two.safetensors"))
    viewer.add_image(np.zeros((3, 2, 2, 16, 16), np.float32), name="which")  # axes 1 and 2 both of 2
    note = widget.image.note.text()
    assert "'which' is not listed" in note and "both of axes 1 and 2" in note
    assert "put the channels first" in note


def test_channels_of_a_5d_layer_feed_a_model_taking_them(qtbot, viewer_widget, tmp_path):
    import torch

    viewer, widget = viewer_widget
    torch.manual_seed(0)
    widget.model.load(save_model(UNet(2, 3, base_channels=4, depth=2), tmp_path / "two.safetensors"))
    rng = np.random.default_rng(0)
    data = rng.random((2, 2, 3, 32, 32)).astype(np.float32)  # T, C, Z, Y, X: OME-Zarr's order
    viewer.add_image(data, name="movie", scale=(1, 1, 2, 1, 1))
    assert widget.image.current_layer() is not None and not widget.times.isHidden()
    widget.advanced.zoom.setCurrentText("1× (off)")  # a random network: no objects to measure
    run_segment(qtbot, widget)
    assert masks(viewer).data.shape == (2, 3, 32, 32)  # the channels went into the network
    assert "its 2 time points (0-1)" in widget.status.text()


@pytest.mark.parametrize("side_planes, scale, averaged", [
    ("off", (1, 1, 1), False),  # voxels are cubes, where auto would average them
    ("on", (3, 1, 1), True),  # Z three times coarser, where auto would leave them out
])
def test_side_planes_switch(qtbot, viewer_widget, side_planes, scale, averaged):
    viewer, widget = viewer_widget
    small = volume(0, shape=(16, 32), n=2, radius=5)  # two objects: the side planes are many small images
    layer = viewer.add_image(small, name="vol", scale=scale)
    layer.metadata["napari_unet_stack_axis"] = "Z"
    assert widget.advanced.side_planes.currentText() == "auto"  # the default: the rule decides
    widget.advanced.side_planes.setCurrentText(side_planes)
    widget.advanced.zoom.setCurrentText("1× (off)")
    run_segment(qtbot, widget)
    assert ("ZY and ZX planes were averaged" in widget.status.text()) is averaged
    labels = viewer.layers["vol masks"].data
    assert len(ids(labels)) == 2 and np.array_equal(labels[1], labels[3])


def test_a_lazy_series_is_listed_without_reading_its_pixels():
    from types import SimpleNamespace

    import dask.array as da

    from napari_unet._qt.segment.series import segment_input

    read = []
    lazy = da.zeros((3, 4, 16, 16), chunks=(1, 4, 16, 16), dtype=np.float32).map_blocks(
        lambda block: read.append(block.shape) or block, meta=np.zeros((0,) * 4, np.float32))
    source = segment_input(SimpleNamespace(data=lazy, rgb=False, multiscale=False), 1)
    assert source.spatial_axes == (0, 1, 2, 3) and read == []  # the picker checks every layer, often


def z_t_series() -> tuple[np.ndarray, np.ndarray]:
    """A generated nuclei volume at two time points stored as Z, T, Y, X (as many files hold them),
    and its true labels; nucleus 1 is there at t=0 only.
    """
    volume = synth_volume(0, (8, 64, 64), NUCLEI)
    gone = ndi.binary_dilation(volume.labels == 1, iterations=3)  # with its blur
    later = np.where(gone, np.median(volume.image[volume.labels == 0]), volume.image).astype(volume.image.dtype)
    return np.stack([volume.image, later], axis=1), volume.labels


def found_whole(masks: np.ndarray, truth: np.ndarray) -> list[int]:
    """The one id each true nucleus got through all its planes (fails where it got none or several)."""
    got = [set(np.unique(masks[truth == k]).tolist()) - {0} for k in ids(truth)]
    assert all(len(one) == 1 for one in got), got
    return [one.pop() for one in got]


def add_z_t(viewer, labels=ZTYX):
    data, truth = z_t_series()
    viewer.add_image(data, name="movie", scale=(2, 1, 1, 1))  # coarse Z: no side planes, quick
    viewer.dims.axis_labels = labels
    return data, truth


def test_labelled_z_t_layer_is_segmented_along_its_real_time_axis(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    data, truth = add_z_t(viewer)
    assert not widget.times.isHidden() and "axis_labels" in widget.times.toolTip()  # how to say Z, T
    widget.advanced.zoom.setCurrentText("1× (off)")
    widget.show_probabilities.setChecked(True)
    run_segment(qtbot, widget)
    labels = masks(viewer)
    assert labels.data.shape == data.shape  # the layer's own Z, T layout
    np.testing.assert_allclose(labels.scale, (2, 1, 1, 1))
    first = found_whole(labels.data[:, 0], truth)  # each nucleus one id through its planes
    later = found_whole(labels.data[:, 1], np.where(truth == 1, 0, truth))
    assert len(set(first)) == 5 and len(set(later)) == 4 and not set(first) & set(later)
    assert labels.data[:, 1][truth == 1].max() == 0  # the nucleus gone at t=1 is not found there
    assert "9 objects in its 2 time points (0-1, along axis 1 as its axis labels say)" in widget.status.text()
    assert "through its 8 planes" in widget.status.text()
    foreground = viewer.layers["movie probabilities"].data  # the probabilities in the same layout
    assert foreground.shape == data.shape
    assert foreground[:, 0][truth == 1].mean() > 0.5 > foreground[:, 1][truth == 1].mean()

    widget.advanced.min_size.setValue(10_000)  # re-thresholding keeps the layout
    qtbot.waitUntil(lambda: masks(viewer).data.max() == 0, timeout=10_000)
    widget.advanced.min_size.setValue(10)
    qtbot.waitUntil(lambda: len(ids(masks(viewer).data)) == 9, timeout=10_000)
    recomputed = masks(viewer).data
    assert recomputed[:, 1][truth == 1].max() == 0 and len(set(found_whole(recomputed[:, 0], truth))) == 5


def test_displayed_time_point_of_a_z_t_layer(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    data, truth = add_z_t(viewer)
    widget.times.setCurrentText("displayed time point")
    widget.advanced.zoom.setCurrentText("1× (off)")
    viewer.dims.set_current_step(0, 5)  # depth: not a time point
    viewer.dims.set_current_step(1, 1)
    run_segment(qtbot, widget)
    labels = masks(viewer)
    assert labels.data.shape == data.shape and labels.data[:, 0].max() == 0  # only t=1, where it is
    assert len(set(found_whole(labels.data[:, 1], np.where(truth == 1, 0, truth)))) == 4
    assert "4 objects in time point 1, along axis 1 as its axis labels say (in 3D" in widget.status.text()

    viewer.dims.set_current_step(1, 0)  # the other one goes beside it, as one undo step
    run_segment(qtbot, widget)
    assert len(set(found_whole(labels.data[:, 0], truth))) == 5 and not ids(labels.data[:, 0]) & ids(labels.data[:, 1])
    labels.undo()
    assert labels.data[:, 0].max() == 0 and len(ids(labels.data[:, 1])) == 4


@pytest.mark.parametrize("names, said", [
    (("z", "z", "y", "x"), "axes 0 and 1 are both labelled depth ('z', 'z')"),
    (("c", "t", "y", "x"), "axis 0 is labelled 'c', where a time series of volumes has time or depth"),
])
def test_contradictory_axis_labels_are_refused(qtbot, viewer_widget, names, said):
    viewer, widget = viewer_widget
    add_z_t(viewer, names)
    widget.run_button.click()
    assert not widget.running and "movie masks" not in viewer.layers
    status = widget.status.text()
    assert said in status and "viewer.dims.axis_labels = ('z', 't', 'y', 'x')" in status  # and what to do


@pytest.mark.parametrize("names, order", [
    (("0", "1", "2", "3"), "TZ"),  # napari's own labels say nothing: T, Z
    (("t", "z", "y", "x"), "TZ"),
    (("Z", "T", "Y", "X"), "ZT"),
    (("depth", "time", "y", "x"), "ZT"),
    (("0", "Time", "2", "3"), "ZT"),  # one named is enough
    (("extra", "z", "t", "y", "x"), "ZT"),  # the viewer has more axes than the layer: its last ones
])
def test_series_order_reads_the_axis_labels(names, order):
    layer = SimpleNamespace(data=np.zeros((8, 2, 16, 16), np.float32), rgb=False, multiscale=False, ndim=4)
    viewer = SimpleNamespace(dims=SimpleNamespace(axis_labels=names))
    assert series_order(viewer, layer, segment_input(layer, 1)) == order


@pytest.mark.parametrize("name, kind", [("Depth", "Z"), ("time", "T"), ("c", None), ("0", None)])
def test_stacks_read_the_same_axis_labels(name, kind):
    from napari_unet._qt.layers import model_input, stack_kind

    layer = SimpleNamespace(data=np.zeros((8, 16, 16), np.float32), rgb=False, multiscale=False, ndim=3, metadata={})
    viewer = SimpleNamespace(dims=SimpleNamespace(axis_labels=(name, "y", "x")))
    assert stack_kind(viewer, layer, model_input(layer, 1)) == kind


def test_channels_of_a_z_t_layer_stay_where_they_are():
    data = np.zeros((2, 8, 3, 16, 16), np.float32)  # C, Z, T, Y, X
    layer = SimpleNamespace(data=data, rgb=False, multiscale=False, ndim=5)
    viewer = SimpleNamespace(dims=SimpleNamespace(axis_labels=("c", "z", "t", "y", "x")))
    source = segment_input(layer, 2)
    order = series_order(viewer, layer, source)
    assert series_axes(source, order) == "CZTYX"
    volume, axes = time_point(source, 1, order)
    assert volume.data.shape == (2, 8, 16, 16) and axes == "CZYX" and volume.channel_axis == 0
